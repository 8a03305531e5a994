"""VOC trees whose labels are written as published datasets write them, each with the class ids a careful conversion
gives (the truth the dataset check's --fix must reproduce): tests/test_label_formats.py and the survey's timing
(benchmarks/label_survey.py) use them."""

import os

import numpy as np
from PIL import Image

# The Dubai aerial set's colours (building, land, road, vegetation, water), its 'unlabelled' grey, and the black that
# such masks leave in the gaps between annotations.
AERIAL = ["#3c1098", "#8429f6", "#6ec1e4", "#fedd3a", "#e2a929"]
UNLABELLED, GAP = "#9b9b9b", "#000000"
# Non-VOC colours of a palette-PNG dataset: background, road, car.
PALETTE = [(0, 0, 0), (200, 30, 30), (30, 200, 30)]


def rgb(colour: str) -> tuple:
    return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))


def ellipse(height: int, width: int, centre, radii) -> np.ndarray:
    rows, columns = np.mgrid[:height, :width]
    return ((rows - centre[0]) / radii[0]) ** 2 + ((columns - centre[1]) / radii[1]) ** 2 <= 1


def blobs(rng, height: int, width: int, classes: int) -> np.ndarray:
    """Class ids: ellipses of classes 1.. on background 0, the later drawn over the earlier."""
    label = np.zeros((height, width), np.uint8)
    for value in range(1, classes):
        for _ in range(2):
            centre = rng.uniform(0.15, 0.85, 2) * (height, width)
            radii = rng.uniform(0.12, 0.3, 2) * (height, width)
            label[ellipse(height, width, centre, radii)] = value
    return label


def write_tree(root, labels: dict, suffix: str, save) -> str:
    """Images (the label's classes as grey levels, with noise) and labels saved by save(label, path); no splits."""
    voc = os.path.join(root, "VOCdevkit", "VOC2007")
    for folder in ("JPEGImages", "SegmentationClass"):
        os.makedirs(os.path.join(voc, folder), exist_ok=True)
    rng = np.random.default_rng(1)
    for sample_id, (published, truth) in labels.items():
        picture = np.clip(60 + 50.0 * np.where(truth == 255, 0, truth) + rng.normal(0, 10, truth.shape), 0, 255)
        Image.fromarray(picture.astype(np.uint8)).convert("RGB").save(
            os.path.join(voc, "JPEGImages", f"{sample_id}.jpg"), quality=95
        )
        save(published, os.path.join(voc, "SegmentationClass", f"{sample_id}{suffix}"))
    return os.path.join(root, "VOCdevkit")


def noisy_binary(root, count: int = 14, size=(48, 64)) -> tuple:
    """0/255 masks resized with bilinear filtering (drawn at 4x, as many defect and medical sets were): 0 and 255 with
    a rim of values in between. Truth: the resized mask thresholded at 128, as 0/1."""
    rng, labels = np.random.default_rng(0), {}
    for i in range(count):
        large = (blobs(rng, size[0] * 4, size[1] * 4, 2) * 255).astype(np.uint8)
        published = np.asarray(Image.fromarray(large).resize(size[::-1], Image.BILINEAR))
        labels[f"defect{i:03d}"] = (published, (published >= 128).astype(np.uint8))
    return write_tree(root, labels, ".png", lambda a, p: Image.fromarray(a).save(p)), truth_of(labels)


def jpeg_masks(root, count: int = 14, size=(48, 64), quality: int = 75) -> tuple:
    """White objects on black saved as JPEG (as Kvasir-SEG publishes them), large ones (up to half the image).
    Truth: the masks before compression, as 0/1."""
    rng, labels = np.random.default_rng(2), {}
    for i in range(count):
        mask = ellipse(*size, rng.uniform(0.4, 0.6, 2) * size, rng.uniform(0.25, 0.45, 2) * size).astype(np.uint8)
        labels[f"polyp{i:03d}"] = (mask * 255, mask)
    save = lambda a, p: Image.fromarray(a).save(p, format="JPEG", quality=quality)  # noqa: E731
    return write_tree(root, labels, ".jpg", save), truth_of(labels)


def palette_orders(root, count: int = 14, size=(48, 64), shuffled_every: int = 3) -> tuple:
    """P-mode PNGs of PALETTE's 3 classes, every shuffled_every-th file with its palette in another order (index i
    shows colour order[i]): consistent colours, inconsistent indices. Truth: the class of each colour (PALETTE's)."""
    rng, labels = np.random.default_rng(3), {}
    orders = [(0, 1, 2), (1, 2, 0), (2, 0, 1), (1, 0, 2)]
    for i in range(count):
        truth = blobs(rng, *size, 3)
        shuffled = i % shuffled_every == shuffled_every - 1
        order = orders[1 + (i // shuffled_every) % (len(orders) - 1)] if shuffled else orders[0]
        indices = np.argsort(order).astype(np.uint8)[truth]  # the index whose colour is the class's
        labels[f"street{i:03d}"] = ((indices, [PALETTE[c] for c in order]), truth)

    def save(published, path):
        indices, colours = published
        image = Image.fromarray(indices, mode="P")
        image.putpalette([v for c in colours for v in c] + [0] * (768 - 3 * len(colours)))
        image.save(path)

    return write_tree(root, {k: (p, t) for k, (p, t) in labels.items()}, ".png", save), truth_of(labels)


def colour_masks(root, count: int = 14, size=(48, 64), jpeg: bool = False) -> tuple:
    """RGB masks in AERIAL's colours, an UNLABELLED region and GAP black between the annotated regions (as PNG, or
    JPEG of quality 90 with jpeg). Truth: the classes in AERIAL's order, unlabelled and the gaps 255 (ignore)."""
    rng, labels = np.random.default_rng(4), {}
    colours = np.array([rgb(c) for c in AERIAL + [UNLABELLED, GAP]], np.uint8)
    for i in range(count):
        truth = blobs(rng, *size, 6)  # 0..4 the classes, 5 unlabelled
        truth[:, (i % 20) + 10 : (i % 20) + 12] = 6  # a gap: a black band between annotations
        published = colours[truth]
        labels[f"tile{i:03d}"] = (published, np.where(truth >= 5, 255, truth).astype(np.uint8))
    save = lambda a, p: Image.fromarray(a).save(p, quality=90)  # noqa: E731 (PNG or JPEG by the suffix)
    return write_tree(root, labels, ".jpg" if jpeg else ".png", save), truth_of(labels)


def jpeg_colour_masks(root, count: int = 14, size=(48, 64)) -> tuple:
    """colour_masks saved as JPEG."""
    return colour_masks(root, count, size, jpeg=True)


def truth_of(labels: dict) -> dict:
    return {sample_id: truth for sample_id, (_, truth) in labels.items()}
