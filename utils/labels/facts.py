"""One label file, read once: its pixels as class-id candidates, and the facts about them that tell its format.

A label arrives as class ids (a PNG of mode L or P, as VOC has it), as grey values that stand for classes (a 0/255
mask, perhaps resampled or JPEG-compressed), as palette indices whose colours are the classes, or as RGB colours.
No file alone says which: utils/labels/formats.py judges that over the whole dataset, from the facts gathered here.

The facts of a value (or colour) are its pixels, how many of them are *interior* (all 4 neighbours share it: a value
that forms regions) and how many lie *between* their neighbours' values (smaller than one neighbour, larger than
another: the blend that resampling or anti-aliasing leaves on the edge between two classes).
"""

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from utils.labels.colour_masks import pack_colours, rgb_channels

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
FULL_SCALE_16 = 65535  # a 16-bit mask of 0 and 65535 is a 0/255 mask at 16 bits
FEW_COLOURS = 256  # colour masks with at most this many colours are counted by PIL


@dataclass
class LabelArray:
    """A label's pixels as read: `values` (H, W) uint8 (grey values, class ids or palette indices), or `colours`
    (H, W) int32 0xRRGGBB for a colour mask."""

    format: str  # PNG, JPEG, GIF, TIFF, ...
    mode: str  # PIL's mode of the file
    values: np.ndarray | None = None
    colours: np.ndarray | None = None
    palette: np.ndarray | None = None  # mode P: (256,) packed colours of the palette's entries
    notes: list = field(default_factory=list)  # what reading changed: "16-bit -> 8-bit", ...
    distinct: np.ndarray | None = None  # a colour mask's few distinct colours, sorted (None: not counted yet)

    @property
    def shape(self) -> tuple:
        return (self.values if self.values is not None else self.colours).shape


class UnusableLabel(ValueError):
    """A label whose pixels cannot be class ids however they are read (values beyond 8 bits, fractions)."""


