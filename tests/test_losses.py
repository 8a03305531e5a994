import math

import numpy as np
import pytest

from utils.losses import build_loss, cross_entropy, dice, dice_loss_with_CE, focal, lovasz, tversky

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


def test_tversky_by_hand():
    # The TP, FP, FN of test_dice_by_hand; alpha 0.3 weighs false positives, beta 0.7 false negatives.
    expected = 1 - (0.6 / (0.6 + 0.3 * 0.2 + 0.7 * 0.4) + 0.8 / (0.8 + 0.3 * 0.4 + 0.7 * 0.2)) / 2
    assert value(tversky(0.3, 0.7, smooth=0.0)) == pytest.approx(expected, rel=1e-5)
    assert value(tversky(0.5, 0.5)) == pytest.approx(value(dice()), rel=1e-5)  # alpha = beta = 0.5 is Dice


def test_lovasz_by_hand():
    # Class 0: errors 0.4 (pixel 1, class 0) then 0.2 (pixel 0, not): Jaccard steps 1, 0 -> 0.4.
    # Class 1: errors 0.4 (pixel 1, not class 1) then 0.2 (pixel 0, class 1): steps 0.5, 0.5 -> 0.3.
    assert value(lovasz()) == pytest.approx((0.4 + 0.3) / 2, rel=1e-5)
    assert value(lovasz(classes=[1])) == pytest.approx(0.3, rel=1e-5)


# A 3x3 label and a hard prediction: IoU 2/5 (class 0), 3/5 (class 1), 1/2 (class 2).
HARD_LABEL = np.array([[[0, 0, 1], [0, 1, 1], [2, 2, 1]]], np.uint8)
HARD_PREDICTION = np.eye(3, dtype=np.float32)[np.array([[[0, 1, 1], [0, 1, 1], [2, 0, 0]]])]


def test_lovasz_of_a_hard_prediction_is_one_minus_miou():
    assert value(lovasz(), HARD_LABEL, HARD_PREDICTION) == pytest.approx(1 - (0.4 + 0.6 + 0.5) / 3, rel=1e-5)


def test_lovasz_leaves_ignored_pixels_out():
    ignored = HARD_LABEL.copy()
    ignored[0, 2, 2] = 255  # the pixel of class 1 predicted 0: class 0's IoU becomes 2/4, class 1's 3/4
    assert value(lovasz(), ignored, HARD_PREDICTION) == pytest.approx(1 - (0.5 + 0.75 + 0.5) / 3, rel=1e-5)


def test_lovasz_counts_only_classes_present():
    label = np.zeros((1, 3, 3), np.uint8)  # class 0 only: classes 1 and 2, absent, add nothing
    assert value(lovasz(), label, HARD_PREDICTION) == pytest.approx(1 - 4 / 9, rel=1e-5)


def test_region_losses_compose_with_cross_entropy():
    parts = value(cross_entropy([1, 1])) + value(dice()) + value(tversky(0.3, 0.7)) + value(lovasz())
    combined = build_loss([1, 1], dice_loss=True, tversky_loss=(0.3, 0.7), lovasz_loss=True)
    assert value(combined) == pytest.approx(parts, rel=1e-6)
