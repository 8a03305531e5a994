"""Dataset checks shared by voc_annotation.py (every file, with a report) and train.py (the split's files).

Each problem names the file, says what was found and what was expected, and how to fix it. Problems that
would break training are fatal; merely suspicious ones (a label with only background) are warnings.
"""

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import UnidentifiedImageError
from tqdm import tqdm

from utils.files.image_files import TRANSPOSED_ORIENTATIONS, ImageHeader, image_header
from utils.files.images import IGNORE_LABEL, Splits, read_split, split_samples
from utils.labels.facts import LabelFacts, UnusableLabel, facts_of, read_label
from utils.labels.formats import Judgement, Problem, judge_labels

MAX_LISTED = 5
MIN_SIDE = 8  # px: a smaller image has nothing to segment (and no scale to fit it into the network)


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
    kind = "an image" if what == "image" else "a label"
    why = f"cannot be read as {kind} ({error}). The file may be truncated or of another format: export or copy it"
    return Problem(path, "unreadable", f"{path}: {why} again, or remove it and rebuild the splits (voc_annotation.py).")


def image_info(path: str):
    """An image's ImageHeader, the file read fully so that a truncated file is found now rather than hours into
    training (image_files.image_header). Returns (header or None, Problem or None)."""
    problem = file_problem(path, "image")
    if problem:
        return None, problem
    try:
        header = image_header(path)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        return None, unreadable(path, "image", error)
    if min(header.size) < MIN_SIDE:
        return None, Problem(
            path,
            "tiny",
            f"{path}: {header.size[0]}x{header.size[1]} px; expected at least {MIN_SIDE} px a side, an image with "
            "something to segment. Remove it (or replace it with the full image), then run python voc_annotation.py "
            "again.",
        )
    return header, None


def inspect_label(path: str):
    """Reads a label once. Returns (its LabelFacts or None when it cannot be read, [problems])."""
    problem = file_problem(path, "label")
    if problem:
        return None, [problem]
    try:
        label = read_label(path)
    except UnusableLabel as error:
        return None, [Problem(path, "unusable", str(error))]
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        return None, [unreadable(path, "label", error)]
    return facts_of(path, label), []


@dataclass
class PairCheck:
    """An image and its label, each read once."""

    image_path: str
    label_path: str
    facts: LabelFacts | None  # the label's, None when it cannot be read
    header: ImageHeader | None  # the image's, None when it cannot be read
    problems: list  # the pair's own problems: files missing, unreadable, sizes that differ


def inspect_pair(image_path: str, label_path: str) -> PairCheck:
    header, image_problem = image_info(image_path)
    facts, problems = inspect_label(label_path)
    problems = ([image_problem] if image_problem else []) + problems
    if header and facts:
        problems += orientation_problems(header, facts, image_path, label_path)
    return PairCheck(image_path, label_path, facts, header, problems)


def orientation_problems(header: ImageHeader, facts: LabelFacts, image_path: str, label_path: str) -> list:
    """A label whose size differs from its image's; a warning for an image with an EXIF orientation whose label's
    size cannot tell whether it was drawn on the turned image, as it must be (a square one, or a half turn)."""
    turned = header.orientation in TRANSPOSED_ORIENTATIONS
    if header.size != facts.size:
        hint = (
            f" The image has an EXIF orientation ({header.orientation}): it is shown, and trained on, turned a "
            "quarter, and the label matches the stored, unturned pixels. Draw the label on the image as viewers "
            "show it, or save the image without its EXIF orientation."
            if turned and header.size == facts.size[::-1]
            else " A label must be drawn on its own image: export it again at the image's size."
        )
        message = f"{label_path}: size {facts.size} (width, height) differs from its image's {header.size} "
        return [Problem(label_path, "size", f"{message}({image_path}).{hint}")]
    if header.orientation != 1 and (not turned or facts.size[0] == facts.size[1]):
        return [
            Problem(
                image_path,
                "exif",
                f"{image_path}: an EXIF orientation ({header.orientation}) that its size cannot confirm"
                f"{' (square)' if turned else ''}: it is trained on turned as viewers show it, so its label "
                f"({label_path}) must be drawn on the turned image, as labelme, CVAT and browsers show it. "
                "Check label_preview.png; if the label matches the stored pixels, save the image without its EXIF "
                "orientation.",
                False,
            )
        ]
    return []


@dataclass
class Survey:
    """Every pair of a dataset (or split) checked, and the labels' formats judged together."""

    checks: list  # [PairCheck]
    judgement: Judgement

    @property
    def problems(self) -> list:
        return [p for check in self.checks for p in check.problems] + self.judgement.problems

    @property
    def fatal(self) -> list:
        return [p for p in self.problems if p.fatal]

    @property
    def kinds(self) -> dict:
        """{image path: (bands, sample type)} (what bands.survey takes)."""
        return {path: header.kind for path, header in self.headers.items()}

    @property
    def headers(self) -> dict:
        """{image path: ImageHeader} of the images read."""
        return {c.image_path: c.header for c in self.checks if c.header}

    @property
    def sizes(self) -> list:
        return [c.header.size for c in self.checks if c.header]


