"""The format of a dataset's labels, judged over all its files at once, and the conversion of each file to class ids.

A single file cannot say what its values mean: 255 is 'ignore' in VOC but the object in a 0/255 mask; index 1 of a
palette PNG is a class id, unless the next file's palette puts that class's colour at index 5. So every label is
read once into facts (utils/labels/facts.py), and judge_labels here weighs them together:
- **grey labels** (grey.py; mode L, JPEG, 16-bit, grey stored as colour): the values that form regions are the classes
  ("plateaus"); values that only lie between them on edges (resampling, anti-aliasing, JPEG) are noise, snapped to
  the nearest class value. A dataset whose classes are 0 and 255 alone is a set of binary masks: 255 -> 1.
- **palette labels** (palette.py; mode P): each index's colour is compared across files; where a colour sits at
  different indices, the colours are the classes and the files are remapped by colour.
- **colour masks** (colour.py; RGB): each colour maps to a class through --palette (class order) and
  --ignore_colours (255), or a palette recognised without them (black and white; VOC's colours); blends on the
  edges between two listed colours are snapped to the nearer one; any other colour is named, with its pixels.

The result is a Judgement (judgement.py): the problems (each names its file, what was found and the fix), and for
each file that needs one, the Conversion `voc_annotation.py --fix` applies, with the class histogram the fix would
produce, so the report and the advice on num_classes come from the labels as they will be trained on.
"""

import numpy as np

from utils.files.images import IGNORE_LABEL
from utils.labels.colour import judge_colour
from utils.labels.facts import LabelFacts
from utils.labels.grey import grey_palette, judge_grey
from utils.labels.judgement import RARE_SHARE, Conversion, Judgement, Problem
from utils.labels.palette import judge_indexed


def judge_labels(facts: list, num_classes: int = 0, palette=(), ignore_colours=()) -> Judgement:
    """Judges every label's format together.

    Args:
        facts: [LabelFacts] of the readable labels.
        palette: [(r, g, b)] of each class, in class order (voc_annotation.py --palette); ignore_colours: [(r, g, b)]
            that mean 'ignore' (255).
    """
    problems, conversions, findings = [], {}, []
    grey = [f for f in facts if not f.is_colour and (not f.palette or grey_palette(f))]
    indexed = [f for f in facts if not f.is_colour and f.palette and not grey_palette(f)]
    colour = [f for f in facts if f.is_colour]
    for group in ([f for f in grey if f.format == "JPEG"], [f for f in grey if f.format != "JPEG"]):
        if group:  # JPEG's values drift; lossless files' values are judged without that allowance
            judge_grey(group, conversions, problems, findings)
    if indexed:
        judge_indexed(indexed, palette, ignore_colours, conversions, problems, findings)
    if colour:
        judge_colour(colour, palette, ignore_colours, conversions, problems, findings)
    for f in facts:  # a class-id label in another format than PNG: written as PNG (train.py decodes PNG)
        if f.format != "PNG" and f.path not in conversions and not f.is_colour:
            conversions[f.path] = Conversion(table=np.arange(256, dtype=np.uint8), notes=[f"{f.format} -> PNG"])
            problems.append(format_problem(f))
    histograms = {}
    for f in facts:
        conversion = conversions.get(f.path)
        histograms[f.path] = converted_histogram(f, conversion)
        if not f.is_colour or conversion:  # a colour mask without a mapping has no class ids yet
            problems += value_problems(f.path, histograms[f.path], num_classes, conversion is not None)
    problems += rare_class_warnings(histograms) + no_background_warning(histograms)
    return Judgement(problems, conversions, histograms, findings)


def format_problem(f: LabelFacts) -> Problem:
    return Problem(
        f.path,
        "format",
        f"{f.path}: a {f.format} file; expected a PNG with one class id per pixel (train.py reads PNG). "
        "python voc_annotation.py --fix writes it as PNG.",
        True,
        True,
    )


