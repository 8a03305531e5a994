"""The sliding window of scale mode slide (utils/scale.py): an image predicted at its own resolution, window by
window, the overlapping probabilities blended with weights that fall towards each window's edges. A network whose
output is smaller than its input (the classic UNet, margin m) sees m pixels of context around each output window,
mirrored beyond the image's borders.

Memory is bounded by the windows, not by the image: the windows run in raster order, and a band of output rows
one window high holds the blended probabilities; rows no later window reaches become class ids at once.
"""

import math

import numpy as np


def window_starts(length: int, window: int, overlap: float) -> list:
    """Starts of windows of `window` pixels covering [0, length), `overlap` of a window apart at most, the last
    flush with the end; [0] when the image is no longer than one window (it is padded)."""
    if length <= window:
        return [0]
    stride = max(1, math.floor(window * (1 - overlap)))
    count = math.ceil((length - window) / stride) + 1
    # Spread evenly: the same number of windows, no window further than `stride` from the previous one.
    return [round(i * (length - window) / (count - 1)) for i in range(count)]


def window_weights(height: int, width: int) -> np.ndarray:
    """float32 (height, width): the blending weight of each pixel of an output window, a separable Gaussian
    (sigma 1/8 of the side, as nnU-Net) scaled to 1 at the centre. Positive everywhere, so a pixel that one
    window alone covers keeps that window's prediction."""

    def profile(side):
        x = np.arange(side, dtype=np.float64) + 0.5 - side / 2
        return np.exp(-0.5 * (x / max(side / 8, 1e-6)) ** 2)

    return np.outer(profile(height), profile(width)).astype(np.float32)


def reflect(indices: np.ndarray, length: int) -> np.ndarray:
    """Indices into an axis of `length`, mirrored at its ends as often as needed (... 2 1 | 0 1 2 ... n-1 | n-2 ...)."""
    period = max(2 * (length - 1), 1)
    index = np.mod(indices, period)
    return np.where(index >= length, period - index, index)


def window_input(image: np.ndarray, top: int, left: int, size: tuple, margin: int) -> np.ndarray:
    """(S, S', bands): the input of the output window at (top, left), `margin` pixels of context around it,
    mirrored beyond the image's borders (and over the whole window when the image is smaller than it)."""
    rows = reflect(np.arange(top - margin, top - margin + size[0]), image.shape[0])
    columns = reflect(np.arange(left - margin, left - margin + size[1]), image.shape[1])
    return image[rows[:, None], columns[None, :]]


YIELD_ROWS = 64  # finished rows handed out at a time: 64 x 10,000 x 21 float32 is 54 MB


def ring_parts(start: int, count: int, size: int) -> list:
    """Rows [start, start + count) of an image in a ring buffer of `size` rows (row r at r % size), count <= size:
    [(ring slice, slice of the count rows)], one or two parts."""
    first = start % size
    if first + count <= size:
        return [(slice(first, first + count), slice(0, count))]
    split = size - first
    return [(slice(first, size), slice(0, split)), (slice(0, count - split), slice(split, count))]


def blended_rows(predict, image: np.ndarray, input_size: tuple, margin: int, overlap: float, batch_size: int):
    """The image's blended probabilities, window by window at its own resolution, finished rows a few at a time.

    The weighted sums live in a ring buffer one output window high (image row r at r % O): a row of windows adds
    to it, and the rows above the next row of windows are final, handed out and cleared. Nothing is copied to
    move the band on.

    Args:
        predict: windows (B, S, S', bands) -> probabilities (B, S - 2m, S' - 2m, C), a numpy-convertible array.
        image: (h, w, bands), any size (smaller than a window: the window is filled by mirroring).
        input_size: (S, S'), the network's input; margin: m, its valid border (0 for a same-padding network).
        overlap: share of an output window that the next one overlaps, in [0, 1).
        batch_size: windows per network call.

    Yields:
        (top, float32 (rows, w, C)): the probabilities of image rows [top, top + rows), in order, each row once.
    """
    height, width = image.shape[:2]
    out_height, out_width = input_size[0] - 2 * margin, input_size[1] - 2 * margin
    windows = [
        (top, left)
        for top in window_starts(height, out_height, overlap)
        for left in window_starts(width, out_width, overlap)
    ]  # raster order: a row of windows ends before the next begins
    weights = window_weights(out_height, out_width)[..., None]  # (O, O', 1)
    ring, norm = None, np.zeros((out_height, max(width, out_width), 1), np.float32)
    done = 0  # rows before `done` are handed out

    def finish(until: int):
        """Hands out rows [done, until) (and clears them in the ring)."""
        nonlocal done
        for first in range(done, min(until, height), YIELD_ROWS):
            count = min(first + YIELD_ROWS, until, height) - first
            rows = np.empty((count, width, ring.shape[-1]), np.float32)
            for in_ring, in_rows in ring_parts(first, count, out_height):
                rows[in_rows] = ring[in_ring, :width] / norm[in_ring, :width]
                ring[in_ring], norm[in_ring] = 0, 0
            yield first, rows
        done = until

    for first in range(0, len(windows), batch_size):
        batch = windows[first : first + batch_size]
        inputs = np.stack([window_input(image, top, left, input_size, margin) for top, left in batch])
        probabilities = np.asarray(predict(inputs), np.float32)  # (B, O, O', C)
        if ring is None:
            ring = np.zeros((out_height, norm.shape[1], probabilities.shape[-1]), np.float32)
        for (top, left), window in zip(batch, probabilities):
            if top > done:  # no later window reaches rows above `top`: they are final
                yield from finish(top)
            columns = slice(left, left + out_width)
            for in_ring, in_window in ring_parts(top, out_height, out_height):
                ring[in_ring, columns] += weights[in_window] * window[in_window]
                norm[in_ring, columns] += weights[in_window]
    yield from finish(height)


def slide_class_ids(predict, image: np.ndarray, input_size: tuple, margin: int, overlap: float, batch_size: int):
    """uint8 (h, w) class ids of an image by the sliding window (blended_rows' arguments); only a band of
    probabilities is held at a time."""
    ids = np.empty(image.shape[:2], np.uint8)
    for top, probabilities in blended_rows(predict, image, input_size, margin, overlap, batch_size):
        ids[top : top + len(probabilities)] = np.argmax(probabilities, axis=-1)
    return ids
