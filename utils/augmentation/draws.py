"""The random side of training augmentation: what each sample's augmentation is, drawn from its own stateless
seed. Geometry is one map per sample: the affine part (scale, aspect, flip, placement, then train.py's rotation,
shear and vertical flip) is a 2x3 matrix, the elastic part a smooth displacement field on the output canvas; in
slide mode half of the crops are aimed at a class the label holds. The pixels move once, in
utils/augmentation/pixels.py.
"""

import functools
import math

import numpy as np
import tensorflow as tf

from utils.augmentation.options import Augmentation
from utils.augmentation.pixels import HSV_JITTER, warp_pair
from utils.files.bands import Bands
from utils.files.images import IGNORE_LABEL
from utils.letterbox import letterbox_box, scaled_shape

# Augmentation strengths of the VOC UNet platforms.
SCALE_RANGE = (0.25, 2.0)  # fit: size relative to the input, before the aspect jitter
# slide: size relative to the image at image_scale. The sliding window predicts at exactly that scale, so crops
# stay near it, as nnU-Net keeps most of its patches at scale 1 (narrower ranges scored better: README, Large images).
NATIVE_SCALE_RANGE = (0.9, 1.1)
# slide: the share of crops placed on a pixel of a class the label holds (each class present equally likely, so
# a rare class is aimed at as often as a common one); the others fall anywhere in the image.
CLASS_CROPS = 0.5
ASPECT_JITTER = 0.3


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


def class_pixel(label: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """numpy side of augment: int32 [y, x] of a pixel of a class the label holds (the class drawn uniformly among
    those present, the pixel uniformly among the class's), or [-1, -1] for a crop placed anywhere.

    Args:
        draws: float32 (3,) uniform in [0, 1): whether to aim (below CLASS_CROPS), the class, the pixel.
    """
    if draws[0] >= CLASS_CROPS:
        return np.array([-1, -1], np.int32)
    counts = np.bincount(label.ravel(), minlength=256)
    counts[IGNORE_LABEL] = 0
    classes = np.flatnonzero(counts)
    if not len(classes):
        return np.array([-1, -1], np.int32)
    chosen = classes[min(int(draws[1] * len(classes)), len(classes) - 1)]
    index = min(int(draws[2] * counts[chosen]), counts[chosen] - 1)
    return np.array(np.unravel_index(np.flatnonzero(label.ravel() == chosen)[index], label.shape), np.int32)


def augment(image, label, input_shape, seed, image_scale=None, bands: Bands = Bands(), options=Augmentation()):
    """Random rescale with aspect jitter, flip, placement at a random offset, HSV jitter, and the geometric
    `options` (Augmentation: rotation, vertical flip, shear, elastic deformation) when switched on.

    fit (image_scale None): the scale is relative to the input (the longer side gets SCALE_RANGE x the input's),
    as letterboxed prediction sees images. slide: relative to the image at image_scale (NATIVE_SCALE_RANGE x
    image_scale), as the sliding window sees it, so a larger image gives a crop; CLASS_CROPS of the crops are
    placed so that a pixel of a class the label holds falls at a random place in them (class_pixel).

    The random draws are stateless TensorFlow ops; the pixels move in one OpenCV resampling per array (resize,
    flip, rotation, shear, elastic field, crop and pad at once, so an image scaled x2 is never materialised at full
    size). The options draw from seeds of their own, so switching them off gives exactly the batches of before.

    Args:
        image: (h, w, C) of bands.input_dtype; label: uint8 (h, w); input_shape: (H, W); seed: int [2], stateless.

    Returns:
        image (H, W, C), label uint8 (H, W) with IGNORE_LABEL where the canvas was filled.
    """
    height, width = input_shape
    native = image_scale is not None
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 6 if native else 5))
    image_height, image_width = tf.unstack(tf.cast(tf.shape(image)[:2], tf.float32))
    new_height, new_width = drawn_size((image_height, image_width), input_shape, seeds, image_scale)
    # A share `jitter` of the samples (drawn from a seed of its own) is jittered in scale, aspect and colour; the
    # others keep the size prediction sees them at (fit: centred, as letterboxed) and their colours.
    jittered = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seed, 3)) < options.jitter
    if options.jitter < 1:
        plain_height, plain_width = unjittered_size((image_height, image_width), input_shape, image_scale)
        new_height = tf.where(jittered, new_height, plain_height)
        new_width = tf.where(jittered, new_width, plain_width)
    # Offsets in [0, free space]; negative when the resized image is larger than the canvas (a crop).
    free = [height, width] - tf.stack([new_height, new_width])
    offsets = tf.random.stateless_uniform([2], seeds[3]) * free
    if options.jitter < 1 and not native:
        offsets = tf.where(jittered, offsets, tf.floor(free / 2))
    scales = (new_height / image_height, new_width / image_width)
    flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
    if native:
        offsets = aim_at_class(label, offsets, seeds[5], (height, width), scales, flip, (new_height, new_width))
    gains = 1.0 + tf.random.stateless_uniform([3], seeds[4], -1.0, 1.0) * HSV_JITTER
    gains = tf.where(jittered, gains, tf.ones_like(gains))
    matrix = placement(scales, tf.floor(offsets), flip, new_width)
    matrix, elastic_seed, photometric_seed = option_draws(seed, options, matrix, input_shape)
    warp = functools.partial(warp_pair, bands=bands, options=options)
    image, label = tf.numpy_function(
        warp,
        [image, label, matrix, [height, width], gains, elastic_seed, photometric_seed],
        [image.dtype, tf.uint8],
        stateful=False,
    )
    return tf.ensure_shape(image, [height, width, bands.channels]), tf.ensure_shape(label, [height, width])


