"""The format of a dataset's labels, judged over all its files at once, and the conversion of each file to class ids.

A single file cannot say what its values mean: 255 is 'ignore' in VOC but the object in a 0/255 mask; index 1 of a
palette PNG is a class id, unless the next file's palette puts that class's colour at index 5. So every label is
read once into facts (utils/label_facts.py), and the judgement here weighs them together:
- **grey labels** (mode L, JPEG, 16-bit, grey stored as colour): the values that form regions are the classes
  ("plateaus"); values that only lie between them on edges (resampling, anti-aliasing, JPEG) are noise, snapped to
  the nearest class value. A dataset whose classes are 0 and 255 alone is a set of binary masks: 255 -> 1.
- **palette labels** (mode P): each index's colour is compared across files; where a colour sits at different
  indices, the colours are the classes and the files are remapped by colour.
- **colour masks** (RGB): each colour maps to a class through --palette (class order) and --ignore_colours (255),
  or a palette recognised without them (black and white; VOC's colours); blends on the edges between two listed
  colours are snapped to the nearer one; any other colour is named, with its pixels.

The result is a Judgement: the problems (each names its file, what was found and the fix), and for each file that
needs one, the Conversion `voc_annotation.py --fix` applies, with the class histogram the fix would produce, so the
report and the advice on num_classes come from the labels as they will be trained on.
"""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from utils.colour_masks import BLACK_WHITE, pack_colours, unpack_colour, unpack_colours
from utils.images import IGNORE_LABEL
from utils.label_facts import LabelArray, LabelFacts
from utils.visualize import hex_colour, voc_colour

PLATEAU_SHARE = 0.1  # a value forms regions when at least this share of its pixels have 4 equal neighbours
RIM_SHARE = 0.5  # ... and lies on edges when at least this share of its pixels lie between their neighbours'
MIN_RIM_VALUES = 3  # resampling leaves a spread of values between two classes; one thin class is not a spread
MAX_NOISE_SHARE = 0.25  # noise is thin: more pixels than this between the classes are not edge noise
JPEG_DISTANCE = 24  # JPEG moves values and colours by up to this much inside a region
MIN_REGION = 16  # px of 4-neighbour interior over the dataset: fewer is no region, whatever its share
BLEND_DISTANCE = 8  # an edge blend of two colours lies this close to the line between them
RARE_SHARE = 1e-4  # a class in under this share of the labelled pixels (or in one image) is worth a look
NO_CLASS = -1


@dataclass
class Problem:
    path: str
    kind: str  # a short key: "noisy", "zero_255", "palette_order", "colour", "jpeg", "classes", "rare", ...
    message: str  # the file, what was found, what was expected and how to fix it
    fatal: bool = True  # would break training (else a warning)
    fixable: bool = False  # voc_annotation.py --fix can correct it


@dataclass
class Conversion:
    """How --fix turns one file's pixels into class ids: a table from values (or packed colours) to ids."""

    table: np.ndarray | None = None  # (256,) uint8 for values
    colours: np.ndarray | None = None  # a colour mask's packed colours, sorted ...
    colour_ids: np.ndarray | None = None  # ... and the class id of each, uint8
    notes: list = field(default_factory=list)  # what it does, for the report

    def apply(self, label: LabelArray) -> np.ndarray:
        if label.colours is None:
            return self.table[label.values]
        found = np.minimum(np.searchsorted(self.colours, label.colours), len(self.colours) - 1)
        if (self.colours[found] != label.colours).any():
            raise ValueError("a colour changed since the survey: run python voc_annotation.py again")
        return self.colour_ids[found]


@dataclass
class Judgement:
    problems: list  # [Problem]
    conversions: dict  # {path: Conversion} of the files --fix rewrites
    histograms: dict  # {path: (256,) class-id pixels}, after the conversions
    findings: list  # lines on the dataset's formats for the report


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


def grey_palette(f: LabelFacts) -> bool:
    """Whether a palette label's used entries are the grey of their own index (a grey image stored as mode P, as
    GIF masks are): its indices are grey values, judged as such."""
    return all(colour == index * 0x010101 for index, colour in f.palette.items())


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


