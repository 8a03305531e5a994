"""tf.data pipelines over a VOC-format dataset: images and class-index PNG labels (255 = ignore)."""

import functools

import cv2
import numpy as np
import tensorflow as tf

from utils.augment import HSV_JITTER, Augmentation, canvas_transform, warp_pair
from utils.bands import Bands, read_input
from utils.images import IGNORE_LABEL, load_label
from utils.letterbox import letterbox, place_on_canvas, resize_image, resize_label
from utils.weight_map import weighted_targets

# tf.data runs samples in parallel; OpenCV's own threads on top would oversubscribe the cores.
cv2.setNumThreads(1)

# Augmentation strengths of the VOC UNet platforms.
SCALE_RANGE = (0.25, 2.0)  # fit: size relative to the input, before the aspect jitter
# slide: size relative to the image at image_scale. The sliding window predicts at exactly that scale, so crops
# stay near it, as nnU-Net keeps most of its patches at scale 1 (narrower ranges scored better: README, Large images).
NATIVE_SCALE_RANGE = (0.9, 1.1)
# slide: the share of crops placed on a pixel of a class the label holds (each class present equally likely, so
# a rare class is aimed at as often as a common one); the others fall anywhere in the image.
CLASS_CROPS = 0.5
ASPECT_JITTER = 0.3


def decode_pair(image_path, label_path, bands: Bands):
    """tf.data map: file paths -> (image (H, W, C) of bands.input_dtype, label uint8 (H, W))."""

    def read(image_file, label_file):
        return read_input(image_file.decode(), bands), load_label(label_file.decode())

    dtype = tf.as_dtype(bands.input_dtype)
    image, label = tf.numpy_function(read, [image_path, label_path], [dtype, tf.uint8], stateful=False)
    return tf.ensure_shape(image, [None, None, bands.channels]), tf.ensure_shape(label, [None, None])


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
    `options` (utils/augment.py: rotation, vertical flip, shear, elastic deformation) when switched on.

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
    low, high = 1.0 - ASPECT_JITTER, 1.0 + ASPECT_JITTER
    jitters = tf.random.stateless_uniform([2], seeds[0], low, high)
    image_height, image_width = tf.unstack(tf.cast(tf.shape(image)[:2], tf.float32))
    aspect = image_width / image_height * jitters[0] / jitters[1]
    scale_range = [side * image_scale for side in NATIVE_SCALE_RANGE] if native else SCALE_RANGE
    scale = tf.random.stateless_uniform([], seeds[1], *scale_range)
    if native:  # the image's own size times scale, with the jittered aspect
        new_height = tf.floor(tf.maximum(scale * image_height / jitters[1], 1.0))
        new_width = tf.floor(tf.maximum(scale * image_width * jitters[0], 1.0))
    else:  # the longer side gets scale * the input's side; the other follows the jittered aspect
        new_height = tf.floor(tf.maximum(tf.where(aspect < 1, scale * height, scale * width / aspect), 1.0))
        new_width = tf.floor(tf.maximum(tf.where(aspect < 1, scale * height * aspect, scale * width), 1.0))
    # Offsets in [0, free space]; negative when the resized image is larger than the canvas (a crop).
    offsets = tf.random.stateless_uniform([2], seeds[3]) * ([height, width] - tf.stack([new_height, new_width]))
    scale_y, scale_x = new_height / image_height, new_width / image_width
    flip = tf.random.stateless_uniform([], seeds[2]) < 0.5
    if native:
        new_size = (new_height, new_width)
        offsets = aim_at_class(label, offsets, seeds[5], (height, width), (scale_y, scale_x), flip, new_size)
    top, left = tf.unstack(tf.floor(offsets))
    # Pixel centres map to pixel centres, x_out + 0.5 = scale_x * (x_in + 0.5) + left, mirrored when flipped.
    row_x = tf.where(
        flip,
        tf.stack([-scale_x, 0.0, left + new_width - 0.5 - 0.5 * scale_x]),
        tf.stack([scale_x, 0.0, left - 0.5 + 0.5 * scale_x]),
    )
    row_y = tf.stack([0.0, scale_y, top - 0.5 + 0.5 * scale_y])
    matrix = tf.stack([row_x, row_y])  # (2, 3) input -> canvas
    if options.affine:  # rotation, shear, vertical flip about the canvas centre, after the placement
        placed = tf.concat([matrix, [[0.0, 0.0, 1.0]]], 0)
        options_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        matrix = tf.matmul(canvas_transform(options_seed, options, (height, width)), placed)[:2]
    elastic_seed = tf.constant(0, tf.int64)
    if options.elastic:
        field_seed = tf.random.experimental.stateless_fold_in(seed, 2)
        elastic_seed = tf.random.stateless_uniform([], field_seed, 0, 2**31 - 1, tf.int64)
    gains = 1.0 + tf.random.stateless_uniform([3], seeds[4], -1.0, 1.0) * HSV_JITTER
    elastic = (options.elastic_alpha, options.elastic_sigma)
    image, label = tf.numpy_function(
        functools.partial(warp_pair, bands=bands, elastic=elastic),
        [image, label, matrix, [height, width], gains, elastic_seed],
        [image.dtype, tf.uint8],
        stateful=False,
    )
    return tf.ensure_shape(image, [height, width, bands.channels]), tf.ensure_shape(label, [height, width])


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


