"""Colour masks (labels drawn as RGB colours rather than class ids): colours as numbers and back. The dataset check
judges such masks (utils/labels/formats.py); --fix converts them (utils/labels/fix.py)."""

import numpy as np

BLACK_WHITE = [(0, 0, 0), (255, 255, 255)]  # a colour mask in these two colours is background / object


def pack_colours(rgb) -> np.ndarray:
    """(..., 3) colours -> (...) int32 0xRRGGBB, so that colours can be compared and looked up as numbers."""
    rgb = np.asarray(rgb, np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def unpack_colour(packed) -> tuple:
    """0xRRGGBB -> (r, g, b)."""
    packed = int(packed)
    return packed >> 16, (packed >> 8) & 255, packed & 255


def unpack_colours(packed) -> np.ndarray:
    """(N,) 0xRRGGBB -> (N, 3) uint8."""
    packed = np.asarray(packed, np.int64)
    return np.stack([packed >> 16, (packed >> 8) & 255, packed & 255], axis=-1).astype(np.uint8)


def rgb_channels(array: np.ndarray) -> np.ndarray:
    """The colour channels (H, W, 3) of a multi-channel label array: RGB(A) as is, grey + alpha repeated."""
    return np.repeat(array[..., :1], 3, axis=-1) if array.shape[-1] < 3 else array[..., :3]