# grey labels


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


# palette labels


def judge_indexed(files: list, palette, ignore_colours, conversions: dict, problems: list, findings: list) -> None:
    """P-mode labels: their indices are the class ids, unless a colour sits at different indices in different
    files (then the colours are, and each file is remapped by colour) or --palette / --ignore_colours name colours."""
    places = {}  # colour -> Counter(index -> files)
    for f in files:
        for index, colour in f.palette.items():
            places.setdefault(colour, Counter())[index] += 1
    moved = {c: n for c, n in places.items() if len(n) > 1}
    if not moved and not palette and not ignore_colours:
        return
    colours = np.array(sorted(places), np.int64)
    if palette:  # palette entries are exact colours: no blends, no noise
        found = listed_ids(colours, np.ones(len(colours), bool), palette, ignore_colours, jpeg=False)
        ids = {c: i for c, i in zip(colours.tolist(), found.tolist()) if i != NO_CLASS}
        unlisted = [c for c, i in zip(colours.tolist(), found.tolist()) if i == NO_CLASS]
    else:
        ids, unlisted = auto_ids(colours, places), []
        if ignore_colours:
            ids.update({c: IGNORE_LABEL for c in pack_colours(list(ignore_colours)).tolist() if c in ids})
    order = ", ".join(f"{hex_colour(unpack_colour(c))} -> {ids[c]}" for c in sorted(ids, key=lambda c: ids[c]))
    if moved:
        findings.append(
            f"Palette labels: {len(moved)} colours sit at different indices in different files, so the colours are "
            f"the classes, not the indices: --fix writes each pixel's class by its colour ({order}; --palette sets "
            "another class order)."
        )
    usual = {c: n.most_common(1)[0][0] for c, n in places.items()}
    for f in files:
        missing = sorted({c for c in f.palette.values() if c in unlisted})
        if missing:
            problems.append(unlisted_problem(f, missing, {c: int(f.counts[i]) for i, c in f.palette.items()}))
            continue
        table = np.arange(256, dtype=np.uint8)
        for index, colour in f.palette.items():
            table[index] = ids[colour]
        if all(table[i] == i for i in f.palette):
            continue
        conversions[f.path] = Conversion(table=table, notes=[f"palette indices -> classes by colour ({order})"])
        differs = [
            f"{hex_colour(unpack_colour(c))} is index {i} here but {usual[c]} in {places[c][usual[c]]} files"
            for i, c in sorted(f.palette.items())
            if usual[c] != i
        ]
        found = "; ".join(differs[:3]) if differs else "its indices differ from the classes --palette gives"
        problems.append(
            Problem(
                f.path,
                "palette_order" if moved else "palette",
                f"{f.path}: palette order differs from the other files' ({found}). The colours are consistent across "
                "files, the indices are not, so the indices cannot be the class ids. python voc_annotation.py --fix "
                f"writes each pixel's class by its colour: {order}.",
                True,
                True,
            )
        )


def auto_ids(colours: np.ndarray, places: dict) -> dict:
    """{colour: class id} without a --palette: black and white are 0 and 1; VOC's colours their VOC index; else each
    colour takes the index it has in most files (a colour whose index is taken goes to the next free one)."""
    rgb = [unpack_colour(c) for c in colours]
    if set(rgb) <= set(BLACK_WHITE):
        return {int(c): BLACK_WHITE.index(v) for c, v in zip(colours, rgb)}
    voc = {voc_colour(i): i for i in reversed(range(256))}
    if all(v in voc for v in rgb):
        return {int(c): voc[v] for c, v in zip(colours, rgb)}
    ids, taken = {}, set()
    for colour in sorted(places, key=lambda c: -places[c].most_common(1)[0][1]):
        index = places[colour].most_common(1)[0][0]
        index = index if index not in taken else min(set(range(256)) - taken)
        ids[colour] = index
        taken.add(index)
    return ids


# colour masks


