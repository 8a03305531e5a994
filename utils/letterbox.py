"""Letterboxing: fit an image into the network input without distortion, and undo it on predictions."""

import tensorflow as tf

from utils.files.bands import GREY


def place_on_canvas(x, top, left, height: int, width: int, fill):
    """Pastes x (h, w, c) onto a (height, width, c) canvas of `fill` (a number, or one per channel) with its corner
    at (top, left).

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
    if isinstance(fill, (tuple, list)) and len(set(fill)) > 1:  # a fill per channel: pad, then fill where padded
        inside = tf.pad(tf.ones_like(crop[..., :1], tf.bool), paddings, constant_values=False)
        canvas = tf.where(inside, tf.pad(crop, paddings), tf.constant(fill, x.dtype))
    else:
        canvas = tf.pad(
            crop, paddings, constant_values=tf.cast(fill[0] if isinstance(fill, (tuple, list)) else fill, x.dtype)
        )
    return tf.ensure_shape(canvas, [height, width, x.shape[-1]])


def scaled_shape(shape, image_scale: float):
    """int32 [h, w]: a (h, w) shape at image_scale, rounded half to even, at least 1 pixel each (the sliding window's
    size of an image: utils/scale.py's scaled_size)."""
    return tf.maximum(tf.cast(tf.round(tf.cast(shape, tf.float32) * image_scale), tf.int32), 1)


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


def bilinear_rows(x, size, start, stop):
    """Rows [start, stop) of tf.image.resize(x, size, "bilinear") (half-pixel centres), float32 (stop - start, w, C),
    computed from the input rows they need only: a large image is never converted to float32 whole, and a large
    output is made a band at a time.

    The same arithmetic as TensorFlow's kernel, in its order: each needed input row resized along x (a resize that
    keeps the rows is exact), then top + (bottom - top) * lerp along y.
    """
    height = tf.shape(x)[0]
    scale = tf.cast(height, tf.float32) / tf.cast(size[0], tf.float32)
    position = (tf.cast(tf.range(start, stop), tf.float32) + 0.5) * scale - 0.5  # in input rows
    below = tf.floor(position)
    lerp = (position - below)[:, None, None]
    top = tf.maximum(tf.cast(below, tf.int32), 0)
    bottom = tf.minimum(tf.cast(tf.math.ceil(position), tf.int32), height - 1)
    rows = tf.stack([stop - start, size[1]])
    top_rows = tf.image.resize(tf.gather(x, top), rows, method="bilinear")
    bottom_rows = tf.image.resize(tf.gather(x, bottom), rows, method="bilinear")
    return top_rows + (bottom_rows - top_rows) * lerp


def resize_image(image, size):
    """Bilinear resize of an image (h, w, C) to `size`: uint8 rounded back to uint8 (bilinear stays within the
    neighbours' values), float32 as it comes."""

    def resize():
        resized = bilinear_rows(image, size, 0, size[0])
        if image.dtype != tf.uint8:
            return resized
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    return tf.cond(has_size(image, size), lambda: image, resize)


def resize_label(label, size):
    """Nearest-neighbour resize of a uint8 label (h, w) to `size`: class ids stay class ids."""
    return tf.image.resize(label[..., None], size, method="nearest")[..., 0]


def letterbox(image, input_shape, fill=GREY):
    """Centred letterbox of an image (h, w, C) into input_shape (H, W), filled with `fill` (Bands.fill).

    Returns:
        (canvas (H, W, C) of the image's type, box int32 [top, left, resized_height, resized_width]).
    """
    height, width = input_shape
    box = letterbox_box(tf.shape(image)[0], tf.shape(image)[1], height, width)
    resized = resize_image(image, box[2:])
    return place_on_canvas(resized, box[0], box[1], height, width, fill), box


def fit_input(image, letterbox_to, fill=GREY):
    """(canvas, box): the image letterboxed into letterbox_to (H, W); with None (a tiling model) the image
    itself and its full box."""
    if letterbox_to is None:
        return image, tf.concat([[0, 0], tf.shape(image)[:2]], 0)
    return letterbox(image, letterbox_to, fill)


ROWS_PER_BAND = 128  # rows of probabilities restored at a time: 128 x 10,000 x 21 float32 is 108 MB


def unletterbox_class_ids(probabilities, box, size):
    """Crops the letterbox box out of probabilities (H, W, C), resizes them to size (h, w), bilinear, and takes the
    argmax: uint8 (h, w) class ids. ROWS_PER_BAND rows at a time, so that a large image's probabilities at its
    own size (8.4 GB for 10,000 x 10,000 and 21 classes) never exist whole."""
    top, left, resized_height, resized_width = tf.unstack(box)
    crop = probabilities[top : top + resized_height, left : left + resized_width]

    def banded():
        bands = tf.TensorArray(tf.uint8, size=(size[0] + ROWS_PER_BAND - 1) // ROWS_PER_BAND, infer_shape=False)
        for index in tf.range(bands.size()):
            start = index * ROWS_PER_BAND
            rows = bilinear_rows(crop, size, start, tf.minimum(start + ROWS_PER_BAND, size[0]))
            bands = bands.write(index, tf.cast(tf.argmax(rows, axis=-1), tf.uint8))
        return bands.concat()

    return tf.cond(has_size(crop, size), lambda: tf.cast(tf.argmax(crop, axis=-1), tf.uint8), banded)
