"""Evaluation at original resolution: the one path training-time mIoU and get_miou.py share."""

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from utils.letterbox import unletterbox
from utils.metrics import confusion_matrix


def predict_function(model):
    """A compiled inference call: images uint8 (B, H, W, 3) -> probabilities float32 (B, H, W, C)."""
    return tf.function(lambda images: model(images, training=False), reduce_retracing=True)


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
    return tf.cast(tf.argmax(unletterbox(probabilities, box, size), axis=-1), tf.uint8)


def restore_masks(probabilities, boxes, sizes) -> list:
    """restore_mask for each image of a batch.

    Args:
        probabilities: (B, H, W, C) network output on letterboxed images.
        boxes: int (B, 4) letterbox boxes [top, left, resized_height, resized_width].
        sizes: int (B, 2) original (h, w).

    Returns:
        B uint8 arrays of class ids, each (h, w).
    """
    return [restore_mask(p, b, s).numpy() for p, b, s in zip(probabilities, boxes, sizes)]


def evaluate_confusion(predict, eval_dataset, num_classes: int, num_batches=None, desc="mIoU") -> np.ndarray:
    """Confusion matrix (C, C) over a dataset from dataloader.build_eval_dataset.

    Args:
        predict: from predict_function(model): images uint8 (B, H, W, 3) -> probabilities (B, H, W, C).
    """
    matrix = np.zeros((num_classes, num_classes), np.int64)
    for images, labels, boxes, sizes in tqdm(eval_dataset, total=num_batches, desc=desc, unit="batch", leave=False):
        masks = restore_masks(predict(images), boxes, sizes)
        for mask, label, (height, width) in zip(masks, labels.numpy(), sizes.numpy()):
            matrix += confusion_matrix(label[:height, :width], mask, num_classes)
    return matrix
