"""Dataset checks shared by voc_annotation.py (every file, with a report) and train.py (the split's files).

Each problem names the file, says what was found and what was expected, and how to fix it. Problems that
would break training are fatal; merely suspicious ones (a label with only background) are warnings.
"""

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from utils.bands import image_header
from utils.colour_masks import is_grey, palette_mapping, rgb_channels, unique_colours
from utils.images import IGNORE_LABEL, read_split, split_samples
from utils.visualize import hex_colour

MAX_LISTED = 5
LABEL_MODES = ("L", "P", "1")  # one class id per pixel
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
EXPECTED_IDS = "expected one class id per pixel (mode L or P)."


@dataclass
class Problem:
    path: str
    kind: str  # short key, e.g. "zero_255", "colour", "jpeg", "16bit", "size", "classes", "unreadable", "missing"
    message: str  # the file, what was found, what was expected and how to fix it
    fatal: bool = True  # would break training (else a warning)
    fixable: bool = False  # voc_annotation.py --fix can correct it


def file_problem(path: str, what: str):
    """A Problem for a missing or empty file, else None."""
    if not os.path.isfile(path):
        expected = "an image named like the id" if what == "image" else "a class-index .png named like its image"
        return Problem(
            path,
            "missing",
            f"{path}: {what} not found (expected {expected}). Add it, or rebuild the splits with "
            "python voc_annotation.py, which lists only ids that have both an image and a label.",
        )
    if os.path.getsize(path) == 0:
        return Problem(
            path, "empty", f"{path}: empty file (0 bytes). Copy the {what} again from its source, or remove it."
        )
    return None


def unreadable(path: str, what: str, error) -> Problem:
    return Problem(
        path,
        "unreadable",
        f"{path}: cannot be read as {'an image' if what == 'image' else 'a label'} ({error}). The file may be "
        "truncated or of another format: "
        "export or copy it again, or remove it and rebuild the splits with python voc_annotation.py.",
    )


def image_info(path: str):
    """((width, height) as shown upright, (bands, sample type)) of an image, read fully so that a truncated file is
    found now rather than hours into training (bands.image_header). Returns (info or None, Problem or None)."""
    problem = file_problem(path, "image")
    if problem:
        return None, problem
    try:
        (height, width), bands, dtype = image_header(path)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        return None, unreadable(path, "image", error)
    return ((width, height), (bands, dtype)), None


def colour_problem(path: str, rgb: np.ndarray, mode: str, palette=None) -> Problem:
    """The problem of an RGB(A) label, with the colour -> class mapping --fix would use when one is found."""
    colours = unique_colours(rgb)
    if is_grey(rgb):
        values = np.unique(rgb[..., 0]).tolist()
        found = f"grey values {values[:8]}{' ...' if len(values) > 8 else ''} stored as colour (mode {mode})"
        fix = "python voc_annotation.py --fix writes them as a one-channel PNG"
        return Problem(path, "colour", f"{path}: {found}; {EXPECTED_IDS} {fix}.", True, True)
    shown = ", ".join(hex_colour(c) for c in colours[:6]) + (" ..." if len(colours) > 6 else "")
    found = f"an RGB colour mask (mode {mode}, {len(colours)} colours: {shown})"
    mapping = palette_mapping(colours, palette)
    if mapping:
        pairs = ", ".join(f"{hex_colour(c)} -> {i}" for c, i in list(mapping.items())[:8])
        fix = f"Its colours map to classes: {pairs}. python voc_annotation.py --fix writes class-id labels so"
    else:
        fix = (
            "Its colours are not a known palette: give the colour of each class in class order, "
            "python voc_annotation.py --fix --palette '#000000' '#ff0000' ..."
        )
    return Problem(path, "colour", f"{path}: {found}; {EXPECTED_IDS} {fix}.", True, bool(mapping))


def value_problems(path: str, values: np.ndarray, num_classes: int) -> list:
    """Problems of a label's class-id values (sorted unique uint8)."""
    values = values.tolist()
    if values == [0, IGNORE_LABEL]:
        return [
            Problem(
                path,
                "zero_255",
                f"{path}: values are 0 and 255 only. 255 means 'ignore', so the objects would never be learned; the "
                "object class should be 1. Run python voc_annotation.py --fix to write corrected labels.",
                True,
                True,
            )
        ]
    too_large = [v for v in values if v >= num_classes and v != IGNORE_LABEL] if num_classes else []
    if too_large:
        return [
            Problem(
                path,
                "classes",
                f"{path}: class values {too_large} but num_classes={num_classes} (values must be < num_classes, "
                f"or 255 for ignore). Set num_classes to at least {max(too_large) + 1}, or fix the labels.",
            )
        ]
    if set(values) <= {0, IGNORE_LABEL}:
        return [Problem(path, "background", f"{path}: only background: nothing to learn from this image.", False)]
    return []


