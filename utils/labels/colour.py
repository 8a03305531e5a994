"""Colour masks (RGB): each colour maps to a class through --palette (class order) and --ignore_colours (255), or
a palette recognised without them (black and white; VOC's colours); blends on the edges between two listed colours
are snapped to the nearer one; any other colour is named, with its pixels."""

from dataclasses import dataclass

import numpy as np

from utils.files.images import IGNORE_LABEL
from utils.labels.colour_masks import BLACK_WHITE, unpack_colour, unpack_colours
from utils.labels.facts import LabelFacts
from utils.labels.judgement import (
    BLEND_DISTANCE,
    JPEG_DISTANCE,
    MIN_REGION,
    NO_CLASS,
    PLATEAU_SHARE,
    Conversion,
    Problem,
)
from utils.visualize import hex_colour, voc_colour


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