def letterbox_pair(image, label, input_shape, fill):
    """Validation transform: centred letterbox of image and label, the image filled with `fill` (Bands.fill), the
    label with IGNORE_LABEL."""
    canvas, box = letterbox(image, input_shape, fill)
    resized = resize_label(label, box[2:])[..., None]
    label = place_on_canvas(resized, box[0], box[1], *input_shape, IGNORE_LABEL)[..., 0]
    return canvas, label


def centre_pair(image, label, input_shape, image_scale: float, fill):
    """Validation transform of slide mode: the centre input_shape window of image and label at image_scale
    (padded with `fill` (Bands.fill) / IGNORE_LABEL where the image is smaller)."""
    if image_scale != 1:
        size = tf.maximum(tf.cast(tf.round(tf.cast(tf.shape(label), tf.float32) * image_scale), tf.int32), 1)
        image, label = resize_image(image, size), resize_label(label, size)
    height, width = input_shape
    top, left = (height - tf.shape(image)[0]) // 2, (width - tf.shape(image)[1]) // 2
    canvas = place_on_canvas(image, top, left, height, width, fill)
    return canvas, place_on_canvas(label[..., None], top, left, height, width, IGNORE_LABEL)[..., 0]


def crop_margin(image, label, margin: int):
    """The label's centre, `margin` pixels in from each side: the window a valid-padding model's output covers."""
    return image, label[margin : tf.shape(label)[0] - margin, margin : tf.shape(label)[1] - margin]


def sample_paths(samples):
    """tf.data Dataset of (image path, label path) of (image, label) samples."""
    images, labels = zip(*samples)
    return tf.data.Dataset.from_tensor_slices((list(images), list(labels)))


def parallelism(num_workers: int):
    """tf.data's parallel calls: num_workers threads, or AUTOTUNE for 0."""
    return num_workers if num_workers > 0 else tf.data.AUTOTUNE


def build_train_dataset(
    samples,
    input_shape,
    batch_size: int,
    seed: int,
    num_workers: int = 0,
    margin: int = 0,
    shard=(0, 1),
    skip=0,
    image_scale=None,
    bands: Bands = Bands(),
    options: tuple = (Augmentation(), None),
):
    """Endless shuffled, augmented batches: (images (B, H, W, C) of bands.input_dtype, labels uint8
    (B, H - 2m, W - 2m); with a weight map, targets float32 (B, H - 2m, W - 2m, 2): ids and border term).

    Every sample draws its augmentation from its own stateless seed taken from a stream seeded by `seed`, so the
    batches are the same from run to run whatever the number of workers. `skip` batches are passed over before
    anything is read (only their file names and seeds are drawn): a run resumed after k epochs of a phase skips
    k epochs' batches and goes on with exactly the batches an uninterrupted run would see.

    Args:
        margin: m, for a model whose output is smaller than its input (the classic UNet's 92): the labels
            are cropped to the output window.
        image_scale: None for scale mode fit; for slide, the scale images are cropped at (augment).
        shard: (index, count): this worker's share of the files, for multi-worker training; batch_size stays the
            global batch, which tf.distribute splits over all replicas.
        options: (Augmentation, WeightMap or None): the geometric options (utils/augment.py) and the UNet weight
            map (utils/weight_map.py), computed on each augmented label before the margin is cropped.
    """
    augmentation, weight_map = options
    index, count = shard
    pairs = sample_paths(samples).shard(count, index)
    pairs = pairs.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True).repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def prepare(paths, pair_seed):
        image, label = augment(*decode_pair(*paths, bands), input_shape, pair_seed, image_scale, bands, augmentation)
        if weight_map:
            label = weighted_targets(label, weight_map)  # (H, W, 2)
        return crop_margin(image, label, margin)

    drawn = tf.data.Dataset.zip(pairs, seeds).skip(skip * batch_size)  # before the map: nothing is decoded
    dataset = drawn.map(prepare, num_parallel_calls=parallelism(num_workers), deterministic=True)
    # The files are sharded above, before decoding: tf.distribute must not shard again (its FILE policy cannot
    # split an in-memory list of paths, and DATA would decode every file on every worker).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(options)


def build_val_dataset(
    samples,
    input_shape,
    batch_size: int,
    num_workers: int = 0,
    margin: int = 0,
    image_scale=None,
    bands=Bands(),
    weight_map=None,
):
    """Batches for the validation loss: (images (B, H, W, C), labels uint8 (B, H - 2m, W - 2m)), letterboxed;
    in slide mode (image_scale not None, see build_train_dataset) the centre window of the image at image_scale.
    With a weight map (utils/weight_map.py), the targets are as build_train_dataset's, so the loss means the same."""

    def prepare(image_path, label_path):
        image, label = decode_pair(image_path, label_path, bands)
        if image_scale is None:
            image, label = letterbox_pair(image, label, input_shape, bands.fill)
        else:
            image, label = centre_pair(image, label, input_shape, image_scale, bands.fill)
        if weight_map:
            label = weighted_targets(label, weight_map)
        return crop_margin(image, label, margin)

    dataset = sample_paths(samples).map(prepare, num_parallel_calls=parallelism(num_workers))
    # Multi-worker: every worker reads the (small) val split and takes its share of each batch, so all take the
    # same number of steps, as their collectives need.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)