def survey_pairs(pairs, num_classes: int = 0, palette=(), ignore_colours=(), desc: str = "Checking") -> Survey:
    """Checks every (image, label) pair, reading each file once (in threads: decoding releases the GIL), then
    judges the labels' formats over all of them (utils/labels/formats.py)."""
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        checks = list(
            tqdm(
                pool.map(lambda pair: inspect_pair(*pair), pairs), total=len(pairs), desc=desc, unit="pair", leave=False
            )
        )
    facts = [c.facts for c in checks if c.facts]
    return Survey(checks, judge_labels(facts, num_classes, palette, ignore_colours))


def refuse(survey: Survey, what: str, count: int) -> None:
    """Raises ValueError naming the first problems that would break training (MAX_LISTED), and how to fix them."""
    fatal = survey.fatal
    if fatal:
        listed = "\n  ".join(p.message for p in fatal[:MAX_LISTED])
        more = f"\n  ... and {len(fatal) - MAX_LISTED} more" if len(fatal) > MAX_LISTED else ""
        raise ValueError(f"{len(fatal)} problems in the {count} samples of {what}:\n  {listed}{more}")


def check_count(samples, min_samples: int, split_file: str) -> None:
    if len(samples) < min_samples:
        raise ValueError(
            f"{split_file}: {len(samples)} ids, but at least {min_samples} are needed (one full batch). "
            "Add images, lower the batch size, or rebuild the splits with python voc_annotation.py."
        )


def checked_split_file(vocdevkit_path: str, split: str) -> str:
    """The path of ImageSets/Segmentation/<split>.txt; ValueError if it is missing, lists no ids or an id twice."""
    split_file = os.path.join(vocdevkit_path, "VOC2007", "ImageSets", "Segmentation", f"{split}.txt")
    if not os.path.isfile(split_file) and split.startswith("fold"):
        raise ValueError(
            f"{split_file} not found: no such fold. Write the folds with python voc_annotation.py --num_folds 5 "
            "(folds 0-4), or train on train.txt and val.txt (no --fold)."
        )
    if not os.path.isfile(split_file):
        raise ValueError(
            f"{split_file} not found. Put images in VOC2007/JPEGImages and labels in "
            "VOC2007/SegmentationClass, then run python voc_annotation.py to write the splits "
            "(or point --vocdevkit_path at a dataset that has them)."
        )
    ids = read_split(split_file)
    if not ids:
        raise ValueError(f"{split_file} lists no ids. Run python voc_annotation.py to rebuild the splits.")
    twice = [i for i, n in Counter(ids).items() if n > 1]
    if twice:
        raise ValueError(
            f"{split_file} lists {len(twice)} ids more than once ({', '.join(repr(i) for i in twice[:5])}): each "
            "would count twice in training or in val mIoU. Remove the repeated lines, or rebuild the splits with "
            "python voc_annotation.py."
        )
    return split_file


def check_dataset(vocdevkit_path: str, num_classes: int, min_train: int, min_val: int, splits=Splits()) -> Survey:
    """Checks the split files ({train,val}.txt, or a fold's: `splits`) and every pair they list, the labels' formats
    judged over both splits together (survey_pairs); val must hold labelled pixels to measure with.

    Returns:
        the Survey of both splits' pairs: their images' kinds (what bands.survey takes) and headers (their sizes).
    """
    files, samples = {}, {}
    for split, name, minimum in [("train", splits.train, min_train), ("val", splits.val, min_val)]:
        files[split] = checked_split_file(vocdevkit_path, name)
        samples[split] = split_samples(vocdevkit_path, name)
        check_count(samples[split], minimum, files[split])
    both = list(dict.fromkeys(samples["train"] + samples["val"]))
    survey = survey_pairs(both, num_classes, desc="Checking train and val")
    refuse(survey, f"{files['train']} and {files['val']}", len(both))
    shared = set(samples["train"]) & set(samples["val"])
    if shared:
        print(
            f"Warning: {len(shared)} samples are in both {splits.train}.txt and {splits.val}.txt (e.g. "
            f"{sorted(shared)[0][0]}): val "
            "mIoU measures them after training on them, so it reads high. Rebuild the splits with "
            "python voc_annotation.py."
        )
    histograms = survey.judgement.histograms
    val_labelled = sum(histograms[label].sum() - histograms[label][IGNORE_LABEL] for _, label in samples["val"])
    if not val_labelled:
        raise ValueError(
            f"{files['val']}: the {len(samples['val'])} labels it lists are all 'ignore' (255), so val mIoU has "
            "nothing to measure. Put labelled images in val: rebuild the splits with python voc_annotation.py, or "
            "fix those labels."
        )
    return survey
