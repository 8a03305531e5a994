"""tf.data pipelines over a VOC-format dataset: images and class-index PNG labels (255 = ignore)."""

from dataclasses import dataclass

import cv2
import tensorflow as tf

from utils.augmentation.draws import augment
from utils.augmentation.options import Augmentation
from utils.files.bands import Bands, read_input
from utils.files.images import IGNORE_LABEL, load_label
from utils.letterbox import letterbox, place_on_canvas, resize_image, resize_label, scaled_shape
from utils.weight_map import WeightMap, weighted_targets

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
        size = scaled_shape(tf.shape(label), image_scale)
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


@dataclass(frozen=True)
class Pipeline:
    """How a run's batches are made from its samples: the network's input (H, W) and output margin m (a
    valid-padding model's, the classic UNet's 92: the labels are cropped to the output window), the scale slide's
    crops are cut at (None: fit, each image letterboxed), the images' bands, the reading threads (0: chosen by
    tf.data), the augmentation (utils/augmentation/) and the UNet weight map (utils/weight_map.py, computed on each
    augmented label before the margin is cropped; None: off) and the share of each batch oversampled."""

    input_shape: tuple
    margin: int = 0
    image_scale: float | None = None
    bands: Bands = Bands()
    num_workers: int = 0
    augmentation: Augmentation = Augmentation()
    weight_map: WeightMap | None = None
    oversample: float = 0.0  # the share of each batch drawn from the oversampled images (build_train_dataset)


@dataclass(frozen=True)
class Shard:
    """This worker's share of the training files in multi-worker training: worker `index` of `count`."""

    index: int = 0
    count: int = 1


def oversampled_count(share: float, batch_size: int) -> int:
    """How many of a batch's places the oversampled images fill: nnU-Net's rule, at least one for any share."""
    return 0 if share <= 0 else max(1, batch_size - round(batch_size * (1 - share)))


def shuffled_paths(samples, seed: int, shard: Shard):
    """This worker's shard of the samples' paths, reshuffled every pass, endless."""
    pairs = sample_paths(samples).shard(shard.count, shard.index)
    return pairs.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True).repeat()


def build_train_dataset(
    samples, pipeline: Pipeline, batch_size: int, seed: int, shard=Shard(), skip: int = 0, oversampled=()
):
    """Endless shuffled, augmented batches: (images (B, H, W, C) of bands.input_dtype, labels uint8
    (B, H - 2m, W - 2m); with a weight map, targets float32 (B, H - 2m, W - 2m, 2): ids and border term).

    With pipeline.oversample and `oversampled` samples (the images holding a rare class), the last
    oversampled_count places of every batch are drawn from those, in a shuffled stream of their own, as nnU-Net
    forces a third of each batch onto foreground; the other places from all the samples.

    Every sample draws its augmentation from its own stateless seed taken from a stream seeded by `seed`, so the
    batches are the same from run to run whatever the number of workers. `skip` batches are passed over before
    anything is read (only their file names and seeds are drawn): a run resumed after k epochs of a phase skips
    k epochs' batches and goes on with exactly the batches an uninterrupted run would see. batch_size is the global
    batch, which tf.distribute splits over all replicas; each worker reads its shard of the files.
    """
    bands, input_shape = pipeline.bands, pipeline.input_shape
    pairs = shuffled_paths(samples, seed, shard)
    forced = oversampled_count(pipeline.oversample, batch_size) if oversampled else 0
    if forced:
        # Every worker draws from all of them (a shard of a few could be empty), each in its own order.
        rare = shuffled_paths(oversampled, seed + 1 + shard.index, Shard())
        places = tf.data.Dataset.from_tensor_slices(tf.constant([0] * (batch_size - forced) + [1] * forced, tf.int64))
        pairs = tf.data.Dataset.choose_from_datasets([pairs, rare], places.repeat())
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def prepare(paths, pair_seed):
        image, label = decode_pair(*paths, bands)
        image, label = augment(image, label, input_shape, pair_seed, pipeline.image_scale, bands, pipeline.augmentation)
        if pipeline.weight_map:
            label = weighted_targets(label, pipeline.weight_map)  # (H, W, 2)
        return crop_margin(image, label, pipeline.margin)

    drawn = tf.data.Dataset.zip(pairs, seeds).skip(skip * batch_size)  # before the map: nothing is decoded
    dataset = drawn.map(prepare, num_parallel_calls=parallelism(pipeline.num_workers), deterministic=True)
    # The files are sharded above, before decoding: tf.distribute must not shard again (its FILE policy cannot
    # split an in-memory list of paths, and DATA would decode every file on every worker).
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(options)


def build_val_dataset(samples, pipeline: Pipeline, batch_size: int):
    """Batches for the validation loss: (images (B, H, W, C), labels uint8 (B, H - 2m, W - 2m)), letterboxed; in slide
    mode (pipeline.image_scale not None) the centre window of the image at image_scale. With a weight map, the targets
    are as build_train_dataset's, so the loss means the same. No augmentation."""
    bands, input_shape = pipeline.bands, pipeline.input_shape

    def prepare(image_path, label_path):
        image, label = decode_pair(image_path, label_path, bands)
        if pipeline.image_scale is None:
            image, label = letterbox_pair(image, label, input_shape, bands.fill)
        else:
            image, label = centre_pair(image, label, input_shape, pipeline.image_scale, bands.fill)
        if pipeline.weight_map:
            label = weighted_targets(label, pipeline.weight_map)
        return crop_margin(image, label, pipeline.margin)

    dataset = sample_paths(samples).map(prepare, num_parallel_calls=parallelism(pipeline.num_workers))
    # Multi-worker: every worker reads the (small) val split and takes its share of each batch, so all take the
    # same number of steps, as their collectives need.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)
