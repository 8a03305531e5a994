"""The pixel side of training augmentation: the geometric options of train.py (rotation, vertical flip, shear,
elastic deformation) and the one OpenCV resampling per array that applies them with the scale, flip and placement
of utils/dataloader.augment, then the colour jitter.

Geometry is one map per sample: the affine part (scale, aspect, flip, placement, rotation, shear) is a 2x3 matrix
built from stateless TensorFlow draws; the elastic part is a smooth displacement field on the output canvas. Without
the elastic field the pixels move in one cv2.warpAffine; with it, in one cv2.remap whose map composes the field
and the affine, so every pixel is resampled once whatever is switched on.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np
import tensorflow as tf

from utils.bands import Bands
from utils.images import IGNORE_LABEL

# 8-bit RGB: hue, saturation, value, each multiplied by 1 + uniform(-j, j). Other images (grey, N bands, 16-bit,
# float): the value gain only, the same for every band, as brightness about each band's low end (jitter_bands).
HSV_JITTER = (0.1, 0.7, 0.3)


@dataclass(frozen=True)
class Augmentation:
    """The geometric options beyond the default scale / aspect / horizontal flip / placement (all off by default).

    The elastic deformation is the UNet paper's (Ronneberger et al. 2015): displacements drawn from N(0, alpha²) px
    at the points of a coarse grid elastic_sigma px apart, bicubically interpolated to every pixel. The paper's
    is a 3 x 3 grid with alpha 10 over a 572² tile: elastic_alpha 10, elastic_sigma about 286.
    """

    rotation: float = 0.0  # random rotation by uniform(-rotation, rotation) degrees about the canvas centre
    rotate_90: bool = False  # and by a random multiple of 90 degrees
    vertical_flip: bool = False  # flip upside down with probability 1/2
    shear: float = 0.0  # horizontal shear by uniform(-shear, shear) degrees
    elastic_alpha: float = 0.0  # elastic: displacement standard deviation in px at the grid points; 0 = off
    elastic_sigma: float = 128.0  # elastic: spacing of the coarse displacement grid in px (larger: smoother)

    @classmethod
    def of(cls, config) -> "Augmentation":
        """The Augmentation of train.py's config (fields of the same names)."""
        return cls(**{name: getattr(config, name) for name in cls.__dataclass_fields__})

    @property
    def affine(self) -> bool:
        return bool(self.rotation or self.rotate_90 or self.vertical_flip or self.shear)

    @property
    def elastic(self) -> bool:
        return self.elastic_alpha > 0

    def check(self) -> None:
        """Raises ValueError naming a setting that cannot work."""
        if not 0 <= self.rotation <= 180:
            raise ValueError(f"rotation={self.rotation}: expected degrees in 0-180 (0 = off).")
        if not 0 <= self.shear < 60:
            raise ValueError(f"shear={self.shear}: expected degrees in 0-60 (0 = off); 10-20 is typical.")
        if self.elastic_alpha < 0 or self.elastic_sigma < 2:
            raise ValueError(
                f"elastic_alpha={self.elastic_alpha}, elastic_sigma={self.elastic_sigma}: expected alpha >= 0 px "
                "(0 = off; the UNet paper's 10) and a grid spacing sigma >= 2 px."
            )


def canvas_transform(seed, augmentation: Augmentation, canvas_shape) -> tf.Tensor:
    """float32 (3, 3): the random rotation, shear and vertical flip, about the canvas centre, that follow the
    placement on the canvas (in OpenCV's pixel-centre coordinates, x right, y down).

    Args:
        seed: int [2], stateless; canvas_shape: (H, W).
    """
    height, width = canvas_shape
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    degrees = tf.random.stateless_uniform([], seeds[0], -augmentation.rotation, augmentation.rotation)
    if augmentation.rotate_90:
        degrees += 90.0 * tf.cast(tf.random.stateless_uniform([], seeds[1], 0, 4, tf.int32), tf.float32)
    angle = degrees * (math.pi / 180)
    shear = tf.tan(tf.random.stateless_uniform([], seeds[2], -augmentation.shear, augmentation.shear) * math.pi / 180)
    flip = 1.0
    if augmentation.vertical_flip:
        flip = tf.where(tf.random.stateless_uniform([], seeds[3]) < 0.5, -1.0, 1.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Linear part: rotation @ shear @ vertical flip, [[cos, cos*s*f - sin*f], [sin, sin*s*f + cos*f]].
    linear = tf.stack([tf.stack([cos, (cos * shear - sin) * flip]), tf.stack([sin, (sin * shear + cos) * flip])])
    centre = tf.constant([(width - 1) / 2, (height - 1) / 2], tf.float32)
    offset = centre - tf.linalg.matvec(linear, centre)  # the centre stays where it is
    return tf.concat([tf.concat([linear, offset[:, None]], 1), [[0.0, 0.0, 1.0]]], 0)


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


def warp_pair(image, label, matrix, canvas_shape, gains, elastic_seed=0, bands=Bands(), elastic=(0.0, 0.0)):
    """numpy side of dataloader.augment: image and label resampled once each onto the canvas (Bands.fill /
    IGNORE_LABEL outside; the label by nearest neighbour), then colour jitter (HSV for 8-bit RGB, else
    jitter_bands).

    Args:
        matrix: float32 (2, 3) input -> canvas; canvas_shape: (H, W); gains: float32 (3,) colour gains.
        elastic_seed: the sample's draw of the elastic field; elastic: (alpha, sigma), alpha 0 = off.
    """
    canvas_shape = (int(canvas_shape[0]), int(canvas_shape[1]))
    alpha, sigma = elastic
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
    if bands.eight_bit and bands.channels == 3:
        return jitter_hsv(image, gains), label
    return jitter_bands(image, gains[2], bands), label
