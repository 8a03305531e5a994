"""The objects in a class-index label: per class its connected regions, their areas and their widths, what a
dataset's fingerprint (utils/dataset/fingerprint.py) gathers over a split."""

from dataclasses import dataclass

import cv2
import numpy as np

from utils.files.images import IGNORE_LABEL


@dataclass
class LabelObjects:
    """One label's contribution: pixels per class id (256 counts, 255 the ignored), and per class the areas and
    thicknesses of its objects."""

    pixels: np.ndarray
    areas: dict
    thicknesses: dict


def label_objects(label: np.ndarray) -> LabelObjects:
    """The objects of a class-index label (H, W) uint8."""
    pixels = np.bincount(label.ravel(), minlength=256)
    areas, thicknesses = {}, {}
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    for class_id in np.flatnonzero(pixels[:IGNORE_LABEL]):
        mask = (label == class_id).astype(np.uint8)
        count, regions, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
        # the outline: the region's pixels with a 4-neighbour outside it (the image's frame is no outline)
        outline = np.bincount(regions[(mask > 0) & (cv2.erode(mask, cross) == 0)], minlength=count)
        distance = cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
        widest = np.zeros(count, np.float32)
        inside = regions > 0
        np.maximum.at(widest, regions[inside], distance[inside])
        # a strip's width (twice its area over its outline), at most the widest disc inside it (a 1 px line: 1)
        width = np.minimum(2 * area / np.maximum(outline, 1), 2 * widest - 1)
        areas[int(class_id)] = area[1:].tolist()
        thicknesses[int(class_id)] = np.maximum(width[1:], 1).tolist()
    return LabelObjects(pixels, areas, thicknesses)
