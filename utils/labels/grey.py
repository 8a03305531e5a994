"""Grey labels (mode L, JPEG, 16-bit, grey stored as colour): the values that form regions are the classes
("plateaus"); values that only lie between them on edges (resampling, anti-aliasing, JPEG) are noise, snapped to
the nearest class value. A dataset whose classes are 0 and 255 alone is a set of binary masks: 255 -> 1."""

import numpy as np

from utils.files.images import IGNORE_LABEL
from utils.labels.facts import LabelFacts
from utils.labels.judgement import (
    JPEG_DISTANCE,
    MAX_NOISE_SHARE,
    MIN_REGION,
    MIN_RIM_VALUES,
    PLATEAU_SHARE,
    RIM_SHARE,
    Conversion,
    Problem,
)


def grey_palette(f: LabelFacts) -> bool:
    """Whether a palette label's used entries are the grey of their own index (a grey image stored as mode P, as
    GIF masks are): its indices are grey values, judged as such."""
    return all(colour == index * 0x010101 for index, colour in f.palette.items())


def class_values(counts, interior, between, jpeg: bool):
    """(the values that are classes, the values that are edge noise) of grey labels' summed facts."""
    present = np.flatnonzero(counts)
    plateau = (interior >= PLATEAU_SHARE * np.maximum(counts, 1)) & (interior >= MIN_REGION)
    if jpeg:  # plateaus, each with the values within JPEG_DISTANCE of it merged into it
        main = []
        for value in sorted(present[plateau[present]], key=lambda v: -interior[v]) or [
            present[counts[present].argmax()]
        ]:
            if all(abs(int(value) - m) > JPEG_DISTANCE for m in main):
                main.append(int(value))
        return sorted(main), [int(v) for v in present if v not in main]
    rim = [int(v) for v in present if between[v] >= RIM_SHARE * counts[v] and not plateau[v]]
    if len(rim) >= MIN_RIM_VALUES and counts[rim].sum() < MAX_NOISE_SHARE * counts.sum():
        return [int(v) for v in present if v not in rim], rim
    return [int(v) for v in present], []


def grey_table(main: list, jpeg: bool):
    """((256,) uint8: each value -> the class id of its nearest main value, whether the labels are binary masks).
    Main values near 0 and 255 in JPEG are 0 and 255; main values of 0 and 255 alone are a binary mask's
    background and object: 0 and 1."""
    ids = {m: (0 if m <= JPEG_DISTANCE else 255 if m >= 255 - JPEG_DISTANCE else m) if jpeg else m for m in main}
    binary = set(ids.values()) == {0, IGNORE_LABEL}
    if binary:
        ids = {m: int(i == IGNORE_LABEL) for m, i in ids.items()}
    keys = np.array(main)
    nearest = keys[np.abs(np.arange(256)[:, None] - keys[None]).argmin(axis=1)]  # ties go to the smaller value
    return np.array([ids[v] for v in nearest], np.uint8), binary


def judge_grey(files: list, conversions: dict, problems: list, findings: list) -> None:
    counts, interior, between = (sum(getattr(f, name) for f in files) for name in ("counts", "interior", "between"))
    jpeg = any(f.format == "JPEG" for f in files)
    main, noise = class_values(counts, interior, between, jpeg)
    table, binary = grey_table(main, jpeg)
    moved = int(counts[noise].sum())
    if noise:
        what = "JPEG compression" if jpeg else "resampling (edges blended between the classes)"
        findings.append(
            f"Grey labels: the values forming regions are {main}; {moved} pixels ({moved / counts.sum():.3%}) at "
            f"{len(noise)} other values are noise from {what}: --fix snaps them to the nearest of {main}."
        )
    if binary:
        findings.append("Grey labels: 0 and 255 only, so binary masks: 255 is the object, class 1 (not ignore).")
    for f in files:
        kind, message = grey_problem(f, main, noise, binary)
        if kind is None:  # class ids already: the table leaves its values as they are
            problems += ignored_objects(f, files, main, conversions)
            continue
        conversions[f.path] = Conversion(table=table, notes=grey_notes(f, noise, binary))
        problems.append(Problem(f.path, kind, message, True, True))


