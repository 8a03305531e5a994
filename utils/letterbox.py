"""Letterboxing: fit an image into the network input without distortion, and undo it on predictions."""

import tensorflow as tf

GREY = 128  # fill for image pixels outside the resized image


def place_on_canvas(x, top, left, height: int, width: int, fill):
    """Pastes x (h, w, c) onto a (height, width, c) canvas of `fill` with its corner at (top, left).

    Offsets may be negative and x may be larger than the canvas: what falls outside is cropped.
    """
    x_height, x_width = tf.shape(x)[0], tf.shape(x)[1]
    y0, x0 = tf.maximum(-top, 0), tf.maximum(-left, 0)
    y1, x1 = tf.minimum(x_height, height - top), tf.minimum(x_width, width - left)
    crop = x[y0:y1, x0:x1]
    pad_top, pad_left = tf.maximum(top, 0), tf.maximum(left, 0)
    paddings = [
        [pad_top, height - pad_top - (y1 - y0)],
        [pad_left, width - pad_left - (x1 - x0)],
        [0, 0],
    ]
    canvas = tf.pad(crop, paddings, constant_values=tf.cast(fill, x.dtype))
    return tf.ensure_shape(canvas, [height, width, x.shape[-1]])


def letterbox_box(image_height, image_width, height: int, width: int):
    """Where a centred letterbox puts the image: int32 [top, left, resized_height, resized_width]."""
    image_height = tf.cast(image_height, tf.float64)
    image_width = tf.cast(image_width, tf.float64)
    scale = tf.minimum(width / image_width, height / image_height)
    resized_height = tf.maximum(tf.cast(image_height * scale, tf.int32), 1)
    resized_width = tf.maximum(tf.cast(image_width * scale, tf.int32), 1)
    return tf.stack([(height - resized_height) // 2, (width - resized_width) // 2, resized_height, resized_width])


def has_size(x, size):
    """Whether x (h, w, ...) already is `size`: a bilinear resize would be the identity, so it is skipped."""
    return tf.reduce_all(tf.equal(tf.shape(x)[:2], size))


def resize_image(image, size):
    """Bilinear resize of a uint8 image (h, w, 3) to `size`, back to uint8."""

    def resize():
        return tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, size, method="bilinear")), 0, 255), tf.uint8)

    return tf.cond(has_size(image, size), lambda: image, resize)


def resize_label(label, size):
    """Nearest-neighbour resize of a uint8 label (h, w) to `size`: class ids stay class ids."""
    return tf.image.resize(label[..., None], size, method="nearest")[..., 0]


def letterbox(image, input_shape):
    """Centred letterbox of a uint8 image (h, w, 3) into input_shape (H, W).

    Returns:
        (canvas uint8 (H, W, 3), box int32 [top, left, resized_height, resized_width]).
    """
    height, width = input_shape
    box = letterbox_box(tf.shape(image)[0], tf.shape(image)[1], height, width)
    resized = resize_image(image, box[2:])
    return place_on_canvas(resized, box[0], box[1], height, width, GREY), box


def fit_input(image, letterbox_to):
    """(canvas, box): the image letterboxed into letterbox_to (H, W); with None (a tiling model) the image
    itself and its full box."""
    if letterbox_to is None:
        return image, tf.concat([[0, 0], tf.shape(image)[:2]], 0)
    return letterbox(image, letterbox_to)


def unletterbox(probabilities, box, size):
    """Crops the letterbox box out of probabilities (H, W, C) and resizes them to size (h, w), bilinear."""
    top, left, resized_height, resized_width = tf.unstack(box)
    crop = probabilities[top : top + resized_height, left : left + resized_width]
    return tf.cond(has_size(crop, size), lambda: crop, lambda: tf.image.resize(crop, size, method="bilinear"))