def read_label(path: str) -> LabelArray:
    """Reads a label file of any format PIL reads into values or colours (see LabelArray).

    Raises:
        OSError and PIL's errors for files that cannot be read; UnusableLabel for pixels that cannot be ids.
    """
    with Image.open(path) as image:
        image.load()
        found = LabelArray(image.format or "unknown", image.mode)
        if image.mode in ("1", "L", "P"):
            found.values = np.asarray(image, dtype=np.uint8)
            if image.mode == "P":
                entries = np.zeros((256, 3), np.int32)
                flat = np.asarray(image.getpalette() or [], np.int32).reshape(-1, 3)[:256]
                entries[: len(flat)] = flat
                found.palette = pack_colours(entries)
            return found
        if image.mode in SIXTEEN_BIT_MODES or image.mode == "F":
            found.values = eight_bit(np.asarray(image), image.mode, found.notes, path)
            return found
        if image.mode not in ("LA", "RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode else "RGB")  # PA, CMYK, YCbCr, ...
        array = np.asarray(image)
        rgb = rgb_channels(array)
        if (
            image.mode in ("LA", "RGBA")
            and (rgb == rgb[:1, :1]).all()
            and not (array[..., -1] == array[0, 0, -1]).all()
        ):
            found.values = np.ascontiguousarray(array[..., -1])  # one colour throughout: the alpha is the mask
            found.notes.append("the mask in the alpha channel -> one channel")
            return found
        # PIL counts a mask's few colours in C, far faster than sorting its pixels (None: more than FEW_COLOURS)
        few = image.getcolors(FEW_COLOURS) if image.mode == "RGB" else None
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
        found.values = np.ascontiguousarray(rgb[..., 0])
        found.notes.append("grey values stored as colour -> one channel")
    else:
        found.colours = pack_colours(rgb)
        found.distinct = np.sort(pack_colours([colour for _, colour in few])) if few else None
    return found


def eight_bit(array: np.ndarray, mode: str, notes: list, path: str) -> np.ndarray:
    """A 16-bit, 32-bit or float label as uint8: values up to 255 as they are; a full-scale 16-bit mask (up to
    65535) divided by 257 (65535 -> 255); floats in 0-1 (a 0/1 mask, maybe resampled) scaled to 0-255."""
    if mode == "F":
        if not np.isfinite(array).all():
            raise UnusableLabel(f"{path}: a float label with NaN or infinite values; expected class ids.")
        if (array == np.round(array)).all() and 0 <= array.min() and array.max() <= 255:
            notes.append("float -> 8-bit")
            return array.astype(np.uint8)
        if 0 <= array.min() and array.max() <= 1:
            notes.append("float 0-1 -> 0-255")
            return np.round(array * 255).astype(np.uint8)
        raise UnusableLabel(
            f"{path}: a float label with values from {array.min():g} to {array.max():g}; expected class ids "
            "(whole numbers 0-255) or a 0-1 mask. Export the label as an 8-bit PNG of class ids."
        )
    top = int(array.max())
    if top <= 255 and array.min() >= 0:
        notes.append("16-bit -> 8-bit")
        return array.astype(np.uint8)
    if top == FULL_SCALE_16 and array.min() >= 0:
        notes.append("16-bit 0-65535 -> 0-255")
        return (array.astype(np.int64) // 257).astype(np.uint8)
    raise UnusableLabel(
        f"{path}: a {mode} label with values from {int(array.min())} to {top}, which do not fit in 8 bits; expected "
        "class ids 0-255 (255 = ignore). Export the label as an 8-bit PNG of class ids."
    )


@dataclass
class LabelFacts:
    """What a label file says about its format (see the module's docstring)."""

    path: str
    size: tuple  # (width, height)
    format: str
    mode: str
    notes: tuple  # what reading changed
    counts: np.ndarray  # pixels per value (256,), or per colour of `colours`
    interior: np.ndarray  # ... of them with all 4 neighbours equal to them
    between: np.ndarray | None = None  # values: ... lying strictly between their neighbours' values
    colours: np.ndarray | None = None  # a colour mask's packed colours (N,), in the order of counts
    palette: dict = field(default_factory=dict)  # mode P: {index: packed colour} of the indices it uses

    @property
    def is_colour(self) -> bool:
        return self.colours is not None

    @property
    def pixels(self) -> int:
        return int(self.counts.sum())


def neighbours(array: np.ndarray):
    """The smallest and largest of each pixel's 4 neighbours (the border repeated at the edges)."""
    padded = np.pad(array, 1, mode="edge")
    up, down, left, right = padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]
    return np.minimum(np.minimum(up, down), np.minimum(left, right)), np.maximum(
        np.maximum(up, down), np.maximum(left, right)
    )


def facts_of(path: str, label: LabelArray) -> LabelFacts:
    """The facts of a label read by read_label."""
    height, width = label.shape
    common = dict(path=path, size=(width, height), format=label.format, mode=label.mode, notes=tuple(label.notes))
    if label.colours is not None:
        if label.distinct is not None:  # few colours: each pixel's index among them by a binary search
            colours, inverse = label.distinct, np.searchsorted(label.distinct, label.colours).astype(np.uint8)
            low, high = neighbours(inverse)
            inside = (low == inverse) & (high == inverse)
            counts = np.bincount(inverse.ravel(), minlength=len(colours))
            interior = np.bincount(inverse[inside].ravel(), minlength=len(colours))
            return LabelFacts(**common, counts=counts, interior=interior, colours=colours)
        # many colours (JPEG): sorting without the inverse index is ten times faster than with it
        low, high = neighbours(label.colours)
        colours, counts = np.unique(label.colours, return_counts=True)
        inner, inner_counts = np.unique(
            label.colours[(low == label.colours) & (high == label.colours)], return_counts=True
        )
        interior = np.zeros(len(colours), np.int64)
        interior[np.searchsorted(colours, inner)] = inner_counts
        return LabelFacts(**common, counts=counts, interior=interior, colours=colours)
    values = label.values
    low, high = neighbours(values)
    counts = np.bincount(values.ravel(), minlength=256)
    interior = np.bincount(values[(low == values) & (high == values)], minlength=256)
    between = np.bincount(values[(low < values) & (values < high)], minlength=256)
    palette = {}
    if label.palette is not None:
        palette = {int(i): int(label.palette[i]) for i in np.flatnonzero(counts)}
    return LabelFacts(**common, counts=counts, interior=interior, between=between, palette=palette)
