import math

import numpy as np
import pytest

from utils.losses import build_loss, cross_entropy, dice, dice_loss_with_CE, focal

# Two pixels, two classes: p(class 1) = 0.8 at pixel 0 (label 1), p(class 0) = 0.6 at pixel 1 (label 0).
Y_PRED = np.array([[[[0.2, 0.8], [0.6, 0.4]]]], np.float32)  # (1, 1, 2, 2)
Y_TRUE = np.array([[[1, 0]]], np.uint8)  # (1, 1, 2)


def value(loss, y_true=Y_TRUE, y_pred=Y_PRED):
    return float(loss(y_true, y_pred))


def test_cross_entropy_is_mean_negative_log_likelihood():
    assert value(cross_entropy([1, 1])) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2, rel=1e-5)


def test_ignored_pixels_do_not_count():
    y_true = np.array([[[1, 255]]], np.uint8)
    assert value(cross_entropy([1, 1]), y_true) == pytest.approx(-math.log(0.8), rel=1e-5)
    assert value(build_loss([1, 1], dice_loss=True, focal_loss=True), np.full((1, 1, 2), 255, np.uint8)) == 0


def test_class_weights_scale_their_pixels():
    assert value(cross_entropy([3, 1])) == pytest.approx(-(math.log(0.8) + 3 * math.log(0.6)) / 2, rel=1e-5)


def test_focal_down_weights_easy_pixels():
    expected = -0.5 * ((0.2**2) * math.log(0.8) + (0.4**2) * math.log(0.6)) / 2
    assert value(focal([1, 1])) == pytest.approx(expected, rel=1e-5)
    assert value(focal([1, 1], alpha=1.0, gamma=0.0)) == pytest.approx(value(cross_entropy([1, 1])), rel=1e-6)


def test_dice_by_hand():
    # Class 0: TP 0.6, FP 0.2, FN 0.4; class 1: TP 0.8, FP 0.4, FN 0.2 (beta 1, no smoothing).
    expected = 1 - (2 * 0.6 / (2 * 0.6 + 0.4 + 0.2) + 2 * 0.8 / (2 * 0.8 + 0.2 + 0.4)) / 2
    assert value(dice(smooth=0.0)) == pytest.approx(expected, rel=1e-5)
    perfect = np.array([[[[0.0, 1.0], [1.0, 0.0]]]], np.float32)
    assert value(dice(), y_pred=perfect) == pytest.approx(0.0, abs=1e-5)


def test_dice_leaves_ignored_pixels_out_of_false_positives():
    y_true = np.array([[[1, 255]]], np.uint8)
    # Only pixel 0 counts: class 0 TP 0, FP 0.2, FN 0; class 1 TP 0.8, FP 0, FN 0.2.
    expected = 1 - (0.0 + 2 * 0.8 / (2 * 0.8 + 0.2)) / 2
    assert value(dice(smooth=0.0), y_true) == pytest.approx(expected, rel=1e-5)


def test_composed_losses_are_sums_of_their_parts():
    assert value(dice_loss_with_CE([1, 2])) == pytest.approx(value(cross_entropy([1, 2])) + value(dice()), rel=1e-6)
    assert value(build_loss([1, 2], dice_loss=True, focal_loss=True)) == pytest.approx(
        value(focal([1, 2])) + value(dice()), rel=1e-6
    )
    assert value(build_loss([1, 2])) == pytest.approx(value(cross_entropy([1, 2])), rel=1e-6)
