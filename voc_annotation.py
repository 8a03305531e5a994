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
    $ python voc_annotation.py --fix --palette '#3c1098' '#8429f6' --ignore_colours '#9b9b9b'  # and an unlabelled one
    $ python voc_annotation.py --dry_run              # check and report only: write nothing
    $ python voc_annotation.py --keep_splits          # check, and keep the split files you made yourself
    $ python voc_annotation.py --num_folds 5          # and 5 folds of trainval: fold0_train.txt, fold0_val.txt, ...
    $ python voc_annotation.py --num_folds 5 --group_pattern '^(\w+?)_'   # patient7_slice3: a patient's in one fold

Multi-label data (classes that overlap: train.py --head multilabel) comes as one mask per class and image,
VOC2007/SegmentationLabels/<class>/<id>.png (0 = not the class, one other value = the class; an optional
SegmentationLabels/_ignore/<id>.png marks pixels to leave out). This script checks them and packs them into
VOC2007/SegmentationClass, one bit a class (utils/multilabel.py), then checks and splits as for any labels.
"""

import os
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from utils.config import run_main
from utils.dataset.check import Survey, survey_pairs
from utils.dataset.fingerprint import describe_fingerprint, train_fingerprint
from utils.dataset.folds import check_folds, make_folds
from utils.files.atomic import write_atomically
from utils.files.bands import as_input, display_image, survey
from utils.files.image_files import read_image
from utils.files.images import (
    IGNORE_LABEL,
    check_num_classes,
    dataset_class_names,
    index_images,
    label_affix,
    load_label,
    read_split,
    same_id_files,
)
from utils.labels.fix import FIXED_DIR, check_fix_target, use_fixed_labels, write_fixed_labels
from utils.labels.formats import Problem, class_advice
from utils.labels.packing import pack_labels
from utils.multilabel import LABELS_DIR, label_folders, label_values, set_names
from utils.visualize import class_colours, contact_sheet, hex_colour, parse_colour, tile_picture

IN_FULL = 3  # problems of a kind shown with their whole message
LISTED_PER_KIND = 10  # ... and the files of this many more
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
    dry_run: bool = False  # check and report only: write nothing (no splits, preview or fixed labels)
    use_fixed: bool = False  # rename SegmentationClass -> SegmentationClass_original, SegmentationClass_fixed -> it
    palette: list[str] = field(default_factory=list)  # colour masks: each class's #rrggbb in class order
    ignore_colours: list[str] = field(default_factory=list)  # colour masks: colours meaning 'ignore' (255), #rrggbb
    keep_splits: bool = False  # keep the split files already in ImageSets/Segmentation (check the data only)
    input_shape: list[int] = field(default_factory=lambda: [512, 512])  # the network input you plan: for scale advice
    preview_count: int = 16  # images in label_preview.png, each with its label drawn on it; 0 = none
    num_folds: int = 0  # also write k folds of trainval for cross-validation (fold{i}_train/val.txt); 0 = none
    group_pattern: str = ""  # folds: a regex whose first group in an id is its group (kept in one fold), e.g. ^(\w+?)_


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


def write_splits(voc: str, splits: dict, keep: bool, paired: set) -> None:
    """Writes ImageSets/Segmentation/{train,val,trainval,test}.txt. Split files already there that differ are not
    lost: with keep they stay (checked to list only ids with an image and a label), else they move into a
    backup folder beside them first, which is named."""
    folder = os.path.join(voc, "ImageSets", "Segmentation")
    existing = {name: os.path.join(folder, f"{name}.txt") for name in splits}
    existing = {name: path for name, path in existing.items() if os.path.isfile(path)}
    if keep and existing:
        unknown = sorted({i for path in existing.values() for i in read_split(path)} - paired)
        if unknown:
            raise ValueError(
                f"--keep_splits: your split files list {len(unknown)} ids without both an image and a label "
                f"({', '.join(unknown[:5])}): add those files, or remove the ids from {folder}."
            )
        print(
            f"Kept your split files in {folder}: " + ", ".join(f"{n} {len(read_split(p))}" for n, p in existing.items())
        )
        return
    differ = [name for name, path in existing.items() if read_split(path) != splits[name]]
    os.makedirs(folder, exist_ok=True)
    if differ:
        backup = os.path.join(folder, time.strftime("previous_%Y%m%d_%H%M%S"))
        os.makedirs(backup)
        for path in existing.values():
            shutil.copy2(path, backup)
        print(
            f"Your earlier split files differ from these ({', '.join(differ)}): kept in {backup}. "
            "To train on your own splits instead, put them back and run python voc_annotation.py --keep_splits."
        )
    for name, ids in splits.items():
        path = os.path.join(folder, f"{name}.txt")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("".join(f"{i}\n" for i in ids))
        os.replace(path + ".tmp", path)
    print(f"Wrote {folder}/: " + ", ".join(f"{name} {len(ids)}" for name, ids in splits.items()))


def group_problems(problems) -> str:
    """The problems grouped by kind: the first IN_FULL of each in full, then the files of up to LISTED_PER_KIND more."""
    by_kind = {}
    for problem in problems:
        by_kind.setdefault(problem.kind, []).append(problem)
    lines = []
    for found in by_kind.values():
        lines += [f"  {p.message}" for p in found[:IN_FULL]]
        more = found[IN_FULL:]
        if more:
            names = ", ".join(os.path.basename(p.path) for p in more[:LISTED_PER_KIND])
            rest = f" and {len(more) - LISTED_PER_KIND} more" if len(more) > LISTED_PER_KIND else ""
            lines.append(f"  ... and {len(more)} more like it: {names}{rest}")
    return "\n".join(lines)


@dataclass
class Dataset:
    """The pairs of a VOC tree, and every file checked."""

    images: dict  # {id: image file}
    labels: dict  # {id: label file}
    paired: list  # [ids with both]
    survey: Survey  # the checks of the pairs, their labels' formats judged together
    unlabelled: list  # [ids of images without a label]
    orphans: list  # [ids of labels without an image]
    same_id: list  # [([files], the one used)] of the ids with several images, or several labels
    renamed: list  # [Problem] of the labels paired by a prefix or suffix their names add to the image's id


def inspect_dataset(voc: str, num_classes: int, palette, ignore_colours, label_dir: str = "SegmentationClass"):
    """Checks every pair of VOC2007/JPEGImages and VOC2007/<label_dir> (each file read once)."""
    image_dir, label_dir = os.path.join(voc, "JPEGImages"), os.path.join(voc, label_dir)
    # labels: .png, and .jpg etc. too, so that they are reported
    images, labels = index_images(image_dir), index_images(label_dir, preferred=".png")
    if not labels:
        raise ValueError(f"{label_dir} holds no labels. Put one class-index .png per image there, named like it.")
    print(f"Found {len(images)} images in {image_dir} ({suffix_counts(images.values()) or 'none'})")
    print(f"Found {len(labels)} labels in {label_dir} ({suffix_counts(labels.values())})")
    labels, renamed = paired_by_affix(images, labels)
    paired = sorted(set(images) & set(labels))
    pairs = [(images[i], labels[i]) for i in paired]
    survey = survey_pairs(pairs, num_classes, palette, ignore_colours)
    unlabelled, orphans = sorted(set(images) - set(labels)), sorted(set(labels) - set(images))
    same_id = [(files, images[stem]) for stem, files in same_id_files(image_dir).items()]
    same_id += [(files, labels[stem]) for stem, files in same_id_files(label_dir).items()]
    return Dataset(images, labels, paired, survey, unlabelled, orphans, same_id, renamed)


def paired_by_affix(images: dict, labels: dict):
    """Labels named like their image plus a common prefix or suffix (a_mask.png for a.jpg), re-keyed by the image's
    id, each with a fatal problem that --fix resolves (it writes every label under its image's id).

    Returns:
        ({id: label file}, [Problem]).
    """
    affix = label_affix(images, labels)
    if affix is None:
        return labels, []
    prefix, suffix = affix
    keyed, problems = {}, []
    for label_id, path in labels.items():
        image_id = label_id[len(prefix) : len(label_id) - len(suffix)]
        named = label_id.startswith(prefix) and label_id.endswith(suffix) and label_id not in images
        if named and image_id in images and image_id not in labels:
            keyed[image_id] = path
            problems.append(
                Problem(
                    path,
                    "name",
                    f"{path}: named like its image {os.path.basename(images[image_id])} with "
                    f"{' and '.join(repr(a) for a in affix if a)} added; a label's name must be its image's id "
                    f"({image_id}.png). python voc_annotation.py --fix writes every label under its image's id.",
                    True,
                    True,
                )
            )
        else:
            keyed[label_id] = path
    return keyed, problems


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
    names = (
        set_names(names)
        if label_values(len(names)) == num_classes and label_folders(os.path.join(config.vocdevkit_path, "VOC2007"))
        else names
    )
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


def check_settings(config: AnnotationConfig) -> tuple:
    """Checks the settings and every path the run will write, before any file is read.

    Returns:
        (the class colours of --palette, the colours of --ignore_colours), as (r, g, b).
    """
    for name in ("trainval_percent", "train_percent"):
        if not 0 < getattr(config, name) <= 1:
            raise ValueError(f"{name}={getattr(config, name)}: expected a share in (0, 1], e.g. 0.9.")
    check_num_classes(config.num_classes, allow_zero=True)
    check_folds(config.num_folds, config.group_pattern)
    palette, ignore = ([parse_colour(c) for c in colours] for colours in (config.palette, config.ignore_colours))
    both = set(palette) & set(ignore)
    if both:
        raise ValueError(f"{', '.join(map(hex_colour, both))}: in both --palette and --ignore_colours; keep one.")
    if len(set(palette)) < len(palette):
        raise ValueError(f"--palette lists a colour twice ({' '.join(config.palette)}): one colour per class.")
    voc = os.path.join(config.vocdevkit_path, "VOC2007")
    labels = LABELS_DIR if label_folders(voc) else "SegmentationClass"  # multi-label masks are packed into the other
    for folder in (os.path.join(voc, "JPEGImages"), os.path.join(voc, labels)):
        if not os.path.isdir(folder):
            raise ValueError(
                f"{folder} not found. Expected images in {voc}/JPEGImages and class-index PNGs in "
                f"{voc}/SegmentationClass (or point --vocdevkit_path at the folder that holds VOC2007/)."
            )
    if config.dry_run:
        return palette, ignore
    if config.fix:
        check_fix_target(voc)
    if config.use_fixed and not config.fix and not os.path.isdir(os.path.join(voc, FIXED_DIR)):
        raise ValueError(f"{os.path.join(voc, FIXED_DIR)} not found: run python voc_annotation.py --fix first.")
    preview = config.preview_count > 0  # label_preview.png goes into vocdevkit_path
    for folder in [voc, os.path.join(voc, "ImageSets", "Segmentation")] + [config.vocdevkit_path] * preview:
        if os.path.isdir(folder) and not os.access(folder, os.W_OK):
            raise ValueError(
                f"{folder}: cannot be written (read-only), and the splits{', label_preview.png' if preview else ''}"
                f"{' and the fixed labels' if config.fix else ''} go there. Copy the dataset to a folder you can "
                "write to and point --vocdevkit_path at it, or check it without writing anything: --dry_run."
            )
    return palette, ignore


def report_labels(dataset: Dataset, num_classes: int, advise: bool = True) -> int:
    """Prints the labels' formats, their class values (as --fix would write them, where it converts) and (advise)
    the advice on num_classes and class weights; returns num_classes (given, or from the labels)."""
    judgement = dataset.survey.judgement
    for line in judgement.findings:
        print(line)
    histograms = {path: h for path, h in judgement.histograms.items() if h.any()}
    if not histograms:
        return num_classes
    after = " as --fix writes them" if judgement.conversions else ""
    print(f"\nLabel values{after} (pixels, share of all labelled pixels, images containing them):")
    print(class_table(histograms))
    if not advise:  # multi-label: the values are sets of classes, and packed_labels gave the advice
        return num_classes
    advised, stray = class_advice(histograms)
    found = num_classes or advised
    note = "" if num_classes else " (from the labels; set it in train.py)"
    note += f"; the rare values {stray} are left out of it: see the warnings" if stray and not num_classes else ""
    print(f"num_classes: {found}{note}")
    weights = suggested_class_weights(histograms, found)
    print("Suggested class weights (median-frequency balancing):")
    print(f"  python train.py --num_classes {found} --cls_weights {' '.join(map(str, weights))}")
    return found


def report_problems(dataset: Dataset, problems: list) -> None:
    if dataset.unlabelled:
        shown = ", ".join(dataset.unlabelled[:10])
        print(f"Warning: {len(dataset.unlabelled)} images have no label and are left out: {shown}")
    if dataset.orphans:
        print(
            f"Warning: {len(dataset.orphans)} labels have no image and are left out: {', '.join(dataset.orphans[:10])}"
        )
    for files, used in dataset.same_id[:LISTED_PER_KIND]:
        print(f"Warning: {' and '.join(files)} share an id; only {used} is used. Rename or remove the other.")
    warnings, fatal = [p for p in problems if not p.fatal], [p for p in problems if p.fatal]
    if warnings:
        print(f"\n{len(warnings)} warnings (training works, but check them):\n{group_problems(warnings)}")
    if fatal:
        print(f"\n{len(fatal)} problems that would break training:\n{group_problems(fatal)}")


def fix_labels(config: AnnotationConfig, voc: str, dataset: Dataset, fatal: list) -> bool:
    """--fix: writes the corrected labels into SegmentationClass_fixed (or, in a dry run, says what it would), then
    surveys what it wrote. Returns whether it wrote any. Nothing is written while a problem it cannot correct
    remains: that problem's own fix comes first."""
    unfixable = [p for p in fatal if not p.fixable]
    if unfixable:
        print(f"\n--fix wrote nothing: {len(unfixable)} of the problems above need a fix of their own first:")
        print(group_problems(unfixable))
        return False
    conversions = dataset.survey.judgement.conversions
    lines = write_fixed_labels(voc, dataset.labels, conversions, config.dry_run)
    verb = "Would write" if config.dry_run else "Wrote"
    print(f"\n{verb} {len(dataset.labels)} labels to {os.path.join(voc, FIXED_DIR)}, {len(lines)} corrected:")
    print("\n".join(f"  {line}" for line in lines[: LISTED_PER_KIND * 3]) or "  (none needed correcting)")
    if len(lines) > LISTED_PER_KIND * 3:
        print(f"  ... and {len(lines) - LISTED_PER_KIND * 3} more")
    if config.dry_run:
        print("Dry run: nothing was written.")
        return False
    print("\nThe corrected labels, surveyed again:")
    fixed = inspect_dataset(voc, config.num_classes, (), (), label_dir=FIXED_DIR)
    report_labels(fixed, config.num_classes)
    report_problems(fixed, fixed.survey.problems)
    print("Your labels are unchanged. To train on the corrected ones: python voc_annotation.py --use_fixed")
    return bool(lines)


def packed_labels(config: AnnotationConfig, voc: str) -> AnnotationConfig:
    """Multi-label data: its masks checked and packed (utils/labels/packing.py), and the config to check the packed
    labels with (num_classes: every set of classes); the config as it is for class-id labels."""
    packing = pack_labels(voc, config.vocdevkit_path, config.dry_run)
    if packing is None:
        return config
    verb = "would be packed (dry run)" if config.dry_run else f"packed into {voc}/SegmentationClass"
    print(f"Multi-label masks ({voc}/{LABELS_DIR}): {packing.written} images' masks {verb}, one bit a class:")
    for bit, name in enumerate(packing.names):
        print(f"  bit {bit}: {name:<20} {packing.masks_per_class[name]} masks")
    print(f"Train with: python train.py --head multilabel --num_classes {len(packing.names)}")
    if config.dry_run:
        raise SystemExit("Dry run: the masks pass their checks; nothing was written.")
    return replace(config, num_classes=label_values(len(packing.names)), palette=[], ignore_colours=[])


def main(config: AnnotationConfig) -> None:
    palette, ignore = check_settings(config)
    voc = os.path.join(config.vocdevkit_path, "VOC2007")
    config = packed_labels(config, voc)
    if config.use_fixed and not config.fix and not config.dry_run:
        print(use_fixed_labels(voc))
    dataset = inspect_dataset(voc, config.num_classes, palette, ignore)
    problems = dataset.renamed + dataset.survey.problems
    num_classes = report_labels(dataset, config.num_classes, advise=not label_folders(voc))
    if dataset.survey.sizes:
        print("\n" + size_report(dataset.survey.sizes, config.input_shape))
    bands = None
    if dataset.survey.kinds:
        bands, line, problem = bands_report(dataset.survey.kinds)
        problems += [problem] if problem else []
        print(line or "")
    report_problems(dataset, problems)
    fatal = [p for p in problems if p.fatal]

    wrote = config.fix and fix_labels(config, voc, dataset, fatal)
    if wrote and config.use_fixed:
        print(use_fixed_labels(voc))
        # the fixed labels are class ids: no colours to map any more
        return main(replace(config, fix=False, use_fixed=False, palette=[], ignore_colours=[]))
    if fatal:
        fixable = sum(p.fixable for p in fatal)
        if wrote:
            how = f"{fixable} were corrected into {FIXED_DIR}: use them with python voc_annotation.py --use_fixed. "
        elif fixable and not config.fix:
            how = f"{fixable} can be corrected with python voc_annotation.py --fix (into a new folder). "
        else:
            how = ""
        others = "" if fixable == len(fatal) else "The others need" if fixable else "Each needs"
        others += " the fix its message gives." if others else ""
        raise ValueError(
            f"{len(fatal)} files would break training (listed above), so the splits were not written. {how}{others}"
        )
    if not dataset.paired:
        raise ValueError(f"No image in {voc}/JPEGImages has a label in {voc}/SegmentationClass (ids must match).")
    if config.dry_run:
        print("\nDry run: the dataset passes the checks; nothing was written (no splits, no preview).")
        return
    if config.preview_count > 0 and bands and any(h.any() for h in dataset.survey.judgement.histograms.values()):
        pairs = [(dataset.images[i], dataset.labels[i]) for i in dataset.paired]
        print(f"Label preview: {write_preview(config, pairs, bands, num_classes)[0]}")
    splits = make_splits(dataset.paired, config.trainval_percent, config.train_percent, config.seed)
    if config.num_folds:
        splits.update(make_folds(splits["trainval"], config.num_folds, config.seed, config.group_pattern))
    write_splits(voc, splits, config.keep_splits, set(dataset.paired))
    fingerprint = train_fingerprint(config.vocdevkit_path)
    names = dataset_class_names(config.vocdevkit_path)
    names = set_names(names) if label_folders(voc) else names
    print("\nThe train split's fingerprint (what train.py plans from):\n" + describe_fingerprint(fingerprint, names))


if __name__ == "__main__":
    run_main(main, AnnotationConfig, __doc__)
