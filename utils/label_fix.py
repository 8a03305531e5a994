"""Corrected class-id labels for voc_annotation.py --fix: 0/255 masks, colour masks, JPEG and 16-bit labels.

The originals are only read: corrected labels go to a new folder, written whole and then renamed into place.
"""

import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from utils.colour_masks import is_grey, pack_colours, palette_mapping, rgb_channels, unique_colours
from utils.images import IGNORE_LABEL
from utils.visualize import class_colours, hex_colour, palette_image

FIXED_DIR = "SegmentationClass_fixed"
ORIGINAL_DIR = "SegmentationClass_original"
MAIN_VALUE_SHARE = 0.002  # a value (or colour) covering at least this share of a JPEG label is one of its classes
MAIN_VALUE_DISTANCE = 24  # ... unless it is this close to a more frequent one (then it is compression noise)


def snap_to_main_values(array: np.ndarray):
    """Removes JPEG noise: every pixel takes the nearest of the label's main values (grey) or colours (RGB).

    Returns:
        (snapped array, the main values as a list).
    """
    pixels = array.reshape(-1, array.shape[-1] if array.ndim == 3 else 1).astype(np.int32)
    values, inverse, counts = np.unique(pixels, axis=0, return_inverse=True, return_counts=True)
    main = []
    for index in np.argsort(-counts):
        if counts[index] < MAIN_VALUE_SHARE * len(pixels) and main:
            break
        if all(np.linalg.norm(values[index] - m) > MAIN_VALUE_DISTANCE for m in main):
            main.append(values[index])
    main = np.array(main)
    # nearest main value of each distinct value, then of each pixel through the inverse index
    nearest = np.argmin(np.linalg.norm(values[:, None, :] - main[None], axis=-1), axis=1)
    snapped = main[nearest[inverse.ravel()]].reshape(array.shape).astype(np.uint8)
    return snapped, [m.tolist() if len(m) > 1 else int(m[0]) for m in main]


def colours_to_ids(rgb: np.ndarray, mapping: dict) -> np.ndarray:
    """(H, W, 3) colours -> (H, W) uint8 class ids through {(r, g, b): id}."""
    packed, keys = pack_colours(rgb), pack_colours(list(mapping))
    ids = np.array(list(mapping.values()), np.uint8)
    order = np.argsort(keys)
    return ids[order][np.searchsorted(keys[order], packed)]


def corrected_label(path: str, palette=None):
    """Class ids for a label that is not yet a valid class-id PNG.

    Returns:
        (uint8 (H, W) class ids, [what was done]). Raises ValueError when it cannot be corrected.
    """
    with Image.open(path) as label:
        label.load()
        image_format, array = label.format, np.asarray(label)
    notes = []
    if image_format == "JPEG":
        array, main = snap_to_main_values(array)
        notes.append(f"JPEG noise snapped to its main values {main}")
    if array.ndim == 3:
        rgb = rgb_channels(array)
        if is_grey(rgb):
            array = rgb[..., 0]
            notes.append("grey values stored as colour -> one channel")
        else:
            tolerance = MAIN_VALUE_DISTANCE if image_format == "JPEG" else 0.0
            mapping = palette_mapping(unique_colours(rgb), palette, tolerance)
            if mapping is None:
                raise ValueError(f"{path}: colours not in the palette; give --palette with every class's colour")
            array = colours_to_ids(rgb, mapping)
            notes.append("colours -> class ids " + ", ".join(f"{hex_colour(c)}->{i}" for c, i in mapping.items()))
    if array.dtype != np.uint8:
        if array.max() > 255:
            raise ValueError(f"{path}: values up to {array.max()} do not fit in 8 bits")
        array = array.astype(np.uint8)
        notes.append("16-bit -> 8-bit")
    if image_format == "JPEG" and array.ndim == 2:
        # a grey mask's two main values drift a little under JPEG: 2 and 252 are 0 and 255
        array = np.where(array <= MAIN_VALUE_DISTANCE, 0, np.where(array >= 255 - MAIN_VALUE_DISTANCE, 255, array))
        array = array.astype(np.uint8)
    if np.unique(array).tolist() == [0, IGNORE_LABEL]:
        array = (array == IGNORE_LABEL).astype(np.uint8)
        notes.append("0/255 -> 0/1")
    return array, notes


def save_label(array: np.ndarray, path) -> None:
    """A class-id label as a palette PNG (pixel values are the ids; VOC colours in a viewer), to a path or file."""
    palette_image(array, class_colours(min(int(array.max()) + 1, 21))).save(path, format="PNG")


def write_fixed_labels(voc: str, label_paths: dict, fixable: set, palette=None, dry_run: bool = False) -> list:
    """Writes every label into VOC2007/SegmentationClass_fixed: fixable ones corrected (always as .png),
    the others copied byte for byte. The folder is built under a temporary name and renamed when complete.

    Args:
        label_paths: {id: label file}; fixable: the ids to correct.

    Returns:
        Lines saying what was (or, in a dry run, would be) written.
    """
    out_dir = os.path.join(voc, FIXED_DIR)
    if os.path.exists(out_dir):
        raise ValueError(
            f"{out_dir} already exists (from an earlier --fix). Use it with --use_fixed, or move it away "
            "and run --fix again."
        )
    lines, work = [], None if dry_run else tempfile.mkdtemp(prefix=".tmp-fixed-", dir=voc)
    try:
        for label_id, path in sorted(label_paths.items()):
            target = f"{label_id}.png"
            if label_id in fixable:
                array, notes = corrected_label(path, palette)
                lines.append(f"{os.path.basename(path)} -> {FIXED_DIR}/{target}: {'; '.join(notes)}")
                if work:
                    save_label(array, os.path.join(work, target))
            elif work:
                shutil.copy2(path, os.path.join(work, target))
        if work:
            os.rename(work, out_dir)
    finally:
        if work and os.path.isdir(work):
            shutil.rmtree(work)
    return lines


def use_fixed_labels(voc: str) -> str:
    """Renames SegmentationClass -> SegmentationClass_original and SegmentationClass_fixed -> SegmentationClass."""
    labels, fixed, original = (os.path.join(voc, d) for d in ("SegmentationClass", FIXED_DIR, ORIGINAL_DIR))
    if not os.path.isdir(fixed):
        raise ValueError(f"{fixed} not found: run python voc_annotation.py --fix first.")
    if os.path.exists(original):
        raise ValueError(f"{original} already exists: move it away first, so that no labels are lost.")
    os.rename(labels, original)
    os.rename(fixed, labels)
    return f"Now using the fixed labels: {labels} (your originals are in {original})"
