"""Multi-label segmentation (head multilabel): classes that may overlap, one sigmoid each, as smp's
activation="sigmoid" and nnU-Net's regions. The one owner of its label format.

A user's labels: one mask per class and image, in a folder per class (the documented layout),

    VOC2007/SegmentationLabels/<class name>/<image id>.png   0 = not the class, one other value = the class
    VOC2007/SegmentationLabels/_ignore/<image id>.png        optional: nonzero = not scored, not trained on

voc_annotation.py packs them, bit c for the c-th class (classes.txt's order), into one uint8 class-id PNG per image
in VOC2007/SegmentationClass, with 255 where _ignore says. So up to MAX_LABELS classes fit, 255 stays the ignore
value (its bit 7 is never a class's), and every part that moves labels (reading, checks, augmentation, crops,
fingerprint) takes them as it takes class ids, 2**C values. Only what interprets a value unpacks it: the loss, the
decision and the metrics below.

The decision is linear: a pixel's scores over the 2**C sets S are sum_{c in S} (p_c - t_c), whose argmax is
exactly the set of classes with p_c > t_c. Being linear in p it commutes with the bilinear resizing and the
blending of every prediction path, so they take it as a softmax's probabilities, argmax and all.
"""

import os

import numpy as np

from utils.files.images import IGNORE_LABEL

MAX_LABELS = 7  # bits 0-6 of a uint8; 255 (all bits) is the ignore value
LABELS_DIR = "SegmentationLabels"
IGNORE_DIR = "_ignore"
PACKED_MARK = ".packed_from_SegmentationLabels"  # in SegmentationClass: its files are ours; it lists the classes


def label_values(num_labels: int) -> int:
    """The number of values a packed label takes: every set of num_labels classes."""
    return 2**num_labels


def set_bits(num_labels: int) -> np.ndarray:
    """float32 (C, 2**C): [c, s] = 1 where set s holds class c (bit c of s)."""
    sets = np.arange(label_values(num_labels))
    return ((sets[None, :] >> np.arange(num_labels)[:, None]) & 1).astype(np.float32)


def unpack(label: np.ndarray, num_labels: int) -> np.ndarray:
    """bool (..., C): each class's pixels in a packed label (255 = ignore counts as none)."""
    label = np.asarray(label)
    bits = (label[..., None] >> np.arange(num_labels)) & 1
    return (bits > 0) & (label != IGNORE_LABEL)[..., None]


def pack(masks: np.ndarray, ignore=None) -> np.ndarray:
    """uint8 (H, W) of bool (C, H, W) class masks, 255 where `ignore` (bool (H, W)) is set."""
    packed = np.zeros(masks.shape[1:], np.uint8)
    for c, mask in enumerate(masks):
        packed |= mask.astype(np.uint8) << c
    if ignore is not None:
        packed[ignore] = IGNORE_LABEL
    return packed


def label_matrices(matrix: np.ndarray, num_labels: int) -> np.ndarray:
    """int64 (C, 2, 2): each class's binary confusion ([truth, prediction], 1 = the class) from the confusion of
    packed values (2**C, 2**C), which counts every pixel once."""
    bits = set_bits(num_labels).astype(bool)  # (C, 2**C)
    out = np.zeros((num_labels, 2, 2), np.int64)
    for c in range(num_labels):
        for truth in (0, 1):
            for predicted in (0, 1):
                rows, columns = bits[c] == truth, bits[c] == predicted
                out[c, truth, predicted] = matrix[np.ix_(rows, columns)].sum()
    return out


def label_folders(voc: str) -> list:
    """The class folders of VOC2007/SegmentationLabels, sorted; [] when there is none."""
    root = os.path.join(voc, LABELS_DIR)
    if not os.path.isdir(root):
        return []
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and d != IGNORE_DIR)


def check_packed_head(voc: str, head: str, num_classes: int) -> None:
    """ValueError when VOC2007/SegmentationClass holds packed multi-label labels (PACKED_MARK) and the run is not set
    for them (head multilabel, num_classes their classes), or holds class ids and the run is."""
    mark = os.path.join(voc, "SegmentationClass", PACKED_MARK)
    names = open(mark, encoding="utf-8").read().split() if os.path.isfile(mark) else []
    if names and (head != "multilabel" or num_classes != len(names)):
        raise ValueError(
            f"{os.path.dirname(mark)}: multi-label labels, packed by voc_annotation.py from {LABELS_DIR}/ "
            f"({', '.join(names)}), but head={head}, num_classes={num_classes}. Train them with --head multilabel "
            f"--num_classes {len(names)}."
        )
    if not names and head == "multilabel":
        raise ValueError(
            f"head=multilabel, but {voc}/SegmentationClass holds no packed multi-label labels. Put one mask per class "
            f"in {voc}/{LABELS_DIR}/<class>/<id>.png and run python voc_annotation.py (README: Multi-label data)."
        )


def check_label_count(num_labels: int, where: str) -> None:
    """ValueError unless 1 <= num_labels <= MAX_LABELS."""
    if not 1 <= num_labels <= MAX_LABELS:
        raise ValueError(
            f"{where}: {num_labels} classes for a multi-label head; expected 1 to {MAX_LABELS} (each is a bit of a "
            "uint8 label, and 255 is the ignore value). Split the classes over two networks."
        )


def set_names(names: list) -> list:
    """A name for every packed value: its classes joined by '+', 'none' for the empty set."""
    return ["+".join(n for c, n in enumerate(names) if s >> c & 1) or "none" for s in range(label_values(len(names)))]


def set_colours(colours: np.ndarray) -> np.ndarray:
    """uint8 (2**C, 3): each set of classes in the mean colour of its classes' (C, 3) colours; the empty set black."""
    bits = set_bits(len(colours))  # (C, 2**C)
    counts = np.maximum(bits.sum(0), 1)[:, None]
    return np.round(bits.T @ np.asarray(colours, np.float32) / counts).astype(np.uint8)


def class_pixels(mask: np.ndarray, class_id: int, multilabel: int = 0) -> np.ndarray:
    """bool: class_id's pixels in a mask: where its value is class_id, or (multilabel) where its bit is set."""
    if multilabel:
        return (mask != IGNORE_LABEL) & (mask >> class_id & 1 > 0)
    return mask == class_id


def drawn_classes(num_classes: int, multilabel: int = 0) -> range:
    """The classes a mask's outputs (areas, polygons, per-class masks) give: every one but the background, or (a
    multilabel head's) every class."""
    return range(num_classes) if multilabel else range(1, num_classes)
