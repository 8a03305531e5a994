"""The prediction path: from images to class-id masks at the images' own size, which the Unet predictor (every
predict.py mode, get_miou.py) and training's val mIoU all run. Two scale modes (utils/sliding.py):

fit    compiled calls: letterbox into the input, the model on a batch, the letterbox cropped out, the
       probabilities resized to each image's size, argmax.
slide  each image at image_scale, window by window (the model on batches of windows), blended, argmax; the
       class ids resized back to the image's size when image_scale is not 1.
"""

import cv2
import numpy as np
import tensorflow as tf

from nets.models import output_margin
from utils.bands import Bands
from utils.letterbox import bilinear_rows, fit_input, unletterbox_class_ids
from utils.prediction.sliding import blended_rows, slide_class_ids
from utils.prediction.tta import TestTimeAugmentation, averaged, flipped, scaled_network
from utils.scale import Scale, scaled_size

# slide: pixels of windows per model call, 4 windows of 256 x 256. The activations of a call are most of slide's
# memory (a 512 x 512 VGG16-UNet window takes about 0.4 GB in bf16 on a CPU), so larger windows go fewer a call.
WINDOW_PIXELS = 4 * 256 * 256


def windows_per_call(input_size) -> int:
    """slide: windows of input_size (S, S') per network call, WINDOW_PIXELS' worth, 1 to 16."""
    return max(1, min(16, WINDOW_PIXELS // (input_size[0] * input_size[1])))


def check_threshold(threshold: float, num_classes: int) -> None:
    """Raises ValueError unless 0 < threshold < 1, and 0.5 (the argmax) for other than 2 classes."""
    if not 0 < threshold < 1 or (threshold != 0.5 and num_classes != 2):
        raise ValueError(
            f"threshold={threshold}: expected a probability between 0 and 1 for a 2-class network (class 1 where its "
            f"probability is above it); with num_classes={num_classes} the argmax decides: leave threshold at 0.5."
        )


class ClassScores:
    """The network as every prediction path calls it: images -> float32 (B, H', W', C) scores whose argmax is the
    predicted class, C >= 2. Softmax probabilities pass as they are; a sigmoid head's p = P(class 1) becomes
    (1 - p, p). With two classes the scores are the probabilities times (threshold, 1 - threshold), so the argmax
    is class 1 exactly where P(class 1) > threshold (0.5: the plain argmax); blending and resizing, being linear,
    keep that. It stands in for the model (input_shape, output_shape, a call). The threshold is a constant of the
    compiled functions that call it (no variable: under a distribution strategy one would be distributed), so a
    new threshold needs new functions: Unet.set_threshold makes them.
    """

    def __init__(self, model, threshold: float = 0.5, tta: TestTimeAugmentation = TestTimeAugmentation()):
        self.model, self.tta = model, tta
        if tta.scales != (1.0,) and model.output_shape[1] != model.input_shape[1]:
            raise ValueError(
                f"tta scales {list(tta.scales)}: this network's output is smaller than its input (valid convolutions), "
                "so it takes no rescaled input. Use the flips alone (--tta hflip vflip)."
            )
        # The network at each scale; the others share its layers (utils/tta.py).
        self.networks = [(1.0, model)] + [(s, scaled_network(model, s)) for s in tta.scales if s != 1]
        self.sigmoid = model.output_shape[-1] == 1
        self.input_shape = model.input_shape
        self.output_shape = (*model.output_shape[:-1], 2 if self.sigmoid else model.output_shape[-1])
        self.binary = self.output_shape[-1] == 2
        check_threshold(threshold, self.output_shape[-1])
        self.weights = (threshold, 1.0 - threshold)  # class 1 where P(class 1) > threshold

    def network_probabilities(self, network, images):
        """One network's float32 (B, H', W', C) probabilities (a sigmoid head's p as (1 - p, p))."""
        outputs = tf.cast(network(images, training=False), tf.float32)
        return tf.concat([1.0 - outputs, outputs], axis=-1) if self.sigmoid else outputs

    def probabilities(self, images):
        """float32 (B, H', W', C) class probabilities, summing to 1; with test-time augmentation, the mean over the
        copies (utils/tta.py), each mapped back to the input's frame."""
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
        return probabilities * tf.constant(self.weights, tf.float32) if self.binary else probabilities


def class_scores(model) -> ClassScores:
    """The model as ClassScores (itself when it is already; a new one at threshold 0.5 otherwise)."""
    return model if isinstance(model, ClassScores) else ClassScores(model)


def output_class_ids(outputs: np.ndarray) -> np.ndarray:
    """Class ids of raw network outputs (B, H, W, C) in numpy: p > 0.5 for a sigmoid head (C = 1), else the argmax
    (export.py's parity check)."""
    return (outputs[..., 0] > 0.5).astype(np.uint8) if outputs.shape[-1] == 1 else outputs.argmax(-1).astype(np.uint8)


def predict_function(model):
    """A compiled inference call: images (B, H, W, bands) -> class scores float32 (B, H', W', C) (ClassScores)."""
    scores = class_scores(model)
    return tf.function(lambda images: scores(images), reduce_retracing=True)


def letterbox_to(model, scale: Scale):
    """(H, W) that fit mode letterboxes images into (the model's input), or None: slide takes them as they are."""
    return None if scale.slide else tuple(model.input_shape[1:3])


@tf.function(
    input_signature=[
        tf.TensorSpec([None, None, None], tf.float32),
        tf.TensorSpec([4], tf.int32),
        tf.TensorSpec([2], tf.int32),
    ]
)
def restore_mask(probabilities, box, size):
    """Crops the letterbox out of probabilities (H, W, C), resizes them to size (h, w) and takes the argmax.

    Returns:
        uint8 (h, w) class ids.
    """
    return unletterbox_class_ids(probabilities, box, size)


@tf.function(jit_compile=True)
def class_ids(probabilities):
    """uint8 argmax over the last axis of probabilities (..., C). Compiled with XLA, once per shape: faster than
    TensorFlow's own argmax kernel on a CPU (benchmarks/argmax.py; docs/performance.md)."""
    return tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8)


def slide_image_function(model, scale: Scale, window_batch: int = 0):
    """slide: image (h, w, bands) -> class ids uint8 (h, w), window by window at image_scale, window_batch a call
    (0: WINDOW_PIXELS' worth, 1 to 16)."""
    predict = predict_function(model)
    input_size, margin = tuple(model.input_shape[1:3]), output_margin(model)
    window_batch = window_batch or windows_per_call(input_size)

    def segment_image(image):
        image = np.asarray(image)
        height, width = image.shape[:2]
        scaled = image
        if scale.image_scale != 1:  # bilinear, as training's crops are scaled (augmentation.draws.augment)
            new_height, new_width = scaled_size(height, width, scale.image_scale)
            scaled = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
            scaled = scaled.reshape(new_height, new_width, -1)  # OpenCV drops a single band's axis
        ids = slide_class_ids(predict, scaled, input_size, margin, scale.overlap, window_batch)
        if scaled is not image:  # class ids stay class ids: nearest neighbour
            ids = cv2.resize(ids, (width, height), interpolation=cv2.INTER_NEAREST)
        return ids

    return segment_image


def segment_function(model, scale: Scale = Scale()):
    """The prediction path for a batch.

    Args (of the returned function):
        canvases: (B, H, W, bands) letterboxed images (in slide mode, the originals padded to the largest);
        boxes: int32 (B, 4) their letterbox boxes; sizes: int32 (B, 2) the original (h, w).

    Returns (of the returned function):
        uint8 (B, h_max, w_max) class ids: each image's mask at its own size in the top-left corner, 0 around it.
        In fit mode one compiled call: only the masks leave it, not the (B, H, W, C) probabilities.
    """
    model = class_scores(model)
    if scale.slide:
        segment_image = slide_image_function(model, scale)

        def segment_slide(canvases, boxes, sizes):
            sizes = np.asarray(sizes)
            masks = np.zeros((len(sizes), *sizes.max(axis=0)), np.uint8)
            for mask, canvas, (height, width) in zip(masks, np.asarray(canvases), sizes):
                mask[:height, :width] = segment_image(canvas[:height, :width])
            return masks

        return segment_slide

    @tf.function(reduce_retracing=True)
    def segment(canvases, boxes, sizes):
        padded = tf.reduce_max(sizes, axis=0)

        def restore_padded(args):
            probabilities, box, size = args  # (H, W, C), (4,), (2,)
            mask = restore_mask(probabilities, box, size)  # (h, w)
            return tf.pad(mask, [[0, padded[0] - size[0]], [0, padded[1] - size[1]]])

        probabilities = model(canvases)  # (B, H, W, C) class scores
        # Images that fill the canvas (no letterbox, no resize: a dataset at the model's input size) need only
        # the argmax, taken for the whole batch at once: its shape is the batch's, so it compiles once.
        canvas = tf.shape(canvases)[1:3]
        full = tf.concat([tf.zeros([2], tf.int32), canvas], 0)
        fills = tf.reduce_all(boxes == full) & tf.reduce_all(sizes == canvas)
        signature = tf.TensorSpec([None, None], tf.uint8)
        return tf.cond(
            fills,
            lambda: class_ids(probabilities),
            lambda: tf.map_fn(restore_padded, (probabilities, boxes, sizes), fn_output_signature=signature),
        )

    return segment


PROBABILITY_ROWS = 128  # rows of probabilities made at a time at the image's size (as ROWS_PER_BAND)


def probability_function(model, scale: Scale = Scale(), bands: Bands = Bands()):
    """The prediction path's probabilities for one image, at its size, a band of rows at a time (a large image's
    (h, w, C) probabilities never exist whole in memory): the same crop and bilinear resize (fit) or blending
    (slide) as the masks, before the argmax.

    Returns:
        image (h, w, bands) -> yields (top, float32 (rows, w, C)) for rows [top, top + rows), in order; the
        probabilities sum to 1 over C.
    """
    scores = class_scores(model)
    if scale.slide:
        predict = tf.function(scores.probabilities, reduce_retracing=True)
        input_size, margin = tuple(scores.input_shape[1:3]), output_margin(scores)
        window_batch = windows_per_call(input_size)

        def slide_bands(image):
            image = np.asarray(image)
            if scale.image_scale != 1:
                raise ValueError("probabilities of image_scale other than 1 are not written: use masks.")
            yield from blended_rows(predict, image, input_size, margin, scale.overlap, window_batch)

        return slide_bands
    letterbox = letterbox_to(scores, scale)

    @tf.function(input_signature=[tf.TensorSpec([None, None, bands.channels], bands.input_dtype)])
    def cropped(image):
        canvas, box = fit_input(image, letterbox, bands.fill)
        probabilities = scores.probabilities(canvas[None])[0]  # (H, W, C)
        return probabilities[box[0] : box[0] + box[2], box[1] : box[1] + box[3]]

    rows = tf.function(bilinear_rows, reduce_retracing=True)

    def fit_bands(image):
        crop, size = cropped(image), tf.shape(image)[:2]
        for top in range(0, int(size[0]), PROBABILITY_ROWS):
            stop = min(top + PROBABILITY_ROWS, int(size[0]))
            yield top, rows(crop, size, tf.constant(top), tf.constant(stop)).numpy()

    return fit_bands


def segment_image_function(model, scale: Scale = Scale(), bands: Bands = Bands()):
    """The prediction path for one image: (h, w, bands.channels) of bands.input_dtype -> class ids uint8 (h, w) (a
    numpy array in slide mode, a tensor in fit mode: np.asarray takes both)."""
    model = class_scores(model)
    if scale.slide:
        return slide_image_function(model, scale)
    letterbox = letterbox_to(model, scale)

    @tf.function(input_signature=[tf.TensorSpec([None, None, bands.channels], bands.input_dtype)])
    def segment_image(image):
        canvas, box = fit_input(image, letterbox, bands.fill)
        probabilities = model(canvas[None])[0]  # (H, W, C) class scores
        return restore_mask(probabilities, box, tf.shape(image)[:2])

    return segment_image
