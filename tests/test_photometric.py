"""Photometric augmentation: each transform's effect, on 8-bit, 16-bit and N-band images, seeded and resumable."""

import numpy as np
import pytest
import tensorflow as tf

from utils.augmentation.draws import augment
from utils.augmentation.options import Augmentation
from utils.augmentation.photometric import NNUNET, Photometric, apply_photometric
from utils.files.bands import Bands

RGB = Bands(3, "uint8")
SIXTEEN_BIT = Bands(4, "uint16", ((1000.0, 3000.0),) * 4)  # 4 bands of 16-bit, range 1000-3000 (as surveyed)


def ramp(bands: Bands, size: int = 32) -> np.ndarray:
    """A smooth horizontal ramp over each band's range, in the pipeline's dtype (uint8, or float32)."""
    low, high = (0.0, 255.0) if bands.eight_bit else bands.ranges[0]
    row = np.linspace(low + (high - low) * 0.1, low + (high - low) * 0.9, size, dtype=np.float32)
    image = np.repeat(np.repeat(row[None, :, None], size, 0), bands.channels, 2)
    return np.round(image).astype(np.uint8) if bands.eight_bit else image


def applied(name: str, bands: Bands, seed: int = 3) -> tuple:
    image = ramp(bands)
    out = apply_photometric(image, np.ones(image.shape[:2], bool), Photometric(**{name: 1.0}), bands, seed)
    return image, out


@pytest.mark.parametrize("bands", [RGB, SIXTEEN_BIT], ids=["8-bit RGB", "16-bit 4 bands"])
def test_each_transform_changes_the_image_in_its_own_way_and_keeps_its_dtype(bands):
    spread = 255.0 if bands.eight_bit else 2000.0
    image, noisy = applied("noise", bands)
    assert noisy.dtype == image.dtype and noisy.shape == image.shape
    residual = noisy.astype(np.float64) - image
    assert 0 < residual.std() < 0.03 * spread and abs(residual.mean()) < 0.01 * spread  # zero-mean, small
    _, blurred = applied("blur", bands, seed=1)
    assert np.abs(blurred.astype(np.float64) - image).max() > 0  # some band blurred (each with probability 1/2)
    # On a linear ramp a blur changes only the ends (the mean of a line is its middle value).
    inside = np.abs(blurred[:, 3:-3].astype(np.float64) - image[:, 3:-3]).max()
    assert inside <= (1 if bands.eight_bit else 1e-2)
    _, contrasted = applied("contrast", bands)
    assert contrasted.min() >= image.min() and contrasted.max() <= image.max()  # within the sample's range
    assert abs(contrasted.astype(np.float64).mean() - image.mean()) < 0.05 * spread  # about its mean
    _, gamma = applied("gamma", bands)
    assert gamma.min() == pytest.approx(image.min(), abs=1) and gamma.max() == pytest.approx(image.max(), abs=1)
    middle = gamma[:, 16].astype(np.float64).mean() - image[:, 16].mean()
    assert abs(middle) > 0.005 * spread  # the middle moves, the ends stay


def test_low_resolution_keeps_a_smooth_ramp_and_coarsens_an_edge():
    edge = np.zeros((32, 32, 1), np.float32)
    edge[:, 15:] = 255.0
    bands = Bands(1, "float32", ((0.0, 255.0),))
    out = [
        apply_photometric(edge, np.ones((32, 32), bool), Photometric(low_resolution=1.0), bands, s) for s in range(8)
    ]
    assert any(np.abs(o - edge).max() > 10 for o in out)  # a sharp edge moved or overshot somewhere


def test_nothing_drawn_leaves_the_image_as_it_is():
    image = ramp(RGB)
    same = apply_photometric(image, np.ones((32, 32), bool), Photometric(), RGB, 5)
    assert same is image


def test_the_shares_are_the_share_of_samples_and_the_draws_are_seeded():
    image, valid, options = ramp(RGB), np.ones((32, 32), bool), Photometric(noise=0.3)
    changed = [not np.array_equal(apply_photometric(image, valid, options, RGB, s), image) for s in range(400)]
    assert 0.22 < np.mean(changed) < 0.38
    first = apply_photometric(image, valid, Photometric(**NNUNET), RGB, 7)
    np.testing.assert_array_equal(first, apply_photometric(image, valid, Photometric(**NNUNET), RGB, 7))


def test_a_share_outside_0_to_1_is_refused_by_name():
    with pytest.raises(ValueError, match=r"gamma=1.5: expected the share of samples given it, 0-1"):
        Augmentation(photometric=Photometric(gamma=1.5)).check()


def test_switching_photometric_on_changes_only_the_image_and_off_gives_the_batches_of_before():
    rng = np.random.default_rng(0)
    image = tf.constant(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    label = tf.constant(rng.integers(0, 3, (48, 64), dtype=np.uint8))
    seed = tf.constant([4, 2], tf.int64)
    plain = augment(image, label, (32, 32), seed, options=Augmentation())
    off = augment(image, label, (32, 32), seed, options=Augmentation(photometric=Photometric()))
    on = augment(image, label, (32, 32), seed, options=Augmentation(photometric=Photometric(noise=1.0)))
    np.testing.assert_array_equal(plain[0], off[0])
    np.testing.assert_array_equal(plain[1], on[1])  # the geometry and the label are untouched
    assert not np.array_equal(plain[0], on[0])
