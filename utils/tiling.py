"""Overlap-tile prediction (Ronneberger et al. 2015) for a network whose output is smaller than its input:
the image is mirrored at its borders and cut into overlapping input tiles whose outputs cover it exactly."""

import tensorflow as tf


def reflect_indices(length, before, after):
    """Indices into an axis of `length` that mirror it by `before` / `after` positions, as often as needed
    (an image smaller than the margin is mirrored again, back and forth): ... 2 1 | 0 1 2 ... n-1 | n-2 ..."""
    period = tf.maximum(2 * (length - 1), 1)
    index = tf.math.floormod(tf.range(-before, length + after), period)
    return tf.where(index >= length, period - index, index)


def mirror_pad(image, top, bottom, left, right):
    """image (h, w, ...) mirrored at its borders to (top + h + bottom, left + w + right, ...); pads may exceed h, w."""
    shape = tf.shape(image)
    image = tf.gather(image, reflect_indices(shape[0], top, bottom), axis=0)
    return tf.gather(image, reflect_indices(shape[1], left, right), axis=1)


def tile_probabilities(model, image, batch_size: int):
    """The model's probabilities over a whole image, by overlap-tile.

    The output tiles (input side - 2 x margin) cover the image edge to edge; each input tile adds `margin`
    pixels of context around its output tile, mirrored beyond the image's borders.

    Args:
        model: images (B, S, S', 3) -> probabilities (B, S - 2m, S' - 2m, C), m its margin.
        image: uint8 (h, w, 3), any size.
        batch_size: tiles per model call.

    Returns:
        float32 (h, w, C).
    """
    tile_height, tile_width = model.input_shape[1:3]
    out_height, out_width = model.output_shape[1:3]
    margin_y, margin_x = (tile_height - out_height) // 2, (tile_width - out_width) // 2
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    rows, columns = -(-height // out_height), -(-width // out_width)  # ceil
    padded = mirror_pad(
        image,
        margin_y,
        rows * out_height - height + margin_y,
        margin_x,
        columns * out_width - width + margin_x,
    )  # (rows * out + 2m, columns * out' + 2m', 3)
    tiles = tf.image.extract_patches(
        padded[None],
        sizes=[1, tile_height, tile_width, 1],
        strides=[1, out_height, out_width, 1],
        rates=[1, 1, 1, 1],
        padding="VALID",
    )  # (1, rows, columns, S * S' * 3)
    tiles = tf.reshape(tiles, [rows * columns, tile_height, tile_width, 3])
    count = rows * columns
    outputs = tf.TensorArray(tf.float32, size=-(-count // batch_size), infer_shape=False)
    for i in tf.range(outputs.size()):
        outputs = outputs.write(i, model(tiles[i * batch_size : (i + 1) * batch_size], training=False))
    probabilities = outputs.concat()  # (rows * columns, out, out', C)
    classes = tf.shape(probabilities)[-1]
    grid = tf.reshape(probabilities, [rows, columns, out_height, out_width, classes])
    stitched = tf.reshape(tf.transpose(grid, [0, 2, 1, 3, 4]), [rows * out_height, columns * out_width, classes])
    return stitched[:height, :width]
