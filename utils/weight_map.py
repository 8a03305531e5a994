"""The UNet paper's weight map (Ronneberger et al. 2015, eq. 2), which makes the loss separate touching objects.

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))² / (2 sigma²))

d1, d2: the distances from pixel x to the nearest and the second-nearest object; w_c: class balancing, here the
loss's cls_weights (utils/losses.py adds it). The objects are the connected regions (4-neighbour) of the object
classes, each region one object; the border term is given to the pixels of the other classes (the gaps between
objects: background, membranes), as in the paper's figure 3, and ignored pixels (255) get weight 0.

It is computed in the data pipeline on each augmented label (after the warp, before the classic UNet's margin is
cropped), so crops, rotations and elastic deformation get the weights of what they show.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np
import tensorflow as tf

from utils.files.images import IGNORE_LABEL

# Border terms smaller than this are dropped: each object's distances are computed only within the reach where the
# term can exceed it (a window around the object), which keeps the cost to a few small distance transforms.
NEGLIGIBLE = 1e-3


@dataclass(frozen=True)
class WeightMap:
    """The weight map's parameters: w0, sigma (px) and the object classes."""

    w0: float = 10.0
    sigma: float = 5.0
    objects: tuple = (1,)

    def check(self, num_classes: int) -> None:
        """Raises ValueError naming a setting that cannot work."""
        if self.w0 <= 0 or self.sigma <= 0:
            raise ValueError(
                f"weight_map_w0={self.w0}, weight_map_sigma={self.sigma}: expected both > 0 (the paper's 10 and 5)."
            )
        wrong = [c for c in self.objects if not 0 <= c < num_classes]
        if wrong or not self.objects or len(set(self.objects)) >= num_classes:
            raise ValueError(
                f"weight_map_objects={list(self.objects)}: expected some of the classes 0-{num_classes - 1}, not all "
                "(the border term goes to the pixels of the other classes). Empty: every class but 0."
            )

    @property
    def reach(self) -> int:
        """Distance in px beyond which the border term is below NEGLIGIBLE: d2 >= reach gives d1 + d2 >= reach."""
        return math.ceil(self.sigma * math.sqrt(2 * math.log(max(self.w0, 1.0) / NEGLIGIBLE)))


def label_objects(label: np.ndarray, classes) -> tuple:
    """The objects of a label: int32 (H, W) object number 1..N (0 elsewhere), and int (N, 4) each one's box
    (top, left, bottom, right), bottom and right exclusive."""
    objects, boxes = np.zeros(label.shape, np.int32), []
    present = np.bincount(label.ravel(), minlength=256)
    for class_id in (c for c in classes if present[c]):
        found, regions, stats, _ = cv2.connectedComponentsWithStats(
            (label == class_id).astype(np.uint8), connectivity=4
        )
        objects = np.where(regions > 0, regions + len(boxes), objects)
        left, top, width, height = stats[1:, :4].T  # row 0: what is not of the class
        boxes.extend(zip(top, left, top + height, left + width))
    return objects, np.array(boxes, np.int64).reshape(-1, 4)


def nearest_two_distances(objects: np.ndarray, boxes: np.ndarray, reach: int):
    """float32 (H, W) each: the distance (px, Euclidean between pixel centres) to the nearest and second-nearest
    object, inf where there is none within `reach` (0 on an object for its own distance).

    Args:
        objects, boxes: as label_objects gives them.
    """
    height, width = objects.shape
    first = np.full((height, width), np.inf, np.float32)
    second = np.full((height, width), np.inf, np.float32)
    for number, (top, left, bottom, right) in enumerate(boxes, start=1):
        # The object's distances matter only within `reach` of it: a window around its box.
        top, left = max(top - reach, 0), max(left - reach, 0)
        bottom, right = min(bottom + reach, height), min(right + reach, width)
        outside = (objects[top:bottom, left:right] != number).astype(np.uint8)
        distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)  # 0 on the object
        near, far = first[top:bottom, left:right], second[top:bottom, left:right]
        far[...] = np.minimum(far, np.maximum(near, distance))
        near[...] = np.minimum(near, distance)
    return first, second


def border_weights(label: np.ndarray, weight_map: WeightMap) -> np.ndarray:
    """float32 (H, W): w0 * exp(-(d1 + d2)² / (2 sigma²)) on the pixels outside the objects, 0 on the objects and on
    ignored pixels (the w_c part is the loss's).

    Args:
        label: uint8 (H, W) class ids, IGNORE_LABEL ignored.
    """
    objects, boxes = label_objects(label, weight_map.objects)
    first, second = nearest_two_distances(objects, boxes, weight_map.reach)
    term = weight_map.w0 * np.exp(-np.square(first + second) / (2 * weight_map.sigma**2))  # inf -> 0
    gaps = (objects == 0) & (label != IGNORE_LABEL)
    return np.where(gaps, term, 0.0).astype(np.float32)


def weighted_targets(label, weight_map: WeightMap):
    """tf.data map: label uint8 (H, W) -> float32 (H, W, 2): the class ids and the border term, which the
    losses built with weight_map=True take as their targets."""

    def compute(array):
        return border_weights(array, weight_map)

    border = tf.numpy_function(compute, [label], tf.float32, stateful=False)
    border = tf.ensure_shape(border, label.shape)
    return tf.stack([tf.cast(label, tf.float32), border], axis=-1)
