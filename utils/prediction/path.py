"""The prediction path: from images to class-id masks (and probabilities) at the images' own size, which the Unet
predictor (every predict.py mode, get_miou.py) and training's val mIoU all run. The scale mode (utils/scale.py) is
decided once, by prediction_path; each path is then asked for the same things:

    masks(canvases, boxes, sizes)   a batch's class ids (what build_eval_dataset / build_predict_dataset read)
    image_mask(image)               one image's class ids
    probabilities(image)            one image's probabilities, a band of rows at a time (probabilities_refused:
                                    why not, where a path cannot)
    letterbox                       the (H, W) the reading letterboxes into, or None: images as they are
    batch_input(canvases, images)   which of a read batch the masks take; reads_per_batch(n): images per read

fit    compiled calls: letterbox into the input, the model on a batch, the letterbox cropped out, the
       probabilities resized to each image's size, argmax.
slide  each image at image_scale, window by window (the model on batches of windows), blended, argmax; the
       class ids resized back to the image's size when image_scale is not 1.
"""

import cv2
import numpy as np
import tensorflow as tf

from nets.models import output_margin
from utils.files.bands import Bands
from utils.letterbox import bilinear_rows, fit_input, unletterbox_class_ids
from utils.prediction.scores import ClassScores, class_scores, predict_function
from utils.prediction.sliding import blended_rows, slide_class_ids
from utils.scale import Scale, scaled_size

# slide: pixels of windows per model call, 4 windows of 256 x 256. The activations of a call are most of slide's
# memory (a 512 x 512 VGG16-UNet window takes about 0.4 GB in bf16 on a CPU), so larger windows go fewer a call.
WINDOW_PIXELS = 4 * 256 * 256
PROBABILITY_ROWS = 128  # fit: rows of probabilities made at a time at the image's size (as ROWS_PER_BAND)


