"""The fingerprint of a train split: what a plan for it is made from (utils/planning/). It holds the images' sizes,
bands and sample type, and per class its share of the pixels and of the images and its objects' sizes (connected
regions: area, and thickness, the region's mean width).

It is computed once and cached beside the split files (fingerprint.json), or in the user's cache folder when the
dataset is read-only; the cache records the files it was made from (names, sizes, modification times), so any change
to the split makes it be computed again.
"""

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from utils.files.atomic import write_json
from utils.files.image_files import image_header
from utils.files.images import IGNORE_LABEL, split_samples
from utils.labels.facts import read_label
from utils.labels.objects import label_objects

VERSION = 2  # of the cached fingerprint's fields: a cache of another version is computed again
CACHE_NAME = "fingerprint.json"


@dataclass(frozen=True)
class Spread:
    """A quantity over a population: its 5th percentile, median and extremes (0 for an empty population)."""

    low: float = 0.0  # the minimum
    p5: float = 0.0
    median: float = 0.0
    high: float = 0.0  # the maximum

    @classmethod
    def of(cls, values, weights=None) -> "Spread":
        """Of values, each counted once, or `weights` times (a value that a weight's share of the population has
        at or below it: objects weighted by their pixels)."""
        values = np.asarray(values, np.float64)
        if values.size == 0:
            return cls()
        order = np.argsort(values, kind="stable")
        weights = np.ones_like(values) if weights is None else np.asarray(weights, np.float64)
        reached = np.cumsum(weights[order]) / weights.sum()
        p5, median = (values[order][min(np.searchsorted(reached, q), values.size - 1)] for q in (0.05, 0.5))
        return cls(float(values.min()), float(p5), float(median), float(values.max()))


@dataclass(frozen=True)
class ClassFacts:
    """One class over the split: its share of the labelled pixels (255 not counted), the share of the images that
    hold it, and its objects (8-connected regions of it in each label): how many, their area and thickness in
    pixels (its mean width, twice its area over its outline: a road's width, a cell wall's; half a disc's
    diameter), over the objects
    and over the class's pixels (`thickness_by_pixels.p5`: 5 % of the class's pixels lie in objects this thick or
    thinner; specks of a few pixels, many as they may be, hardly move it)."""

    pixel_share: float
    image_share: float
    objects: int
    area: Spread
    thickness: Spread
    area_by_pixels: Spread
    thickness_by_pixels: Spread


