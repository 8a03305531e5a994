"""Overlap-tile prediction for a network whose output is smaller than its input (the classic UNet)."""

import numpy as np
import pytest
import tensorflow as tf

from nets.models import build_model
from utils.tiling import mirror_pad, tile_probabilities


def test_mirror_pad_reflects_as_often_as_needed():
    image = np.arange(3 * 4).reshape(3, 4, 1)
    for pads in [(1, 2, 3, 1), (7, 5, 9, 11)]:  # the second is larger than the image: reflected back and forth
        expected = np.pad(image, [pads[:2], pads[2:], (0, 0)], mode="reflect")
        np.testing.assert_array_equal(mirror_pad(tf.constant(image), *pads).numpy(), expected)


@pytest.fixture(scope="module")
def classic():
    return build_model("unet_classic", (188, 204), 3)  # output (4, 20), margin 92


def test_overlap_tile_equals_one_shot_where_the_image_fits_one_tile(classic):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (4, 20, 3), np.uint8)  # exactly the output window
    tiled = tile_probabilities(classic, tf.constant(image), batch_size=2).numpy()
    one_shot = classic(np.pad(image, [(92, 92), (92, 92), (0, 0)], mode="reflect")[None])[0].numpy()
    np.testing.assert_allclose(tiled, one_shot, atol=1e-6)
    smaller = image[:3, :15]  # mirrored to a whole tile, then cropped
    tiled = tile_probabilities(classic, tf.constant(smaller), batch_size=2).numpy()
    one_shot = classic(np.pad(smaller, [(92, 93), (92, 97), (0, 0)], mode="reflect")[None])[0].numpy()
    np.testing.assert_allclose(tiled, one_shot[:3, :15], atol=1e-6)


def test_overlap_tile_stitches_tiles_that_cover_the_image(classic):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (10, 50, 3), np.uint8)  # 3 x 3 tiles of 4 x 20, the last ones cut
    tiled = tile_probabilities(classic, tf.constant(image), batch_size=2).numpy()
    assert tiled.shape == (10, 50, 3)
    padded = np.pad(image, [(92, 92 + 2), (92, 92 + 10), (0, 0)], mode="reflect")
    for row in range(3):
        for column in range(3):
            y, x = 4 * row, 20 * column
            tile = classic(padded[None, y : y + 188, x : x + 204])[0].numpy()
            window = tiled[y : y + 4, x : x + 20]
            np.testing.assert_allclose(window, tile[: window.shape[0], : window.shape[1]], atol=1e-6)
