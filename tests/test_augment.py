"""The geometric augmentation options: one resampling per array, image and label kept aligned."""

import cv2
import numpy as np
import tensorflow as tf

from utils.augmentation.draws import augment
from utils.augmentation.options import Augmentation
from utils.augmentation.pixels import elastic_field, remap_maps, warp_pair
from utils.dataloader import letterbox_pair
from utils.files.images import IGNORE_LABEL

EVERY_OPTION = Augmentation(
    rotation=40, rotate_90=True, vertical_flip=True, shear=15, elastic_alpha=6, elastic_sigma=16
)


def checkerboard(size: int = 64, cell: int = 8):
    """A black / white checkerboard image and its label (white = class 1): the label is the image's own pixels."""
    y, x = np.indices((size, size))
    label = ((y // cell + x // cell) % 2).astype(np.uint8)
    return np.repeat((label * 255)[..., None], 3, axis=-1), label


def drawn_agreement(image: np.ndarray, label: np.ndarray) -> float:
    """Share of the labelled pixels whose class, read back from the image's pixels (above half the brightest), is
    the label's; pixels next to the fill are left out (bilinear interpolation mixes the fill into them)."""
    valid = cv2.erode((label != IGNORE_LABEL).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    drawn = image[..., 0] > image[..., 0][valid].max() / 2
    return float((drawn[valid] == label[valid]).mean())


def test_every_option_keeps_image_and_label_aligned():
    image, label = checkerboard()
    moved = []
    for seed in range(8):
        key = tf.constant([seed, 3], tf.int64)
        out_image, out_label = (t.numpy() for t in augment(image, label, (64, 64), key, 1.0, options=EVERY_OPTION))
        plain_label = augment(image, label, (64, 64), key, 1.0)[1].numpy()  # the same draws, no options
        assert set(np.unique(out_label)) <= {0, 1, IGNORE_LABEL}  # nearest neighbour, ignore outside
        assert drawn_agreement(out_image, out_label) > 0.97
        # The check can fail: the label two pixels off the image (8-pixel squares) disagrees on about half of them.
        assert drawn_agreement(out_image, np.roll(out_label, 2, axis=1)) < 0.8
        moved.append((out_label != plain_label).mean())
    assert min(moved) > 0.2  # the options did move the pixels


def test_the_remap_map_composes_the_affine_exactly():
    # With no elastic field, the composed map is the affine warp itself: remap and warpAffine agree.
    image, label = checkerboard(40, 5)
    matrix = cv2.getRotationMatrix2D((20, 18), 25, 1.2).astype(np.float32)
    maps = remap_maps(matrix, np.zeros((48, 56, 2), np.float32))
    remapped = cv2.remap(label, *maps, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=IGNORE_LABEL)
    warped = cv2.warpAffine(label, matrix, (56, 48), flags=cv2.INTER_NEAREST, borderValue=IGNORE_LABEL)
    assert (remapped != warped).mean() < 0.005  # the two round a few half-way pixels differently


def test_elastic_field_is_smooth_and_scaled_by_alpha():
    field = elastic_field((96, 128), alpha=10.0, sigma=32.0, seed=1)
    assert field.shape == (96, 128, 2) and field.dtype == np.float32
    assert 4 < field.std() < 14  # N(0, 10²) at the grid points, smoothed between
    assert np.abs(np.diff(field, axis=1)).max() < 2.5  # smooth: neighbours move alike (white noise: ~30)
    np.testing.assert_array_equal(field, elastic_field((96, 128), 10.0, 32.0, seed=1))  # seeded


def test_elastic_warp_moves_labels_with_their_pixels():
    image, label = checkerboard()
    matrix = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    options = Augmentation(elastic_alpha=6.0, elastic_sigma=16.0)
    warped, warped_label = warp_pair(image, label, matrix, (64, 64), np.ones(3, np.float32), 5, options=options)
    assert (warped_label != label).mean() > 0.05
    assert drawn_agreement(warped, warped_label) > 0.97


def test_jitter_is_the_share_of_samples_jittered_the_rest_as_prediction_sees_them():
    """jitter 0: every sample is the letterboxed image (fit) up to the flip, colours untouched; jitter 1: the
    batches of before; between: about that share jittered."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    label = rng.integers(0, 3, (48, 64), dtype=np.uint8)
    canvas = letterbox_pair(image, label, (64, 64), 128)
    expected = [(canvas[0].numpy(), canvas[1].numpy())]
    expected.append((expected[0][0][:, ::-1], expected[0][1][:, ::-1]))  # flipped
    plain, jittered = 0, 0
    for seed in range(40):
        key = tf.constant([seed, 5], tf.int64)
        out = [t.numpy() for t in augment(image, label, (64, 64), key, options=Augmentation(jitter=0.0))]
        assert any(np.array_equal(out[1], e[1]) and np.array_equal(out[0], e[0]) for e in expected)
        before = [t.numpy() for t in augment(image, label, (64, 64), key)]
        same = [t.numpy() for t in augment(image, label, (64, 64), key, options=Augmentation(jitter=1.0))]
        assert all(np.array_equal(a, b) for a, b in zip(before, same))
        half = [t.numpy() for t in augment(image, label, (64, 64), key, options=Augmentation(jitter=0.5))]
        is_before = all(np.array_equal(a, b) for a, b in zip(before, half))
        plain, jittered = plain + (not is_before), jittered + is_before
    assert 10 <= jittered <= 30 and plain + jittered == 40