@dataclass(frozen=True)
class Fingerprint:
    """A train split as a plan needs it: its images' count, heights and widths, bands and sample type (uint8,
    uint16, float32, ...), the share of ignored (255) pixels and ClassFacts for each class id that occurs."""

    images: int
    height: Spread
    width: Spread
    bands: int
    dtype: str
    ignored_share: float
    classes: dict = field(default_factory=dict)  # class id -> ClassFacts

    def to_dict(self) -> dict:
        return {**asdict(self), "classes": {str(k): asdict(v) for k, v in self.classes.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "Fingerprint":
        classes = {
            int(key): ClassFacts(
                **{name: Spread(**value) if isinstance(value, dict) else value for name, value in facts.items()}
            )
            for key, facts in data["classes"].items()
        }
        spreads = {name: Spread(**data[name]) for name in ("height", "width")}
        return cls(
            data["images"],
            **spreads,
            bands=data["bands"],
            dtype=data["dtype"],
            ignored_share=data["ignored_share"],
            classes=classes,
        )


def sample_facts(sample) -> tuple:
    """(ImageHeader, LabelObjects) of an (image path, label path) pair of a checked split."""
    image_path, label_path = sample
    label = read_label(label_path).values
    return image_header(image_path), label_objects(label)


def fingerprint_of(samples: list) -> Fingerprint:
    """The Fingerprint of (image path, label path) pairs that the dataset check has passed."""
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        facts = list(tqdm(pool.map(sample_facts, samples), total=len(samples), desc="Fingerprint", unit="image"))
    headers, objects = [f[0] for f in facts], [f[1] for f in facts]
    pixels = np.sum([o.pixels for o in objects], axis=0)
    labelled = max(int(pixels[:IGNORE_LABEL].sum()), 1)
    classes = {}
    for class_id in np.flatnonzero(pixels[:IGNORE_LABEL]):
        class_id = int(class_id)
        areas = [a for o in objects for a in o.areas.get(class_id, [])]
        thicknesses = [t for o in objects for t in o.thicknesses.get(class_id, [])]
        holding = sum(class_id in o.areas for o in objects)
        classes[class_id] = ClassFacts(
            float(pixels[class_id] / labelled),
            holding / len(objects),
            len(areas),
            Spread.of(areas),
            Spread.of(thicknesses),
            Spread.of(areas, areas),
            Spread.of(thicknesses, areas),
        )
    return Fingerprint(
        images=len(samples),
        height=Spread.of([h.size[1] for h in headers]),
        width=Spread.of([h.size[0] for h in headers]),
        bands=max(h.bands for h in headers),
        dtype=max((h.dtype for h in headers), key=lambda name: np.dtype(name).itemsize),
        ignored_share=float(pixels[IGNORE_LABEL] / max(int(pixels.sum()), 1)),
        classes=classes,
    )


def files_digest(samples: list) -> str:
    """A digest of the pairs' paths, sizes and modification times: it changes when any file of the split does."""
    digest = hashlib.sha256()
    for pair in samples:
        for path in pair:
            status = os.stat(path)
            digest.update(f"{os.path.abspath(path)}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_paths(vocdevkit_path: str, split: str = "train") -> list:
    """Where the split's fingerprint is cached: beside the split files (fingerprint.json for train, else
    fingerprint_<split>.json), or (a read-only dataset) in the user's cache."""
    splits = os.path.join(vocdevkit_path, "VOC2007", "ImageSets", "Segmentation")
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.sha256(os.path.abspath(splits).encode()).hexdigest()[:16] + ("" if split == "train" else f"_{split}")
    name = CACHE_NAME if split == "train" else CACHE_NAME.replace(".json", f"_{split}.json")
    return [os.path.join(splits, name), os.path.join(home, "unet-keras", "fingerprints", f"{key}.json")]


def read_cached(paths: list, digest: str):
    """The cached Fingerprint made from the same files, or None."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            if data.get("version") == VERSION and data.get("files") == digest:
                return Fingerprint.from_dict(data["fingerprint"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def write_cache(paths: list, digest: str, fingerprint: Fingerprint) -> str:
    """Writes the cache at the first writable place; returns it ('' when none is)."""
    data = {"version": VERSION, "files": digest, "fingerprint": fingerprint.to_dict()}
    for path in paths:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # a folder without write permission bits is read-only, even for root (who may write anyway)
            if os.access(os.path.dirname(path), os.W_OK) and os.stat(os.path.dirname(path)).st_mode & 0o222:
                write_json(path, data)
                return path
        except (OSError, ValueError):
            continue
    return ""


def train_fingerprint(vocdevkit_path: str, split: str = "train") -> Fingerprint:
    """The train split's Fingerprint (or a fold's: `split`, e.g. fold0_train): from the cache when its files have not
    changed, else computed and cached."""
    samples = split_samples(vocdevkit_path, split)
    paths, digest = cache_paths(vocdevkit_path, split), files_digest(samples)
    cached = read_cached(paths, digest)
    if cached:
        return cached
    fingerprint = fingerprint_of(samples)
    where = write_cache(paths, digest, fingerprint)
    print(f"Fingerprint of {len(samples)} {split} images" + (f" cached in {where}" if where else " (not cached)"))
    return fingerprint


def describe_fingerprint(fingerprint: Fingerprint, class_names=()) -> str:
    """The fingerprint as a table a user reads: sizes and bands, then a row per class."""
    h, w = fingerprint.height, fingerprint.width
    lines = [
        f"{fingerprint.images} train images, {h.low:.0f}-{h.high:.0f} px high (median {h.median:.0f}), "
        f"{w.low:.0f}-{w.high:.0f} px wide (median {w.median:.0f}); {fingerprint.bands} band(s) of "
        f"{fingerprint.dtype}; {fingerprint.ignored_share:.1%} of the pixels ignored (255)",
        "  objects' area and thickness (px) by the class's pixels: 5 % of them lie in objects below p5",
        f"  {'class':<16} {'pixels':>7} {'images':>7} {'objects':>8} {'area p5/median':>16} "
        f"{'thickness p5/median':>20}",
    ]
    for class_id, facts in sorted(fingerprint.classes.items()):
        name = class_names[class_id] if class_id < len(class_names) else str(class_id)
        lines.append(
            f"  {name[:16]:<16} {facts.pixel_share:>7.1%} {facts.image_share:>7.0%} {facts.objects:>8} "
            f"{facts.area_by_pixels.p5:>7.0f}/{facts.area_by_pixels.median:<8.0f} "
            f"{facts.thickness_by_pixels.p5:>10.1f}/{facts.thickness_by_pixels.median:<9.1f}"
        )
    return "\n".join(lines)
