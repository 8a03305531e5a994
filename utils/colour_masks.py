"""Colour masks (labels drawn as RGB colours rather than class ids): their colours, and the class each colour
stands for. The dataset check reports such masks; --fix (utils/label_fix.py) converts them."""

import numpy as np

from utils.visualize import voc_colour

BLACK_WHITE = [(0, 0, 0), (255, 255, 255)]  # a colour mask in these two colours is background / object


def palette_mapping(colours: np.ndarray, palette=None, tolerance: float = 0.0):
    """{(r, g, b): class id} for the colours of an RGB mask, from the given palette (class order), or detected:
    black and white -> 0 and 1; the VOC palette's colours -> their indices. A colour maps to the nearest palette
    colour within `tolerance` (RGB distance; > 0 for JPEG masks). None when not every colour maps."""
    colours = [tuple(int(v) for v in c) for c in colours]
    if palette:
        reference = [tuple(c) for c in palette]
    elif all(min(np.linalg.norm(np.subtract(c, e)) for e in BLACK_WHITE) <= tolerance for c in colours):
        reference = BLACK_WHITE
    else:
        reference = [voc_colour(i) for i in range(256)]
    distances = np.linalg.norm(np.subtract(colours, 0.0)[:, None, :] - np.array(reference)[None], axis=-1)
    nearest = distances.argmin(axis=1)
    if (distances[np.arange(len(colours)), nearest] > tolerance).any():
        return None
    return {c: int(i) for c, i in zip(colours, nearest)}


def pack_colours(rgb) -> np.ndarray:
    """(..., 3) colours -> (...) int32 0xRRGGBB, so that colours can be compared and looked up as numbers."""
    rgb = np.asarray(rgb, np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def unique_colours(rgb: np.ndarray) -> np.ndarray:
    """The distinct colours (N, 3) of an (H, W, 3) uint8 array."""
    values = np.unique(pack_colours(rgb))
    return np.stack([values >> 16, (values >> 8) & 255, values & 255], axis=1).astype(np.uint8)


def rgb_channels(array: np.ndarray) -> np.ndarray:
    """The colour channels (H, W, 3) of a multi-channel label array: RGB(A) as is, grey + alpha repeated."""
    return np.repeat(array[..., :1], 3, axis=-1) if array.shape[-1] < 3 else array[..., :3]


def is_grey(rgb: np.ndarray) -> bool:
    """Whether every pixel of an (H, W, 3) array has equal channels (grey values stored as colour)."""
    return bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