@dataclass
class ColourTotals:
    """Colour masks' colours over the dataset: each distinct colour's pixels, interior pixels and files."""

    colours: np.ndarray  # packed 0xRRGGBB, sorted
    pixels: np.ndarray
    interior: np.ndarray
    files: np.ndarray

    @classmethod
    def of(cls, files: list) -> "ColourTotals":
        colours, inverse = np.unique(np.concatenate([f.colours for f in files]), return_inverse=True)
        add = lambda name: np.bincount(  # noqa: E731
            inverse, weights=np.concatenate([getattr(f, name) for f in files]), minlength=len(colours)
        ).astype(np.int64)
        return cls(colours, add("counts"), add("interior"), np.bincount(inverse, minlength=len(colours)))

    @property
    def regions(self) -> np.ndarray:
        """Which colours form regions (the others lie on edges, in thin lines, or are JPEG noise)."""
        return (self.interior >= PLATEAU_SHARE * self.pixels) & (self.interior >= MIN_REGION)

    def describe(self, colour: int) -> str:
        index = np.searchsorted(self.colours, colour)
        return f"{hex_colour(unpack_colour(colour))} ({self.pixels[index]} px in {self.files[index]} files)"

    def by_pixels(self, chosen: np.ndarray) -> list:
        """The colours where `chosen` (a mask) is true, most pixels first."""
        return self.colours[chosen][np.argsort(-self.pixels[chosen], kind="stable")].tolist()


def listed_ids(colours: np.ndarray, regions: np.ndarray, palette, ignore_colours, jpeg: bool) -> np.ndarray:
    """The class id of each colour (NO_CLASS: unlisted) through the listed colours (class order, then ignore -> 255). A
    colour is the listed colour it equals (within JPEG_DISTANCE for JPEG masks); a colour that forms no regions is
    the nearer of the two listed colours it is a blend of (anti-aliased edges), or in JPEG masks simply the nearest
    (compression noise); any other colour is unlisted."""
    reference = [tuple(c) for c in palette] + [tuple(c) for c in ignore_colours]
    reference_ids = np.array(list(range(len(palette))) + [IGNORE_LABEL] * len(ignore_colours))
    points = np.array(reference, np.float64)
    rgb = unpack_colours(colours).astype(np.float64)
    distance = np.linalg.norm(rgb[:, None, :] - points[None], axis=-1)
    order = np.argsort(distance, axis=1)
    nearest = order[:, 0]
    close = distance[np.arange(len(rgb)), nearest] <= (JPEG_DISTANCE if jpeg else 0)
    snapped = ~regions & (jpeg or blends(rgb, points, order))
    return np.where(close | snapped, reference_ids[nearest], NO_CLASS)