def windows_per_call(input_size) -> int:
    """slide: windows of input_size (S, S') per network call, WINDOW_PIXELS' worth, 1 to 16."""
    return max(1, min(16, WINDOW_PIXELS // (input_size[0] * input_size[1])))


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
    return unletterbox_class_ids(probabilities, box, size)


@tf.function(jit_compile=True)
def class_ids(probabilities):
    """uint8 argmax over the last axis of probabilities (..., C). Compiled with XLA, once per shape: faster than
    TensorFlow's own argmax kernel on a CPU (benchmarks/argmax.py; docs/performance.md)."""
    return tf.cast(tf.argmax(probabilities, axis=-1), tf.uint8)


def prediction_path(model, scale: Scale = Scale(), bands: Bands = Bands()):
    """The prediction path of `scale` for the model (a ClassScores, or a Keras model taken at threshold 0.5) and
    images of `bands`: the one place where fit or slide is decided."""
    scores = class_scores(model)
    return SlidePath(scores, scale) if scale.slide else FitPath(scores, bands)


class FitPath:
    """fit: one compiled call per batch or image; only the masks leave it, not the (B, H, W, C) probabilities."""

    def __init__(self, scores: ClassScores, bands: Bands):
        self.scores, self.bands = scores, bands
        self.letterbox = tuple(scores.input_shape[1:3])
        self.masks = self.batch_function()
        self.image_mask = self.image_function()
        self.cropped = self.cropped_function()
        self.rows = tf.function(bilinear_rows, reduce_retracing=True)

    def reads_per_batch(self, batch_size: int) -> int:
        return batch_size

    def probabilities_refused(self) -> str:
        return ""

    def batch_input(self, canvases, images):
        return canvases

    def batch_function(self):
        """canvases (B, H, W, bands) letterboxed, boxes int32 (B, 4), sizes int32 (B, 2) the original (h, w) ->
        uint8 (B, h_max, w_max): each image's mask at its own size in the top-left corner, 0 around it."""
        scores = self.scores

        @tf.function(reduce_retracing=True)
        def masks(canvases, boxes, sizes):
            padded = tf.reduce_max(sizes, axis=0)

            def restore_padded(args):
                probabilities, box, size = args  # (H, W, C), (4,), (2,)
                mask = restore_mask(probabilities, box, size)  # (h, w)
                return tf.pad(mask, [[0, padded[0] - size[0]], [0, padded[1] - size[1]]])

            probabilities = scores(canvases)  # (B, H, W, C) class scores
            # Images that fill the canvas (no letterbox, no resize: a dataset at the model's input size) need only
            # the argmax, taken for the whole batch at once: its shape is the batch's, so it compiles once.
            canvas = tf.shape(canvases)[1:3]
            full = tf.concat([tf.zeros([2], tf.int32), canvas], 0)
            fills = tf.reduce_all(boxes == full) & tf.reduce_all(sizes == canvas)
            signature = tf.TensorSpec([None, None], tf.uint8)
            return tf.cond(
                fills,
                lambda: class_ids(probabilities),
                lambda: tf.map_fn(restore_padded, (probabilities, boxes, sizes), fn_output_signature=signature),
            )

        return masks

    def image_function(self):
        """image (h, w, bands.channels) of bands.input_dtype -> class ids uint8 (h, w), a tensor."""
        scores, letterbox, bands = self.scores, self.letterbox, self.bands

        @tf.function(input_signature=[tf.TensorSpec([None, None, bands.channels], bands.input_dtype)])
        def image_mask(image):
            canvas, box = fit_input(image, letterbox, bands.fill)
            probabilities = scores(canvas[None])[0]  # (H, W, C) class scores
            return restore_mask(probabilities, box, tf.shape(image)[:2])

        return image_mask

    def cropped_function(self):
        """image -> its probabilities at the input's scale, the letterbox cropped out."""
        scores, letterbox, bands = self.scores, self.letterbox, self.bands

        @tf.function(input_signature=[tf.TensorSpec([None, None, bands.channels], bands.input_dtype)])
        def cropped(image):
            canvas, box = fit_input(image, letterbox, bands.fill)
            probabilities = scores.probabilities(canvas[None])[0]  # (H, W, C)
            return probabilities[box[0] : box[0] + box[2], box[1] : box[1] + box[3]]

        return cropped

    def probabilities(self, image):
        """Yields (top, float32 (rows, w, C)) for rows [top, top + rows) of the image, in order, PROBABILITY_ROWS at
        a time (a large image's (h, w, C) probabilities never exist whole in memory), summing to 1 over C: the
        masks' crop and bilinear resize, before the argmax."""
        crop, size = self.cropped(image), tf.shape(image)[:2]
        for top in range(0, int(size[0]), PROBABILITY_ROWS):
            stop = min(top + PROBABILITY_ROWS, int(size[0]))
            yield top, self.rows(crop, size, tf.constant(top), tf.constant(stop)).numpy()


class SlidePath:
    """slide: each image window by window at image_scale, window_batch windows a call (0: WINDOW_PIXELS' worth,
    1 to 16), the overlapping windows blended (utils/prediction/sliding.py)."""

    letterbox = None  # images are read as they are

    def __init__(self, scores: ClassScores, scale: Scale, window_batch: int = 0):
        self.scores, self.scale = scores, scale
        self.input_size, self.margin = tuple(scores.input_shape[1:3]), output_margin(scores)
        self.window_batch = window_batch or windows_per_call(self.input_size)
        self.predict = predict_function(scores)
        self.predict_probabilities = tf.function(scores.probabilities, reduce_retracing=True)

    def reads_per_batch(self, batch_size: int) -> int:
        return 1  # one image a read (its windows are what is batched), not several large images padded together

    def probabilities_refused(self) -> str:
        """Why this path writes no probabilities ("" when it does): at image_scale other than 1 it does not predict
        at the images' own resolution."""
        if self.scale.image_scale == 1:
            return ""
        return (
            f"image_scale={self.scale.image_scale}: the probabilities are written at the images' own resolution, "
            "which this network does not predict at. Save masks (--save_mask) instead."
        )

    def batch_input(self, canvases, images):
        return images

    def image_mask(self, image) -> np.ndarray:
        """image (h, w, bands) -> class ids uint8 (h, w), a numpy array."""
        image = np.asarray(image)
        height, width = image.shape[:2]
        scaled = image
        if self.scale.image_scale != 1:  # bilinear, as training's crops are scaled (augmentation.draws.augment)
            new_height, new_width = scaled_size(height, width, self.scale.image_scale)
            scaled = cv2.resize(image, (new_width, new_height), interpolation=cv2.INTER_LINEAR)
            scaled = scaled.reshape(new_height, new_width, -1)  # OpenCV drops a single band's axis
        overlap = self.scale.overlap
        ids = slide_class_ids(self.predict, scaled, self.input_size, self.margin, overlap, self.window_batch)
        if scaled is not image:  # class ids stay class ids: nearest neighbour
            ids = cv2.resize(ids, (width, height), interpolation=cv2.INTER_NEAREST)
        return ids

    def masks(self, images, boxes, sizes) -> np.ndarray:
        """The originals (B, h_max, w_max, bands) padded to the largest -> uint8 (B, h_max, w_max) masks."""
        sizes = np.asarray(sizes)
        masks = np.zeros((len(sizes), *sizes.max(axis=0)), np.uint8)
        for mask, image, (height, width) in zip(masks, np.asarray(images), sizes):
            mask[:height, :width] = self.image_mask(image[:height, :width])
        return masks

    def probabilities(self, image):
        """Yields (top, float32 (rows, w, C)) for rows [top, top + rows), blended (at image_scale 1 only)."""
        if self.probabilities_refused():
            raise ValueError(self.probabilities_refused())
        window = (self.input_size, self.margin, self.scale.overlap, self.window_batch)
        yield from blended_rows(self.predict_probabilities, np.asarray(image), *window)
