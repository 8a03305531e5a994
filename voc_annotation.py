r"""Check a VOC-format dataset and write its ImageSets/Segmentation/{train,val,trainval,test}.txt.

Every image/label pair is checked first; a report shows the classes found and every problem, naming the file
and the fix. When something would break training the splits are not written and the exit status is not 0.
Nothing in the dataset is modified: --fix writes corrected labels to a new folder. A contact sheet of a sample of
images with their labels drawn on in class colours, named in a legend, goes to <vocdevkit_path>/label_preview.png:
shifted, swapped or mis-coloured labels show at a glance.

    $ python voc_annotation.py                             # check VOCdevkit/ and write the splits
    $ python voc_annotation.py --num_classes 3             # also check that every value is < 3 (or 255)
    $ python voc_annotation.py --fix --dry_run   # say what --fix would write
    $ python voc_annotation.py --fix                  # corrected labels -> VOC2007/SegmentationClass_fixed
    $ python voc_annotation.py --use_fixed            # train on them (the originals are kept, renamed)
    $ python voc_annotation.py --fix --palette '#000000' '#ff0000' '#00ff00'   # RGB masks in these colours
"""

import os
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from utils.atomic import write_atomically
from utils.bands import as_input, display_image, read_image, survey
from utils.config import run_main
from utils.dataset_check import Problem, inspect_pair
from utils.images import IGNORE_LABEL, dataset_class_names, index_images, load_label
from utils.label_fix import FIXED_DIR, use_fixed_labels, write_fixed_labels
from utils.visualize import class_colours, contact_sheet, parse_colour, tile_picture

LISTED_PER_KIND = 10
PREVIEW = "label_preview.png"  # the contact sheet, in vocdevkit_path
PREVIEW_SIDE = 256  # px, the longer side of each of its tiles


@dataclass
class AnnotationConfig:
    vocdevkit_path: str = "VOCdevkit"  # dataset root holding VOC2007/
    trainval_percent: float = 1.0  # share of the labelled images in trainval.txt; the rest go to test.txt
    train_percent: float = 0.9  # share of trainval in train.txt; the rest go to val.txt
    seed: int = 0  # seed of the random split
    num_classes: int = 0  # classes including the background; 0 = take them from the labels
    fix: bool = False  # write corrected labels to VOC2007/SegmentationClass_fixed (the originals are untouched)
    dry_run: bool = False  # with fix: only say what would be written
    use_fixed: bool = False  # rename SegmentationClass -> SegmentationClass_original, SegmentationClass_fixed -> it
    palette: list[str] = field(default_factory=list)  # colour masks: each class's #rrggbb in class order
    input_shape: list[int] = field(default_factory=lambda: [512, 512])  # the network input you plan: for scale advice
    preview_count: int = 16  # images in label_preview.png, each with its label drawn on it; 0 = none


def suffix_counts(paths) -> str:
    counts = Counter(os.path.splitext(p)[1] for p in paths)
    return ", ".join(f"{suffix} {n}" for suffix, n in sorted(counts.items()))


def class_table(histograms: dict) -> str:
    """Pixels, share and number of images of each value found in the labels (255 = ignore)."""
    total = sum(histograms.values())
    images = sum((h > 0).astype(int) for h in histograms.values())
    lines = [f"{'class':>6} {'pixels':>14} {'share %':>9} {'images':>8}"]
    for value in np.flatnonzero(total):
        name = "ignore" if value == IGNORE_LABEL else str(value)
        lines.append(f"{name:>6} {total[value]:>14d} {100 * total[value] / total.sum():>9.3f} {images[value]:>8d}")
    return "\n".join(lines)


