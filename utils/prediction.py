"""The prediction path: compiled calls from images to class-id masks at the images' own size, which the Unet
predictor (every predict.py mode, get_miou.py) and training's val mIoU all run."""

import tensorflow as tf

from nets.models import letterbox_size, output_margin
from utils.letterbox import fit_input, unletterbox
from utils.tiling import tile_probabilities


def predict_function(model):
    """A compiled inference call: images uint8 (B, H, W, 3) -> probabilities float32 (B, H, W, C)."""
    return tf.function(lambda images: model(images, training=False), reduce_retracing=True)


@tf.function(
    input_signature=[
        tf.TensorSpec([None, None, None], tf.float32),
        tf.TensorSpec([4], tf.int32),
        tf.TensorSpec([2], tf.int32),
    ]
)
def restore_mask(probabilities, box, size):
    """Crops the letterbox out of probabilities (H, W, C), resizes them to size (h, w) and takes the argmax.

    Returns:
        uint8 (h, w) class ids.
    """
    return tf.cast(tf.argmax(unletterbox(probabilities, box, size), axis=-1), tf.uint8)


@tf.function(jit_compile=True)
def class_ids(probabilities):
    """uint8 argmax over the last axis of probabilities (..., C). Compiled with XLA, once per shape: several times
    faster than TensorFlow's own argmax kernel on a CPU (benchmarks/argmax.py), where that kernel took about a
    tenth of a bf16 forward at 256², batch 4."""
    return tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8)


def segment_function(model, tile_batch: int = 4):
    """The compiled prediction path for a batch, one call: model, then restore_mask for each image.

    A model whose output is smaller than its input (the classic UNet) instead predicts each image by
    overlap-tile at its own resolution (utils/tiling.py); its canvases are the images themselves, unresized,
    `tile_batch` tiles per model call.

    Args (of the returned function):
        canvases: uint8 (B, H, W, 3) letterboxed images (padded originals for a tiling model);
        boxes: int32 (B, 4) their letterbox boxes; sizes: int32 (B, 2) the original (h, w).

    Returns:
        uint8 (B, h_max, w_max) class ids: each image's mask at its own size in the top-left corner, 0 around it.
        Only the masks leave the call, not the (B, H, W, C) probabilities, and no call is made per image.
    """
    tiled = output_margin(model) > 0

    @tf.function(reduce_retracing=True)
    def segment(canvases, boxes, sizes):
        padded = tf.reduce_max(sizes, axis=0)

        def restore_padded(args):
            x, box, size = args  # x: the image's probabilities (H, W, C), or its canvas (H, W, 3) when tiled
            probabilities = tile_probabilities(model, x[: size[0], : size[1]], tile_batch) if tiled else x
            mask = restore_mask(probabilities, box, size)  # (h, w)
            return tf.pad(mask, [[0, padded[0] - size[0]], [0, padded[1] - size[1]]])

        def restore_each(inputs):
            signature = tf.TensorSpec([None, None], tf.uint8)
            return tf.map_fn(restore_padded, (inputs, boxes, sizes), fn_output_signature=signature)

        if tiled:
            return restore_each(canvases)
        probabilities = model(canvases, training=False)  # (B, H, W, C)
        # Images that fill the canvas (no letterbox, no resize: a dataset at the model's input size) need only
        # the argmax, taken for the whole batch at once: its shape is the batch's, so it compiles once.
        canvas = tf.shape(canvases)[1:3]
        full = tf.concat([tf.zeros([2], tf.int32), canvas], 0)
        fills = tf.reduce_all(boxes == full) & tf.reduce_all(sizes == canvas)
        return tf.cond(fills, lambda: class_ids(probabilities), lambda: restore_each(probabilities))

    return segment


def segment_image_function(model, tile_batch: int = 4):
    """The compiled prediction path for one image: uint8 (h, w, 3) -> class ids uint8 (h, w). Letterbox, model,
    restore_mask; or overlap-tile for a model whose output is smaller than its input."""
    letterbox_to = letterbox_size(model)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
    def segment_image(image):
        canvas, box = fit_input(image, letterbox_to)
        if letterbox_to is None:
            probabilities = tile_probabilities(model, canvas, tile_batch)  # (h, w, num_classes)
        else:
            probabilities = model(canvas[None], training=False)[0]  # (H, W, num_classes)
        return restore_mask(probabilities, box, tf.shape(image)[:2])

    return segment_image
