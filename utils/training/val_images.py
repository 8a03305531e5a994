"""The first val images of each evaluation, written to TensorBoard as strips: image | label | prediction."""

import time

import numpy as np
import tensorflow as tf
from PIL import Image

from utils.files.bands import Bands, display_image
from utils.files.images import IGNORE_LABEL


class ValImages:
    """The first `count` val images of each evaluation, written to TensorBoard (its Images tab) as one strip each:
    image | label | prediction, the two in class colours (ignored label pixels grey), the longer side TILE px.

    It takes the batches the evaluation has already predicted: no prediction of its own.
    """

    TILE = 256

    def __init__(self, count: int, log_dir: str, bands: Bands, colours: np.ndarray):
        self.count, self.bands, self.colours = count, bands, colours
        self.writer = tf.summary.create_file_writer(log_dir) if count else None
        self.strips, self.seconds = [], 0.0

    def collect(self, canvases, labels, boxes, sizes, masks) -> None:
        """Keeps strips of a predicted batch until `count` are held (evaluate_confusion's on_batch)."""
        started = time.perf_counter()
        for canvas, label, box, (height, width), mask in zip(canvases, labels, boxes, sizes, masks):
            if len(self.strips) >= self.count:
                break
            top, left, box_height, box_width = box
            image = display_image(canvas[top : top + box_height, left : left + box_width], self.bands)
            image = np.asarray(Image.fromarray(image).resize((int(width), int(height)), Image.BILINEAR))
            label = label[:height, :width]
            label_colours = np.where(
                (label == IGNORE_LABEL)[..., None], 128, self.colours[np.minimum(label, len(self.colours) - 1)]
            )
            strip = np.concatenate([image, label_colours.astype(np.uint8), self.colours[mask[:height, :width]]], axis=1)
            scale = self.TILE / max(height, width)
            size = (max(1, round(strip.shape[1] * scale)), max(1, round(strip.shape[0] * scale)))
            self.strips.append(np.asarray(Image.fromarray(strip).resize(size, Image.NEAREST)))
        self.seconds += time.perf_counter() - started

    def write(self, epoch: int, epoch_started: float) -> str:
        """Writes the held strips at step `epoch` and forgets them; says how many and the time they took (collecting
        too), also as a share of the epoch so far (it started at perf_counter() epoch_started)."""
        started, count = time.perf_counter(), len(self.strips)
        with self.writer.as_default():
            for index, strip in enumerate(self.strips):
                tf.summary.image(f"val_image_{index}", strip[None], step=epoch)
        self.writer.flush()
        seconds, self.strips, self.seconds = self.seconds + time.perf_counter() - started, [], 0.0
        share = seconds / (time.perf_counter() - epoch_started)
        return f"{count} val images to TensorBoard in {seconds:.2f} s ({share:.1%} of the epoch)"