def suggested_class_weights(histograms: dict, num_classes: int) -> list:
    """Median-frequency balancing (Eigen & Fergus 2015): weight_c = median(freq) / freq_c, where freq_c is class c's
    share of the pixels of the images it appears in; capped at 10; 1 for classes never seen."""
    pixels, present_in = np.zeros(num_classes), np.zeros(num_classes)
    for histogram in histograms.values():
        counts = histogram[:num_classes]
        pixels += counts
        present_in += (counts > 0) * counts.sum()
    seen = pixels > 0
    frequency = np.where(seen, pixels / np.maximum(present_in, 1), np.nan)
    weights = np.where(seen, np.nanmedian(frequency) / frequency, 1.0)
    return [round(float(min(w, 10.0)), 2) for w in weights]


SIZE_BINS = (256, 512, 1024, 2048, 4096)  # longer side, in pixels
SLIDE_FACTOR = 2  # images whose median longer side is this many times the input's: slide is advised


def size_report(sizes, input_shape) -> str:
    """The distribution of image sizes (longer side), and which scale mode suits them with this input_shape:
    fit shrinks every image into input_shape; when they are much larger, small and thin structures vanish, and
    slide (own resolution, input_shape windows) keeps them."""
    longer = np.array([max(size) for size in sizes])
    shorter = np.array([min(size) for size in sizes])
    edges = [0, *SIZE_BINS, np.inf]
    lines = [
        "Image sizes (longer side): "
        + ", ".join(
            f"{'>' + str(edges[i]) if edges[i + 1] == np.inf else '<=' + str(int(edges[i + 1]))} {n}"
            for i, n in enumerate(np.histogram(longer, edges)[0])
            if n
        )
    ]
    median = float(np.median(longer))
    lines.append(
        f"  median {median:.0f} px (smallest {min(sizes, key=max)[0]}x{min(sizes, key=max)[1]}, "
        f"largest {max(sizes, key=max)[0]}x{max(sizes, key=max)[1]} width x height)"
    )
    side = max(input_shape)
    if median < SLIDE_FACTOR * side:
        lines.append(
            f"  With input_shape {input_shape[0]} {input_shape[1]}, scale_mode fit (the default) sees them at "
            f"{side / median:.0%} of their size or more."
        )
        return "\n".join(lines)
    tile = int(min(side, np.median(shorter)) // 32 * 32) or 32
    scale = 0.5 if median > 8 * tile else 1.0  # beyond 8 windows across, half resolution keeps runs short
    advice = f"python train.py --scale_mode slide --input_shape {tile} {tile}"
    advice += " --image_scale 0.5" if scale != 1 else ""
    lines += [
        f"  Much larger than input_shape {input_shape[0]} {input_shape[1]}: scale_mode fit would shrink them to "
        f"{side / median:.0%}, and structures under {median / side:.0f} px would vanish.",
        f"  Keep their resolution with slide ({tile}x{tile} crops for training, a sliding window for prediction"
        + (", at half resolution: they are very large" if scale != 1 else "")
        + f"):\n    {advice}",
    ]
    return "\n".join(lines)


def make_splits(ids, trainval_percent: float, train_percent: float, seed: int) -> dict:
    """{split: sorted ids}: a seeded random trainval / test split, then train / val within trainval."""
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    num_trainval = round(len(shuffled) * trainval_percent)
    num_train = round(num_trainval * train_percent)
    if train_percent < 1 and num_trainval >= 2:
        num_train = min(max(num_train, 1), num_trainval - 1)  # at least one val image to measure with
    trainval, test = shuffled[:num_trainval], shuffled[num_trainval:]
    splits = {"trainval": trainval, "train": trainval[:num_train], "val": trainval[num_train:], "test": test}
    return {name: sorted(split) for name, split in splits.items()}


def write_splits(voc: str, splits: dict) -> None:
    folder = os.path.join(voc, "ImageSets", "Segmentation")
    os.makedirs(folder, exist_ok=True)
    for name, ids in splits.items():
        path = os.path.join(folder, f"{name}.txt")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("".join(f"{i}\n" for i in ids))
        os.replace(path + ".tmp", path)
    print(f"Wrote {folder}/: " + ", ".join(f"{name} {len(ids)}" for name, ids in splits.items()))


def group_problems(problems) -> str:
    """The problems grouped by kind, at most LISTED_PER_KIND of each."""
    by_kind = {}
    for problem in problems:
        by_kind.setdefault(problem.kind, []).append(problem.message)
    lines = []
    for messages in by_kind.values():
        lines += [f"  {m}" for m in messages[:LISTED_PER_KIND]]
        if len(messages) > LISTED_PER_KIND:
            lines.append(f"  ... and {len(messages) - LISTED_PER_KIND} more like it")
    return "\n".join(lines)


def inspect_dataset(voc: str, num_classes: int, palette):
    """Checks every pair.

    Returns:
        ({id: label file}, [paired ids], {id: label histogram}, [problems], [image (width, height)],
        ([ids without label], [ids without image]), {image path: (bands, sample type)}).
    """
    image_dir, label_dir = os.path.join(voc, "JPEGImages"), os.path.join(voc, "SegmentationClass")
    for folder in (image_dir, label_dir):
        if not os.path.isdir(folder):
            raise ValueError(f"{folder} not found. Expected images in {image_dir}, class-index PNGs in {label_dir}.")
    # labels: .png, and .jpg etc. too, so that they are reported
    images, labels = index_images(image_dir), index_images(label_dir, preferred=".png")
    if not labels:
        raise ValueError(f"{label_dir} holds no labels. Put one class-index .png per image there, named like it.")
    print(f"Found {len(images)} images in {image_dir} ({suffix_counts(images.values()) or 'none'})")
    print(f"Found {len(labels)} labels in {label_dir} ({suffix_counts(labels.values())})")
    paired = sorted(set(images) & set(labels))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = pool.map(lambda i: inspect_pair(images[i], labels[i], num_classes, palette), paired)
        results = list(tqdm(results, total=len(paired), desc="Checking", unit="pair", leave=False))
    histograms = {i: h for i, (h, _, _) in zip(paired, results) if h is not None}
    problems = [p for _, found, _ in results for p in found]
    sizes = [info[0] for _, _, info in results if info]
    kinds = {images[i]: info[1] for i, (_, _, info) in zip(paired, results) if info}
    unpaired = sorted(set(images) - set(labels)), sorted(set(labels) - set(images))
    return labels, paired, histograms, problems, sizes, unpaired, kinds


def bands_report(kinds: dict):
    """(the images' Bands and a line saying what they are: bands, bit depth and, beyond 8 bits, each band's range
    as train.py will measure it; or (None, None, a Problem) when they mix band counts or bit depths)."""
    try:
        bands = survey(list(kinds), 0, kinds)
        return bands, f"Images: {bands.describe()}", None
    except ValueError as error:
        return None, None, Problem("", "bands", str(error).replace("\n", "\n  "))


def write_preview(config: AnnotationConfig, pairs: list, bands, num_classes: int) -> tuple:
    """label_preview.png in vocdevkit_path: preview_count (image, label) pairs drawn at random (seed), each image
    with its label in class colours, the class names (classes.txt, else numbers) in a legend.

    Returns:
        (its path, the captions of its tiles in order: the images' ids).
    """
    chosen = sorted(random.Random(config.seed).sample(pairs, min(config.preview_count, len(pairs))))
    names = dataset_class_names(config.vocdevkit_path)
    names = names if len(names) == num_classes else [str(i) for i in range(num_classes)]
    colours = class_colours(num_classes)
    tiles = []
    for image_path, label_path in chosen:
        picture = display_image(as_input(read_image(image_path), bands, image_path), bands)
        caption = os.path.splitext(os.path.basename(image_path))[0]
        tiles.append((caption, tile_picture(picture, load_label(label_path), colours, PREVIEW_SIDE)))
    path = os.path.join(config.vocdevkit_path, PREVIEW)
    title = f"{len(tiles)} of {len(pairs)} images with their labels (255, ignored, and the background not coloured)"
    write_atomically(path, lambda temporary: contact_sheet(temporary, tiles, names, colours, title), ".png")
    return path, [caption for caption, _ in tiles]


def main(config: AnnotationConfig) -> None:
    for name in ("trainval_percent", "train_percent"):
        if not 0 < getattr(config, name) <= 1:
            raise ValueError(f"{name}={getattr(config, name)}: expected a share in (0, 1], e.g. 0.9.")
    voc = os.path.join(config.vocdevkit_path, "VOC2007")
    palette = [parse_colour(c) for c in config.palette]
    if config.use_fixed and not config.fix:
        print(use_fixed_labels(voc))
    labels, paired, histograms, problems, sizes, unpaired, kinds = inspect_dataset(voc, config.num_classes, palette)
    unlabelled, orphans = unpaired
    if unlabelled:
        print(f"Warning: {len(unlabelled)} images have no label and are left out: {', '.join(unlabelled[:10])}")
    if orphans:
        print(f"Warning: {len(orphans)} labels have no image and are left out: {', '.join(orphans[:10])}")
    if histograms:
        print("\nLabel values (pixels, share of all labelled pixels, images containing them):")
        print(class_table(histograms))
        found = [v for v in np.flatnonzero(sum(histograms.values())) if v != IGNORE_LABEL]
        num_classes = config.num_classes or int(max(found, default=0)) + 1
        print(f"num_classes: {num_classes}" + ("" if config.num_classes else " (from the labels; set it in train.py)"))
        weights = suggested_class_weights(histograms, num_classes)
        print("Suggested class weights (median-frequency balancing):")
        print(f"  python train.py --num_classes {num_classes} --cls_weights {' '.join(map(str, weights))}")
    if sizes:
        print("\n" + size_report(sizes, config.input_shape))
    bands = None
    if kinds:
        bands, line, problem = bands_report(kinds)
        problems += [problem] if problem else []
        print(line or "")

    warnings, fatal = [p for p in problems if not p.fatal], [p for p in problems if p.fatal]
    if warnings:
        print(f"\n{len(warnings)} warnings (training works, but check them):\n{group_problems(warnings)}")
    if fatal:
        print(f"\n{len(fatal)} problems that would break training:\n{group_problems(fatal)}")

    if config.fix:
        fixable = {os.path.splitext(os.path.basename(p.path))[0] for p in fatal if p.fixable}
        lines = write_fixed_labels(voc, labels, fixable, palette, config.dry_run)
        verb = "Would write" if config.dry_run else "Wrote"
        print(f"\n{verb} {len(labels)} labels to {os.path.join(voc, FIXED_DIR)}, {len(lines)} corrected:")
        print("\n".join(f"  {line}" for line in lines) or "  (none needed correcting)")
        if config.use_fixed and not config.dry_run:
            print(use_fixed_labels(voc))
            return main(AnnotationConfig(**{**vars(config), "fix": False, "use_fixed": False}))
        if not config.dry_run:
            print("Your labels are unchanged. To train on the corrected ones: python voc_annotation.py --use_fixed")
    if fatal:
        fixable = sum(p.fixable for p in fatal)
        if config.fix and not config.dry_run:
            how = f"{fixable} were corrected into {FIXED_DIR}: use them with python voc_annotation.py --use_fixed. "
        elif fixable:
            how = f"{fixable} can be corrected with python voc_annotation.py --fix (into a new folder). "
        else:
            how = ""
        others = "The others need the fix their message gives." if fixable < len(fatal) else ""
        raise ValueError(
            f"{len(fatal)} files would break training (listed above), so the splits were not written. {how}{others}"
        )
    if not paired:
        raise ValueError(f"No image in {voc}/JPEGImages has a label in {voc}/SegmentationClass (ids must match).")
    if config.preview_count > 0 and bands and histograms:
        images = index_images(os.path.join(voc, "JPEGImages"))
        pairs = [(images[i], labels[i]) for i in paired]
        print(f"Label preview: {write_preview(config, pairs, bands, num_classes)[0]}")
    write_splits(voc, make_splits(paired, config.trainval_percent, config.train_percent, config.seed))


if __name__ == "__main__":
    run_main(main, AnnotationConfig, __doc__)