def no_background_warning(histograms: dict) -> list:
    """A warning when no label has a pixel of class 0 (background): ids that start at 1 (trimaps of 1, 2, 3)
    leave class 0 empty and its output unused."""
    total = sum(histograms.values()) if histograms else np.zeros(256, np.int64)
    found = [int(v) for v in np.flatnonzero(total) if v != IGNORE_LABEL]
    if total[0] or len(found) < 2:
        return []
    return [
        Problem(
            next(iter(histograms)),
            "no_background",
            f"no label has a pixel of class 0, the background: the class values are {found[:8]}. If your ids start at "
            "1, class 0 stays empty (train with num_classes as advised, or relabel so that they start at 0).",
            False,
        )
    ]


def converted_histogram(facts: LabelFacts, conversion) -> np.ndarray:
    """The class-id pixels of a file as it is (class ids already) or as its conversion would write it."""
    if conversion is None:
        return facts.counts.astype(np.int64) if not facts.is_colour else np.zeros(256, np.int64)
    if conversion.table is not None:
        return np.bincount(conversion.table, weights=facts.counts, minlength=256).astype(np.int64)
    return np.bincount(conversion.colour_ids, weights=facts.counts, minlength=256).astype(np.int64)


def value_problems(path: str, histogram: np.ndarray, num_classes: int, converted: bool) -> list:
    """Problems of a label's class ids (as they are, or as its conversion writes them)."""
    values = np.flatnonzero(histogram).tolist()
    too_large = [v for v in values if v >= num_classes and v != IGNORE_LABEL] if num_classes else []
    if too_large:
        after = " (after --fix's conversion)" if converted else ""
        return [
            Problem(
                path,
                "classes",
                f"{path}: class values {too_large}{after} but num_classes={num_classes} (values must be < num_classes,"
                f" or 255 for ignore). Set num_classes to at least {max(too_large) + 1}, or fix the labels.",
            )
        ]
    if set(values) <= {0, IGNORE_LABEL}:
        return [Problem(path, "background", f"{path}: only background: nothing to learn from this image.", False)]
    return []


def rare_values(histograms: dict) -> dict:
    """{class value: [files]} of the values seen in one image only, or in under RARE_SHARE of the labelled pixels
    (datasets of 3 images or more)."""
    if len(histograms) < 3:
        return {}
    total = sum(histograms.values())
    labelled = total.sum() - total[IGNORE_LABEL]
    rare = {}
    for value in np.flatnonzero(total):
        files = [p for p, h in histograms.items() if h[value]]
        if value != IGNORE_LABEL and (len(files) == 1 or total[value] < RARE_SHARE * labelled):
            rare[int(value)] = files
    return rare


def rare_class_warnings(histograms: dict) -> list:
    """Warnings for rare class values (rare_values), naming the files: a stray value (an edge colour, a mistake in
    a labelling tool) rather than a class, or a class with too little to learn from."""
    total = sum(histograms.values()) if histograms else np.zeros(256, np.int64)
    labelled = total.sum() - total[IGNORE_LABEL]
    warnings = []
    for value, files in rare_values(histograms).items():
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        warnings.append(
            Problem(
                files[0],
                "rare",
                f"class value {value}: {int(total[value])} pixels ({total[value] / max(labelled, 1):.4%} of the "
                f"labelled pixels) in {len(files)} image{'s' if len(files) > 1 else ''}: {shown}. A stray value "
                "(an edge colour, a mistake in the labelling tool), or a class with very little to learn from: "
                "check those labels.",
                False,
            )
        )
    return warnings


def class_advice(histograms: dict) -> tuple:
    """(num_classes the labels call for, [rare values above the others]): from the class values that are not rare,
    so that one stray value does not make a 200-class network."""
    rare = rare_values(histograms)
    total = sum(histograms.values()) if histograms else np.zeros(256, np.int64)
    found = [int(v) for v in np.flatnonzero(total) if v != IGNORE_LABEL]
    common = [v for v in found if v not in rare] or found
    largest = max(common, default=0)
    return largest + 1, [v for v in found if v > largest]
