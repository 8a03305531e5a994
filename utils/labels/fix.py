"""Corrected class-id labels for voc_annotation.py --fix: each file converted as utils/labels/formats.py judged.

The originals are only read: corrected labels go to a new folder, written whole and then renamed into place.
"""

import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from utils.labels.facts import read_label
from utils.visualize import class_colours, palette_image

FIXED_DIR = "SegmentationClass_fixed"
ORIGINAL_DIR = "SegmentationClass_original"


def save_label(array: np.ndarray, path) -> None:
    """A class-id label as a palette PNG (pixel values are the ids; VOC colours in a viewer), to a path or file."""
    palette_image(array, class_colours(min(int(array.max()) + 1, 21))).save(path, format="PNG")


def check_fix_target(voc: str) -> str:
    """The folder --fix writes into, refused when an earlier --fix left one (before any work starts)."""
    out_dir = os.path.join(voc, FIXED_DIR)
    if os.path.exists(out_dir):
        raise ValueError(
            f"{out_dir} already exists (from an earlier --fix). Use it with --use_fixed, or move it away "
            "and run --fix again."
        )
    return out_dir


def write_fixed_labels(voc: str, label_paths: dict, conversions: dict, dry_run: bool = False) -> list:
    """Writes every label into VOC2007/SegmentationClass_fixed: those with a conversion (labels/judgement.Conversion)
    converted (always as .png), the others copied byte for byte. The folder is built under a temporary name and
    renamed when complete.

    Args:
        label_paths: {id: label file}; conversions: {label file: Conversion}.

    Returns:
        Lines saying what was (or, in a dry run, would be) written.
    """
    out_dir = check_fix_target(voc)
    work = None if dry_run else tempfile.mkdtemp(prefix=".tmp-fixed-", dir=voc)

    def write(item) -> str | None:
        label_id, path = item
        target = f"{label_id}.png"
        if path in conversions:
            if work:
                save_label(conversions[path].apply(read_label(path)), os.path.join(work, target))
            return f"{os.path.basename(path)} -> {FIXED_DIR}/{target}: {'; '.join(conversions[path].notes)}"
        if work:
            shutil.copy2(path, os.path.join(work, target))
        return None

    try:
        with ThreadPoolExecutor(max_workers=min(8, 2 * (os.cpu_count() or 1))) as pool:  # decoding releases the GIL
            written = pool.map(write, sorted(label_paths.items()))
            lines = [line for line in tqdm(written, total=len(label_paths), desc="Writing", leave=False) if line]
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
