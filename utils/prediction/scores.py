"""The network as every prediction path calls it: class scores whose argmax is the predicted class, with a sigmoid
head's probability as two classes, a multilabel head's as scores of every set of classes, a 2-class network's
threshold, and test-time augmentation's copies."""

import numpy as np
import tensorflow as tf

from utils.multilabel import set_bits
from utils.prediction.tta import TestTimeAugmentation, averaged, flipped, scaled_network


def check_threshold(threshold: float, num_classes: int, head: str = "softmax") -> None:
    """Raises ValueError unless 0 < threshold < 1, and 0.5 (the argmax) for other than 2 classes or multilabel."""
    if not 0 < threshold < 1 or (threshold != 0.5 and num_classes != 2 and head != "multilabel"):
        raise ValueError(
            f"threshold={threshold}: expected a probability between 0 and 1 for a 2-class network (class 1 where its "
            f"probability is above it); with num_classes={num_classes} the argmax decides: leave threshold at 0.5."
        )


class ClassScores:
    """The network as every prediction path calls it: images -> float32 (B, H', W', C) scores whose argmax is the
    predicted class, C >= 2. Softmax probabilities pass as they are; a sigmoid head's p = P(class 1) becomes
    (1 - p, p). With two classes the scores are the probabilities times (threshold, 1 - threshold), so the argmax
    is class 1 exactly where P(class 1) > threshold (0.5: the plain argmax); blending and resizing, being linear,
    keep that. A multilabel head's C sigmoids p become the 2**C scores sum_{c in S} (p_c - threshold) of the sets S
    of classes, whose argmax is the packed set of classes with p_c > threshold (utils/multilabel.py), linear in p
    as well. It stands in for the model (input_shape, output_shape, a call). The threshold is a constant of the
    compiled functions that call it (no variable: under a distribution strategy one would be distributed), so a
    new threshold needs new functions: Unet.set_threshold makes them.
    """

    def __init__(self, model, threshold=0.5, tta=TestTimeAugmentation(), head: str = ""):
        self.model, self.tta = model, tta
        self.head = head or ("sigmoid" if model.output_shape[-1] == 1 else "softmax")
        if tta.scales != (1.0,) and model.output_shape[1] != model.input_shape[1]:
            raise ValueError(
                f"tta scales {list(tta.scales)}: this network's output is smaller than its input (valid convolutions), "
                "so it takes no rescaled input. Use the flips alone (--tta hflip vflip)."
            )
        # The network at each scale; the others share its layers (utils/prediction/tta.py).
        self.networks = [(1.0, model)] + [(s, scaled_network(model, s)) for s in tta.scales if s != 1]
        self.sigmoid, channels = self.head == "sigmoid", model.output_shape[-1]
        self.input_shape = model.input_shape
        scores = 2**channels if self.head == "multilabel" else 2 if self.sigmoid else channels
        self.output_shape = (*model.output_shape[:-1], scores)
        self.binary = self.head != "multilabel" and scores == 2
        check_threshold(threshold, scores, self.head)
        self.threshold, self.channels = threshold, channels
        self.probability_channels = 2 if self.sigmoid else channels  # of probabilities(): a multilabel head's C
        self.weights = (threshold, 1.0 - threshold)  # class 1 where P(class 1) > threshold

    def network_probabilities(self, network, images):
        """One network's float32 (B, H', W', C) probabilities (a sigmoid head's p as (1 - p, p); a multilabel head's
        C sigmoids as they are)."""
        outputs = tf.cast(network(images, training=False), tf.float32)
        return tf.concat([1.0 - outputs, outputs], axis=-1) if self.sigmoid else outputs

    def probabilities(self, images):
        """float32 (B, H', W', C) class probabilities, summing to 1; with test-time augmentation, the mean over the
        copies (utils/prediction/tta.py), each mapped back to the input's frame."""
        if self.tta.copies == 1:
            return self.network_probabilities(self.model, images)
        size, total = tf.shape(images)[1:3], 0.0
        for scale, network in self.networks:
            scaled = images if scale == 1 else tf.image.resize(tf.cast(images, tf.float32), network.input_shape[1:3])
            copies, axes = flipped(scaled, self.tta)
            mean = averaged(self.network_probabilities(network, copies), axes)
            total += mean if scale == 1 else tf.image.resize(mean, size)  # bilinear, back to the input's size
        return total / len(self.networks)

    def __call__(self, images, training=False):
        probabilities = self.probabilities(images)
        if self.head == "multilabel":
            bits = tf.constant(set_bits(self.channels))  # (C, 2**C)
            return tf.tensordot(probabilities - self.threshold, bits, axes=[[-1], [0]])
        return probabilities * tf.constant(self.weights, tf.float32) if self.binary else probabilities


def class_scores(model) -> ClassScores:
    """The model as ClassScores (itself when it is already; a new one at threshold 0.5 otherwise)."""
    return model if isinstance(model, ClassScores) else ClassScores(model)


def output_class_ids(outputs: np.ndarray, head: str = "softmax") -> np.ndarray:
    """Class ids of raw network outputs (B, H, W, C) in numpy: p > 0.5 for a sigmoid head (C = 1), the packed set of
    classes with p > 0.5 for a multilabel head, else the argmax (export.py's parity check)."""
    if head == "multilabel":
        return ((outputs > 0.5) * (2 ** np.arange(outputs.shape[-1]))).sum(-1).astype(np.uint8)
    return (outputs[..., 0] > 0.5).astype(np.uint8) if outputs.shape[-1] == 1 else outputs.argmax(-1).astype(np.uint8)


def predict_function(model):
    """A compiled inference call: images (B, H, W, bands) -> class scores float32 (B, H', W', C) (ClassScores)."""
    scores = class_scores(model)
    return tf.function(lambda images: scores(images), reduce_retracing=True)
