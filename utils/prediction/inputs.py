"""The batches the prediction path reads: a split's images and labels for evaluation (training's val mIoU,
get_miou.py), and image files for prediction (Unet.segment_files), each letterboxed for fit or as they are for
slide."""

import functools
import os

import tensorflow as tf

from utils.dataloader import decode_pair, parallelism, sample_paths
from utils.files.bands import Bands, read_input_or_error
from utils.files.images import IGNORE_LABEL
from utils.letterbox import fit_input


def _inference_batches(dataset, prepare, batch_size: int, num_workers: int, padding_values=None):
    """dataset.map(prepare).padded_batch(batch_size), read ahead of the model or in turn with it.

    Reading ahead on other threads pays with an accelerator. On a CPU (with num_workers 0 = auto) the model's
    threads already hold every core, and reader threads beside them stall its synchronised kernels, so the
    reading happens in turn. tf.data parallelises a stateless map and injects a prefetch by itself, hence the
    options.
    """
    if num_workers > 0 or tf.config.list_physical_devices("GPU"):
        dataset = dataset.map(prepare, num_parallel_calls=parallelism(num_workers))
        return dataset.padded_batch(batch_size, padding_values=padding_values).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = False
    options.experimental_optimization.inject_prefetch = False
    return dataset.map(prepare).padded_batch(batch_size, padding_values=padding_values).with_options(options)


def build_eval_dataset(samples, letterbox_to, batch_size: int, num_workers: int = 0, bands: Bands = Bands()):
    """Batches for evaluation at original resolution.

    Yields (images (B, H, W, C) letterboxed (the originals padded with 0 when letterbox_to is None),
    labels uint8 (B, h_max, w_max) at original size padded with IGNORE_LABEL, boxes int32 (B, 4) as from
    letterbox, sizes int32 (B, 2) original (h, w)).
    """

    def prepare(image_path, label_path):
        image, label = decode_pair(image_path, label_path, bands)
        canvas, box = fit_input(image, letterbox_to, bands.fill)
        return canvas, label, box, tf.shape(label)

    padding = (tf.constant(0, bands.input_dtype), tf.constant(IGNORE_LABEL, tf.uint8), 0, 0)
    return _inference_batches(sample_paths(samples), prepare, batch_size, num_workers, padding)


@functools.lru_cache
def _predict_preparer(letterbox_to, bands: Bands):
    """build_predict_dataset's map function, traced once per input shape rather than on every call."""
    dtype = tf.as_dtype(bands.input_dtype)

    def read(path):
        image, error = read_input_or_error(os.fsdecode(path), bands)  # any file name, UTF-8 or not
        return image, error.encode("utf-8", "backslashreplace")

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def prepare(path):
        image, error = tf.numpy_function(read, [path], [dtype, tf.string], stateful=False)
        image = tf.ensure_shape(image, [None, None, bands.channels])
        canvas, box = fit_input(image, letterbox_to, bands.fill)
        if letterbox_to is None:  # the canvas would be the image again: a second copy of a large image
            canvas = tf.zeros([0, 0, bands.channels], dtype)
        return canvas, box, tf.shape(image)[:2], image, tf.ensure_shape(error, [])

    return prepare


def build_predict_dataset(paths, letterbox_to, batch_size: int, num_workers: int = 0, bands: Bands = Bands()):
    """Batches of image files for prediction; unreadable files (or files that do not fit `bands`) are reported,
    not fatal.

    Yields (canvases (B, H, W, C) letterboxed into letterbox_to (with None: empty, (B, 0, 0, C): use `images`),
    boxes int32 (B, 4), sizes int32 (B, 2) original (h, w),
    images (B, h_max, w_max, C) the originals padded with 0, errors string (B,): "" or why unusable).
    """
    # As bytes: a file name that is not UTF-8 (os.listdir gives it with surrogates) cannot become a tf.string.
    paths = tf.data.Dataset.from_tensor_slices([os.fsencode(path) for path in paths])
    letterbox_to = None if letterbox_to is None else tuple(letterbox_to)
    return _inference_batches(paths, _predict_preparer(letterbox_to, bands), batch_size, num_workers)
