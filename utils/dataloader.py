"""tf.data pipelines over a VOC-format dataset: images and class-index PNG labels (255 = ignore)."""

import cv2
import tensorflow as tf

from utils.augmentation.draws import Augmentation, augment
from utils.files.bands import Bands, read_input
from utils.files.images import IGNORE_LABEL, load_label
from utils.letterbox import letterbox, place_on_canvas, resize_image, resize_label
from utils.weight_map import weighted_targets

# tf.data runs samples in parallel; OpenCV's own threads on top would oversubscribe the cores.
cv2.setNumThreads(1)


def decode_pair(image_path, label_path, bands: Bands):
    """tf.data map: file paths -> (image (H, W, C) of bands.input_dtype, label uint8 (H, W))."""

    def read(image_file, label_file):
        return read_input(image_file.decode(), bands), load_label(label_file.decode())

    dtype = tf.as_dtype(bands.input_dtype)
    image, label = tf.numpy_function(read, [image_path, label_path], [dtype, tf.uint8], stateful=False)
    return tf.ensure_shape(image, [None, None, bands.channels]), tf.ensure_shape(label, [None, None])


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
        options: (Augmentation, WeightMap or None): the geometric options (utils/augmentation/) and the UNet weight
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
    """Batches for the validation loss: (images (B, H, W, C), labels uint8 (B, H - 2m, W - 2m)), letterboxed; in slide
    mode (image_scale not None, see build_train_dataset) the centre window of the image at image_scale. With a weight
    map (utils/weight_map.py), the targets are as build_train_dataset's, so the loss means the same."""

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