def grey_problem(f: LabelFacts, main: list, noise: list, binary: bool):
    """(kind, message) of a grey label that is not yet a class-id PNG, or (None, None)."""
    fix = "python voc_annotation.py --fix writes it as a class-id PNG"
    noisy = int(f.counts[noise].sum())
    if f.format != "PNG":
        if f.format == "JPEG":
            why = "JPEG compression changes the values at every edge, so it cannot hold class ids. "
            how = f" (values snapped to the dataset's main values {main}{', 255 -> 1' if binary else ''})."
        else:
            why, how = "", " (0/255 -> 0/1)." if binary else "."
        kind = "jpeg" if f.format == "JPEG" else "format"
        return kind, f"{f.path}: a {f.format} file; expected a PNG with one class id per pixel. {why}{fix}{how}"
    if any(n.startswith(("16-bit", "float")) for n in f.notes):
        return "16bit", f"{f.path}: a {f.mode} label (16 or 32 bits per pixel); expected 8 bits (mode L or P): {fix}."
    if f.notes:
        values = np.flatnonzero(f.counts).tolist()
        shown = f"{values[:8]}{' ...' if len(values) > 8 else ''}"
        where = "in its alpha channel" if "alpha" in f.notes[0] else "as colour"
        return "colour", (
            f"{f.path}: grey values {shown} stored {where} (mode {f.mode}); expected one class id per pixel "
            f"(mode L or P). {fix}."
        )
    if noisy:
        spread = int((f.counts[noise] > 0).sum())
        what = "a binary mask with resampling noise: values 0 and 255" if binary else f"grey labels of values {main}"
        fix_does = "thresholds at 128 and writes 0/1" if binary else f"snaps them to the nearest of {main}"
        return "noisy", (
            f"{f.path}: {what}, and {noisy} pixels ({noisy / f.pixels:.2%}) at {spread} values in between, on the "
            f"edges (resampling or anti-aliasing). Those would be read as classes"
            + (", and 255 as 'ignore', so the objects would never be learned" if binary else "")
            + f". python voc_annotation.py --fix {fix_does} ({noisy} pixels move)."
        )
    if binary and f.counts[IGNORE_LABEL]:  # a background-only label needs nothing
        return "zero_255", (
            f"{f.path}: values are 0 and 255 only. 255 means 'ignore', so the objects would never be learned; the "
            "object class should be 1. Run python voc_annotation.py --fix to write corrected labels."
        )
    return None, None


def ignored_objects(f: LabelFacts, files: list, main: list, conversions: dict) -> list:
    """A label of 0 and 255 alone whose 255 forms regions, in a dataset whose other labels have classes and use 255
    for thin 'ignore' borders at most: a 0/255 mask among class-id labels, whose objects would never be learned.
    Among 0/1 labels its 255 is class 1 (a conversion); among more classes, no one can tell which."""
    if (
        np.flatnonzero(f.counts).tolist() != [0, IGNORE_LABEL]
        or f.interior[IGNORE_LABEL] < 0.5 * f.counts[IGNORE_LABEL]
    ):
        return []
    others = [g for g in files if g is not f]
    ignored, inside = (sum(g.counts[IGNORE_LABEL] for g in others), sum(g.interior[IGNORE_LABEL] for g in others))
    if ignored and inside >= 0.5 * ignored:
        return []  # 255 forms regions elsewhere too: the dataset ignores whole regions
    classes = [v for v in main if v not in (0, IGNORE_LABEL)]
    if classes == [1]:
        table = np.arange(256, dtype=np.uint8)
        table[IGNORE_LABEL] = 1
        conversions[f.path] = Conversion(table=table, notes=["0/255 -> 0/1"])
        message = (
            f"{f.path}: values are 0 and 255 only, where the other labels have 0 and 1. 255 means 'ignore', so the "
            "objects would never be learned; the object class should be 1. Run python voc_annotation.py --fix to "
            "write corrected labels."
        )
        return [Problem(f.path, "zero_255", message, True, True)]
    return [
        Problem(
            f.path,
            "zero_255",
            f"{f.path}: values are 0 and 255 only, and its 255 pixels form regions, while the other labels have the "
            f"classes {classes} and use 255 at most for thin 'ignore' borders. 255 means 'ignore', so these objects "
            "would never be learned: give them their class id (python voc_annotation.py --fix cannot tell which), "
            "or remove the file.",
        )
    ]


def grey_notes(f: LabelFacts, noise: list, binary: bool) -> list:
    notes = [f"{f.format} -> PNG"] if f.format != "PNG" else []
    notes += list(f.notes)
    moved = int(f.counts[noise].sum())
    if moved:
        notes.append(f"{moved} noise pixels snapped to the nearest class value")
    if binary:
        notes.append("0/255 -> 0/1")
    return notes
