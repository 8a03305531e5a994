"""Dataset files without TensorFlow: split files, image ids, and labels read with PIL (images:
utils/files/image_files.py)."""

import os
from collections import Counter
from dataclasses import dataclass

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")
# The label value of pixels that count for nothing: no loss, no metric (VOC's object borders, letterbox fill).
IGNORE_LABEL = 255
# Large aerial tiles and slides are images this tool is for: PIL's guard against decompression bombs would warn at
# 89 M pixels (a 10,000 x 10,000 image has 100 M) and refuse at twice that. A billion pixels is 3 GB as RGB.
Image.MAX_IMAGE_PIXELS = 1_000_000_000


def image_files(folder: str) -> list:
    """Paths of the image files in a folder (IMAGE_SUFFIXES, any case), sorted by name; [] if there is none."""
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return [os.path.join(folder, name) for name in names if name.lower().endswith(IMAGE_SUFFIXES)]


def read_split(split_file: str) -> list:
    """Ids in an ImageSets split file, one a line; blank lines, CRLF, trailing spaces and the byte-order mark that
    Windows editors write tolerated."""
    with open(split_file, encoding="utf-8-sig") as f:
        return [line.strip() for line in f if line.strip()]


def index_images(image_dir: str, preferred: str = ".jpg") -> dict:
    """Maps each image id (file stem) in image_dir to its file, for every supported suffix.

    When an id has several files, the `preferred` suffix wins (.jpg for images, as VOC tools write them; any case).
    """
    found = {}
    for name in sorted(os.listdir(image_dir)) if os.path.isdir(image_dir) else []:
        stem, suffix = os.path.splitext(name)
        if suffix.lower() in IMAGE_SUFFIXES and (stem not in found or suffix.lower() == preferred):
            found[stem] = os.path.join(image_dir, name)
    return found


def same_id_files(folder: str) -> dict:
    """{id: [its files]} of the ids that have more than one file in a folder (a.jpg and a.png): index_images uses
    one, which the dataset check names."""
    stems = {}
    for path in image_files(folder):
        stems.setdefault(os.path.splitext(os.path.basename(path))[0], []).append(path)
    return {stem: paths for stem, paths in stems.items() if len(paths) > 1}


def label_affix(image_ids, label_ids):
    """(prefix, suffix) that the labels' names add to their images' ids (("", "_mask") for a_mask.png beside a.jpg,
    as Carvana and ISIC name them), when that pairs at least half the labels no image has; else None."""
    images = set(image_ids)
    unpaired = [label for label in label_ids if label not in images]
    votes = Counter()
    for label in unpaired:
        for cut in range(1, len(label)):
            if label[:cut] in images:
                votes["", label[cut:]] += 1
            if label[cut:] in images:
                votes[label[:cut], ""] += 1
    if not votes:
        return None
    affix, count = votes.most_common(1)[0]
    return affix if count * 2 >= len(unpaired) else None


@dataclass(frozen=True)
class Splits:
    """The two split files a run trains and validates on (ImageSets/Segmentation/<name>.txt): train and val, or
    fold i's, fold{i}_train and fold{i}_val (voc_annotation.py --num_folds)."""

    train: str = "train"
    val: str = "val"

    @classmethod
    def of_fold(cls, fold: int) -> "Splits":
        """Fold `fold`'s splits; a negative fold: train and val."""
        return cls() if fold < 0 else cls(f"fold{fold}_train", f"fold{fold}_val")


def split_samples(vocdevkit_path: str, split: str) -> list:
    """(image_path, label_path) for every id of ImageSets/Segmentation/<split>.txt, as voc_annotation.py pairs them
    (index_images: any suffix, any case).

    An id without an image (or label) maps to the .jpg (.png) path it would have, so that the check reports it.
    """
    voc = os.path.join(vocdevkit_path, "VOC2007")
    ids = read_split(os.path.join(voc, "ImageSets", "Segmentation", f"{split}.txt"))
    image_dir, label_dir = os.path.join(voc, "JPEGImages"), os.path.join(voc, "SegmentationClass")
    images, labels = index_images(image_dir), index_images(label_dir, preferred=".png")
    return [
        (images.get(i, os.path.join(image_dir, f"{i}.jpg")), labels.get(i, os.path.join(label_dir, f"{i}.png")))
        for i in ids
    ]


def check_num_classes(num_classes: int, allow_zero: bool = False, allow_one: bool = False) -> None:
    """Class ids are 8-bit label values below IGNORE_LABEL: 2 to 255 classes (background and one object at least).
    allow_zero: 0 means 'take them from the labels' (voc_annotation.py); allow_one: a multilabel head's one class."""
    if (allow_zero and num_classes == 0) or (allow_one and num_classes == 1):
        return
    if not 2 <= num_classes <= IGNORE_LABEL:
        raise ValueError(
            f"num_classes={num_classes}: expected 2 to {IGNORE_LABEL} classes, the background included (labels are "
            f"8-bit class ids and {IGNORE_LABEL} means 'ignore'); e.g. --num_classes 2 for background and one object."
        )


def load_label(path: str) -> np.ndarray:
    """A class-index PNG as uint8 (H, W): palette indices or grey values are the class ids."""
    with Image.open(path) as label:
        return np.asarray(label, dtype=np.uint8)


DEMO_CLASSES_FILE = "demo_classes.txt"  # the demo's class names (utils/dataset/demo.py), and the mark of its data


def dataset_class_names(vocdevkit_path: str) -> list:
    """The dataset's class names, background first, one a line in VOCdevkit/classes.txt (json_to_dataset.py writes
    it) or demo_classes.txt (the demo's); [] when it has neither."""
    for name in ("classes.txt", DEMO_CLASSES_FILE):
        path = os.path.join(vocdevkit_path, name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return [line.strip() for line in f if line.strip()]
    return []