def blends(rgb: np.ndarray, points: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Which colours lie on the line between their two nearest listed colours (an anti-aliased edge's blends)."""
    if len(points) < 2:
        return np.zeros(len(rgb), bool)
    first, second = points[order[:, 0]], points[order[:, 1]]
    direction = second - first
    along = np.clip(((rgb - first) * direction).sum(1) / np.maximum((direction**2).sum(1), 1e-9), 0, 1)
    return np.linalg.norm(first + along[:, None] * direction - rgb, axis=1) <= BLEND_DISTANCE


def judge_colour(files: list, palette, ignore_colours, conversions: dict, problems: list, findings: list) -> None:
    totals = ColourTotals.of(files)
    jpeg = any(f.format == "JPEG" for f in files)
    listed = list(palette) or recognised_palette(totals, jpeg)
    if not listed:
        regions = totals.by_pixels(totals.regions)
        findings.append(colour_inventory(totals, regions, totals.by_pixels(~totals.regions)))
        problems += [unknown_palette_problem(f, regions) for f in files]
        return
    ids = listed_ids(totals.colours, totals.regions, listed, ignore_colours, jpeg)
    unlisted = totals.by_pixels(ids == NO_CLASS)
    if unlisted:
        shown = ", ".join(totals.describe(c) for c in unlisted[:8])
        findings.append(
            f"Colour masks: {len(unlisted)} colours are in neither --palette nor --ignore_colours: {shown}."
        )
    names = {i: hex_colour(c) for i, c in enumerate(listed)}
    names[IGNORE_LABEL] = "/".join(map(hex_colour, ignore_colours))
    for f in files:
        file_ids = ids[np.searchsorted(totals.colours, f.colours)]
        if (file_ids == NO_CLASS).any():
            missing = f.colours[file_ids == NO_CLASS].tolist()
            problems.append(unlisted_problem(f, missing, dict(zip(f.colours.tolist(), f.counts.tolist()))))
            continue
        pairs = ", ".join(f"{names[i]} -> {i}" for i in np.unique(file_ids)[:8])
        conversions[f.path] = Conversion(
            colours=f.colours, colour_ids=file_ids.astype(np.uint8), notes=[f"colours -> class ids {pairs}"]
        )
        shown = ", ".join(hex_colour(unpack_colour(c)) for c in f.colours[np.argsort(-f.counts)][:6])
        problems.append(
            Problem(
                f.path,
                "colour",
                f"{f.path}: an RGB colour mask (mode {f.mode}, {len(f.colours)} colours: {shown}"
                f"{' ...' if len(f.colours) > 6 else ''}); expected one class id per pixel (mode L or P). Its colours "
                f"map to classes: {pairs}. python voc_annotation.py --fix writes class-id labels so.",
                True,
                True,
            )
        )


def recognised_palette(totals: ColourTotals, jpeg: bool) -> list:
    """The palette of colour masks given without --palette: black and white (0, 1), or VOC's colours (by index),
    when every colour forming regions is one of them (within JPEG_DISTANCE for JPEG masks); else []."""
    plateaus = unpack_colours(
        totals.colours[totals.regions] if totals.regions.any() else totals.by_pixels(totals.pixels > 0)[:1]
    )
    for reference in (BLACK_WHITE, [voc_colour(i) for i in range(256)]):
        distance = np.linalg.norm(plateaus[:, None, :].astype(float) - np.array(reference, float)[None], axis=-1)
        if (distance.min(axis=1) <= (JPEG_DISTANCE if jpeg else 0)).all():
            return [tuple(r) for r in reference]
    return []


def unlisted_problem(f: LabelFacts, missing: list, pixels: dict) -> Problem:
    shown = ", ".join(f"{hex_colour(unpack_colour(c))} ({pixels[c]} px)" for c in missing[:8])
    return Problem(
        f.path,
        "unlisted",
        f"{f.path}: colours in neither --palette nor --ignore_colours: {shown}{' ...' if len(missing) > 8 else ''}. "
        "Add each to --palette (a class, in class order) or to --ignore_colours (ignored, 255), then run "
        "python voc_annotation.py --fix again.",
    )


def colour_inventory(totals: ColourTotals, regions: list, others: list) -> str:
    """A line naming colour masks' colours by pixels: those that form regions, then those on edges or thin lines."""
    line = "Colour masks, their colours by pixels: " + ", ".join(totals.describe(c) for c in regions[:12])
    if others:
        shown = ", ".join(totals.describe(c) for c in others[:6])
        line += f"; on edges or in thin lines only: {shown}{' ...' if len(others) > 6 else ''}"
    return line


def unknown_palette_problem(f: LabelFacts, regions: list) -> Problem:
    """The problem of a colour mask in colours no palette names: the command to name them, the dataset's region
    colours by pixels."""
    command = " ".join(f"'{hex_colour(unpack_colour(c))}'" for c in regions[:12])
    shown = ", ".join(hex_colour(unpack_colour(c)) for c in f.colours[np.argsort(-f.counts)][:6])
    return Problem(
        f.path,
        "colour",
        f"{f.path}: an RGB colour mask (mode {f.mode}, {len(f.colours)} colours: {shown}"
        f"{' ...' if len(f.colours) > 6 else ''}); expected one class id per pixel (mode L or P). Its colours are "
        f"not a known palette: give the colour of each class in class order, and the colours that mean 'ignore': "
        f"python voc_annotation.py --fix --palette {command} --ignore_colours ... (the dataset's region colours by "
        "pixels, listed above: put the classes in your order, 'unlabelled' colours and gaps in --ignore_colours).",
    )


# class ids


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
