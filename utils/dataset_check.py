"""Checks a split before training, so that a bad dataset fails in seconds with a message saying how to fix it."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from utils.dataloader import read_split, split_samples

IGNORE_LABEL = 255
MAX_LISTED = 5


def check_pair(image_path: str, label_path: str, num_classes: int):
    """What is wrong with one (image, label) pair, or None. Reads the label's pixels and the image's header."""
    if not os.path.isfile(image_path):
        return f"{image_path}: image not found (expected for the id listed in the split file)"
    if not os.path.isfile(label_path):
        return f"{label_path}: label not found; labels are class-index .png files named like their image"
    try:
        with Image.open(image_path) as image:
            image_size = image.size
        with Image.open(label_path) as label:
            if label.format != "PNG" or label.mode in ("RGB", "RGBA", "LA", "I", "I;16", "I;16B", "F"):
                return (
                    f"{label_path}: {label.format} image of mode {label.mode}; expected a PNG with one class id "
                    "per pixel (mode L or P). Run python voc_annotation.py to find and convert such labels."
                )
            if label.size != image_size:
                return f"{label_path}: size {label.size} differs from its image's {image_size} ({image_path})"
            values = np.unique(np.asarray(label))
    except (OSError, UnidentifiedImageError) as error:
        return f"unreadable file: {error}"
    if values.tolist() == [0, IGNORE_LABEL]:
        return (
            f"{label_path}: values are 0 and 255 only. 255 means 'ignore', so the objects would never be learned; "
            "the object class should be 1. Run python voc_annotation.py --fix to write corrected labels."
        )
    too_large = values[(values >= num_classes) & (values != IGNORE_LABEL)]
    if too_large.size:
        return (
            f"{label_path}: class values {too_large.tolist()} but num_classes={num_classes} "
            f"(values must be < num_classes, or 255 for ignore). Set num_classes to at least {too_large.max() + 1}, "
            "or fix the labels."
        )
    return None


def check_split(samples, split: str, num_classes: int, min_samples: int, split_file: str) -> None:
    """Raises ValueError naming every file that would break training, and how to fix it.

    Args:
        samples: [(image_path, label_path)] from dataloader.split_samples.
        min_samples: the least number of samples the split needs (a full batch).
    """
    if len(samples) < min_samples:
        raise ValueError(
            f"{split_file}: {len(samples)} ids, but at least {min_samples} are needed (one full batch). "
            "Add images, lower the batch size, or rebuild the splits with python voc_annotation.py."
        )
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = pool.map(lambda pair: check_pair(*pair, num_classes), samples)
        problems = [p for p in tqdm(results, total=len(samples), desc=f"Checking {split}", leave=False) if p]
    if problems:
        listed = "\n  ".join(problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise ValueError(f"{len(problems)} of {len(samples)} samples in {split_file} are unusable:\n  {listed}{more}")


def checked_split_file(vocdevkit_path: str, split: str) -> str:
    """The path of ImageSets/Segmentation/<split>.txt; ValueError if it is missing or lists no ids."""
    split_file = os.path.join(vocdevkit_path, "VOC2007", "ImageSets", "Segmentation", f"{split}.txt")
    if not os.path.isfile(split_file):
        raise ValueError(
            f"{split_file} not found. Put images in VOC2007/JPEGImages and labels in "
            "VOC2007/SegmentationClass, then run python voc_annotation.py to write the splits "
            "(or point --vocdevkit_path at a dataset that has them)."
        )
    if not read_split(split_file):
        raise ValueError(f"{split_file} lists no ids. Run python voc_annotation.py to rebuild the splits.")
    return split_file


def check_dataset(vocdevkit_path: str, num_classes: int, min_train: int, min_val: int) -> None:
    """Checks ImageSets/Segmentation/{train,val}.txt and every pair they list (see check_split)."""
    for split, minimum in [("train", min_train), ("val", min_val)]:
        split_file = checked_split_file(vocdevkit_path, split)
        check_split(split_samples(vocdevkit_path, split), split, num_classes, minimum, split_file)