def inspect_label(path: str, num_classes: int = 0, palette=None):
    """Reads a label fully. Returns (size, pixel count per value uint8 (256,) or None when unusable, problems)."""
    problem = file_problem(path, "label")
    if problem:
        return None, None, [problem]
    try:
        with Image.open(path) as label:
            label.load()
            size, mode, image_format = label.size, label.mode, label.format
            array = np.asarray(label)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        return None, None, [unreadable(path, "label", error)]
    if image_format != "PNG":
        message = (
            f"{path}: a {image_format} file; expected a PNG with one class id per pixel. "
            + (
                "JPEG compression changes the values at every edge, so it cannot hold class ids. "
                if image_format == "JPEG"
                else ""
            )
            + "python voc_annotation.py --fix writes it as PNG"
            + (" (values snapped to the label's main values)." if image_format == "JPEG" else ".")
        )
        return size, None, [Problem(path, "jpeg" if image_format == "JPEG" else "format", message, True, True)]
    if mode in SIXTEEN_BIT_MODES:
        fits = array.max() <= 255
        fix = "python voc_annotation.py --fix converts it" if fits else f"values go up to {array.max()}"
        message = f"{path}: a {mode} label (16 or 32 bits per pixel); expected 8 bits (mode L or P): {fix}."
        return size, None, [Problem(path, "16bit", message, True, bool(fits))]
    if mode not in LABEL_MODES:
        if array.ndim != 3:
            return size, None, [Problem(path, "mode", f"{path}: a label of mode {mode}; expected mode L or P.")]
        return size, None, [colour_problem(path, rgb_channels(array), mode, palette)]
    histogram = np.bincount(array.astype(np.uint8).ravel(), minlength=256)
    return size, histogram, value_problems(path, np.flatnonzero(histogram).astype(np.uint8), num_classes)


def inspect_pair(image_path: str, label_path: str, num_classes: int = 0, palette=None):
    """Checks an image and its label together.

    Returns:
        (label histogram (256,) or None, problems, the image's ((width, height), (bands, sample type)) or None).
    """
    info, image_problem = image_info(image_path)
    image_size_found = info and info[0]
    label_size, histogram, problems = inspect_label(label_path, num_classes, palette)
    problems = ([image_problem] if image_problem else []) + problems
    if image_size_found and label_size and image_size_found != label_size:
        problems.append(
            Problem(
                label_path,
                "size",
                f"{label_path}: size {label_size} (width, height) differs from its image's {image_size_found} "
                f"({image_path}). A label must be drawn on its own image: export it again at the image's size.",
            )
        )
    return histogram, problems, info


def check_pair(image_path: str, label_path: str, num_classes: int):
    """(the first problem of a pair that would break training as a message or None, the image's (bands, sample
    type) or None)."""
    _, problems, info = inspect_pair(image_path, label_path, num_classes)
    return next((p.message for p in problems if p.fatal), None), info and info[1]


def check_split(samples, split: str, num_classes: int, min_samples: int, split_file: str) -> dict:
    """Raises ValueError naming every file that would break training, and how to fix it.

    Args:
        samples: [(image_path, label_path)] from dataloader.split_samples.
        min_samples: the least number of samples the split needs (a full batch).

    Returns:
        {image path: (bands, sample type)} (what bands.survey takes).
    """
    if len(samples) < min_samples:
        raise ValueError(
            f"{split_file}: {len(samples)} ids, but at least {min_samples} are needed (one full batch). "
            "Add images, lower the batch size, or rebuild the splits with python voc_annotation.py."
        )
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            tqdm(
                pool.map(lambda pair: check_pair(*pair, num_classes), samples),
                total=len(samples),
                desc=f"Checking {split}",
                leave=False,
            )
        )
    problems = [problem for problem, _ in results if problem]
    if problems:
        listed = "\n  ".join(problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise ValueError(f"{len(problems)} of {len(samples)} samples in {split_file} are unusable:\n  {listed}{more}")
    return {image: kind for (image, _), (_, kind) in zip(samples, results)}


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


def check_dataset(vocdevkit_path: str, num_classes: int, min_train: int, min_val: int) -> dict:
    """Checks ImageSets/Segmentation/{train,val}.txt and every pair they list (see check_split).

    Returns:
        {image path: (bands, sample type)} of both splits' images.
    """
    kinds = {}
    for split, minimum in [("train", min_train), ("val", min_val)]:
        split_file = checked_split_file(vocdevkit_path, split)
        kinds.update(check_split(split_samples(vocdevkit_path, split), split, num_classes, minimum, split_file))
    return kinds