def unjittered_size(image_size, input_shape, image_scale):
    """(height, width), floats: the image's size as prediction sees it: fit, letterboxed (the longer side the
    input's); slide, at image_scale, as the sliding window scales it."""
    (image_height, image_width), (height, width) = image_size, input_shape
    if image_scale is None:
        box = tf.cast(letterbox_box(image_height, image_width, height, width), tf.float32)
        return box[2], box[3]
    size = tf.cast(scaled_shape(tf.stack([image_height, image_width]), image_scale), tf.float32)
    return size[0], size[1]


def drawn_size(image_size, input_shape, seeds, image_scale):
    """(new height, new width), floats: the image's size after the random rescale with aspect jitter (seeds 0 and 1).
    fit (image_scale None): the longer side gets scale x the input's side; slide: the image's own size x scale."""
    (image_height, image_width), (height, width) = image_size, input_shape
    low, high = 1.0 - ASPECT_JITTER, 1.0 + ASPECT_JITTER
    jitters = tf.random.stateless_uniform([2], seeds[0], low, high)
    aspect = image_width / image_height * jitters[0] / jitters[1]
    native = image_scale is not None
    scale_range = [side * image_scale for side in NATIVE_SCALE_RANGE] if native else SCALE_RANGE
    scale = tf.random.stateless_uniform([], seeds[1], *scale_range)
    if native:  # the image's own size times scale, with the jittered aspect
        new_height = tf.floor(tf.maximum(scale * image_height / jitters[1], 1.0))
        new_width = tf.floor(tf.maximum(scale * image_width * jitters[0], 1.0))
    else:  # the longer side gets scale * the input's side; the other follows the jittered aspect
        new_height = tf.floor(tf.maximum(tf.where(aspect < 1, scale * height, scale * width / aspect), 1.0))
        new_width = tf.floor(tf.maximum(tf.where(aspect < 1, scale * height * aspect, scale * width), 1.0))
    return new_height, new_width


def placement(scales, offsets, flip, new_width) -> tf.Tensor:
    """float32 (2, 3): the input -> canvas matrix of the rescale by scales (y, x), the horizontal flip and the
    placement at offsets (top, left)."""
    (scale_y, scale_x), (top, left) = scales, tf.unstack(offsets)
    # Pixel centres map to pixel centres, x_out + 0.5 = scale_x * (x_in + 0.5) + left, mirrored when flipped.
    row_x = tf.where(
        flip,
        tf.stack([-scale_x, 0.0, left + new_width - 0.5 - 0.5 * scale_x]),
        tf.stack([scale_x, 0.0, left - 0.5 + 0.5 * scale_x]),
    )
    row_y = tf.stack([0.0, scale_y, top - 0.5 + 0.5 * scale_y])
    return tf.stack([row_x, row_y])


def option_draws(seed, options: Augmentation, matrix, canvas_shape):
    """(matrix, elastic seed, photometric seed): the placement matrix followed by the options' rotation, shear and
    vertical flip about the canvas centre, and the sample's draws of the elastic field and the photometric transforms
    (0 when off). The options draw from seeds of their own, so switching them off gives exactly the batches of
    before."""
    if options.affine:
        placed = tf.concat([matrix, [[0.0, 0.0, 1.0]]], 0)
        options_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        matrix = tf.matmul(canvas_transform(options_seed, options, canvas_shape), placed)[:2]
    return matrix, numpy_seed(seed, 2, options.elastic), numpy_seed(seed, 4, options.photometric.active)


def numpy_seed(seed, index: int, drawn: bool):
    """int64: a seed of numpy's generator for the sample's draw `index` (0 when not `drawn`)."""
    if not drawn:
        return tf.constant(0, tf.int64)
    return tf.random.stateless_uniform(
        [], tf.random.experimental.stateless_fold_in(seed, index), 0, 2**31 - 1, tf.int64
    )


def aim_at_class(label, offsets, seed, input_shape, scales, flip, new_size):
    """slide: offsets (top, left) that put a pixel of a class the label holds (class_pixel) at a random place of
    the crop, moved as little as needed to keep the crop inside the image where the image is larger than it;
    or the given offsets when the draw does not aim (or the label holds no class)."""
    draws = tf.random.stateless_uniform([5], seed)
    pixel = tf.numpy_function(class_pixel, [label, draws[:3]], tf.int32, stateful=False)
    y, x = tf.unstack(tf.cast(tf.ensure_shape(pixel, [2]), tf.float32))
    (scale_y, scale_x), (height, width) = scales, input_shape
    at_y, at_x = draws[3] * height, draws[4] * width  # where the pixel lands in the crop
    # Inverting the warp's mapping (augment) for the pixel's centre: y_out + 0.5 = scale_y * (y + 0.5) + top.
    top = at_y + 0.5 - scale_y * (y + 0.5)
    new_height, new_width = new_size
    left = tf.where(flip, at_x + 0.5 - new_width + scale_x * (x + 0.5), at_x + 0.5 - scale_x * (x + 0.5))
    free = tf.stack([height - new_height, width - new_width])  # the random offsets' range: [free, 0] or [0, free]
    aimed = tf.clip_by_value(tf.stack([top, left]), tf.minimum(free, 0.0), tf.maximum(free, 0.0))
    return tf.where(y >= 0, aimed, offsets)
