"""The pixel side of training augmentation: the one OpenCV resampling per array that moves a sample's pixels
(scale, aspect, flip, placement, rotation, shear and the elastic field at once), then the colour jitter.

Without the elastic field the pixels move in one cv2.warpAffine; with it, in one cv2.remap whose map composes the
field and the affine, so every pixel is resampled once whatever is switched on. The draws that decide each
sample's map are utils/augmentation/draws.py's.
"""

import math

import cv2
import numpy as np

from utils.augmentation.photometric import apply_photometric
from utils.files.bands import Bands
from utils.files.images import IGNORE_LABEL

# 8-bit RGB: hue, saturation, value, each multiplied by 1 + uniform(-j, j). Other images (grey, N bands, 16-bit,
# float): the value gain only, the same for every band, as brightness about each band's low end (jitter_bands).
HSV_JITTER = (0.1, 0.7, 0.3)


def elastic_field(shape, alpha: float, sigma: float, seed: int) -> np.ndarray:
    """float32 (H, W, 2) displacements (dx, dy) in px: N(0, alpha²) at grid points sigma px apart, bicubic between.

    Args:
        shape: (H, W); seed: the sample's draw (numpy's generator).
    """
    height, width = shape
    rows, cols = math.ceil(height / sigma) + 1, math.ceil(width / sigma) + 1
    coarse = np.random.default_rng(seed).normal(0.0, alpha, (rows, cols, 2)).astype(np.float32)
    size = (round((cols - 1) * sigma) + 1, round((rows - 1) * sigma) + 1)  # OpenCV: (width, height)
    return cv2.resize(coarse, size, interpolation=cv2.INTER_CUBIC)[:height, :width]


def remap_maps(matrix: np.ndarray, field: np.ndarray):
    """cv2.remap's (map_x, map_y), float32 (H, W): where each output pixel reads the input, the elastic field
    applied on the canvas first and the affine `matrix` (input -> canvas, 2x3) inverted after it."""
    height, width = field.shape[:2]
    inverse = cv2.invertAffineTransform(matrix.astype(np.float64)).astype(np.float32)
    x = np.arange(width, dtype=np.float32)[None, :] + field[..., 0]  # (H, W) canvas x, displaced
    y = np.arange(height, dtype=np.float32)[:, None] + field[..., 1]
    map_x = inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2]
    map_y = inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2]
    return map_x, map_y


def jitter_hsv(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Multiplies hue, saturation and value of a uint8 RGB image by gains (3,) through lookup tables (hue wraps)."""
    x = np.arange(256, dtype=np.float32)
    tables = [(x * gains[0]) % 180, np.clip(x * gains[1], 0, 255), np.clip(x * gains[2], 0, 255)]  # OpenCV hue: 0-179
    channels = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    hsv = cv2.merge([cv2.LUT(c, t.astype(np.uint8)) for c, t in zip(channels, tables)])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def jitter_bands(image: np.ndarray, gain: float, bands: Bands) -> np.ndarray:
    """Brightness of an image that is not 8-bit RGB: every band times `gain` about its low end (0 for 8-bit
    images, clipped to 255 as HSV's value is; the range's low for the others, nothing clipped)."""
    if bands.eight_bit:
        return np.clip(np.arange(256, dtype=np.float32) * gain, 0, 255).astype(np.uint8)[image]
    lows = np.array([low for low, _ in bands.ranges], np.float32)
    return lows + (image - lows) * np.float32(gain)


def resample(array: np.ndarray, matrix, maps, canvas_shape, interpolation: int, fill) -> np.ndarray:
    """One OpenCV resampling of array (h, w[, <= 4]) onto the canvas: warpAffine by matrix, or remap by maps."""
    height, width = canvas_shape
    if maps is None:
        return cv2.warpAffine(array, matrix, (width, height), flags=interpolation, borderValue=fill)
    return cv2.remap(array, *maps, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=fill)


def warp_pair(
    image, label, matrix, canvas_shape, gains, elastic_seed=0, photometric_seed=0, bands=Bands(), options=None
):
    """numpy side of draws.augment: image and label resampled once each onto the canvas (Bands.fill /
    IGNORE_LABEL outside; the label by nearest neighbour), then colour jitter (HSV for 8-bit RGB, else
    jitter_bands), then the photometric transforms the sample draws (utils/augmentation/photometric.py).

    Args:
        matrix: float32 (2, 3) input -> canvas; canvas_shape: (H, W); gains: float32 (3,) colour gains.
        elastic_seed, photometric_seed: the sample's draws of the elastic field and the photometric transforms.
        options: draws.Augmentation (its elastic_alpha, elastic_sigma and photometric); None: none of them.
    """
    canvas_shape = (int(canvas_shape[0]), int(canvas_shape[1]))
    alpha, sigma = (options.elastic_alpha, options.elastic_sigma) if options else (0.0, 0.0)
    maps = remap_maps(matrix, elastic_field(canvas_shape, alpha, sigma, int(elastic_seed))) if alpha else None
    fill = bands.fill
    # OpenCV's border value has 4 entries: more bands are resampled 4 at a time (the same map, so the same pixels).
    parts = [
        resample(
            np.ascontiguousarray(image[..., first : first + 4]),
            matrix,
            maps,
            canvas_shape,
            cv2.INTER_LINEAR,
            fill[first : first + 4],
        ).reshape(*canvas_shape, -1)  # OpenCV drops a single band's axis
        for first in range(0, image.shape[-1], 4)
    ]
    image = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
    label = resample(label, matrix, maps, canvas_shape, cv2.INTER_NEAREST, IGNORE_LABEL)
    if not np.all(gains == 1):  # a sample left unjittered (Augmentation.jitter): its colours as they are
        image = (
            jitter_hsv(image, gains)
            if bands.eight_bit and bands.channels == 3
            else jitter_bands(image, gains[2], bands)
        )
    if options and options.photometric.active:
        image = apply_photometric(image, label != IGNORE_LABEL, options.photometric, bands, int(photometric_seed))
    return image, label
