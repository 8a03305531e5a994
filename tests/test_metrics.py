import numpy as np
import pytest

from utils.metrics import (
    confusion_matrix,
    frequency_weighted_iou,
    hausdorff95,
    mean_iou,
    normalised_confusion,
    per_class_dice,
    per_class_iou,
    per_class_precision,
    per_class_recall,
    pixel_accuracy,
)

LABEL = np.array([[0, 0, 1], [1, 1, 2], [2, 255, 255]])
PREDICTION = np.array([[0, 1, 1], [1, 0, 2], [2, 2, 0]])


def test_confusion_matrix_by_hand_ignores_255():
    expected = np.array([[1, 1, 0], [1, 2, 0], [0, 0, 2]])
    np.testing.assert_array_equal(confusion_matrix(LABEL, PREDICTION, 3), expected)


def test_scores_by_hand():
    matrix = confusion_matrix(LABEL, PREDICTION, 3)
    np.testing.assert_allclose(per_class_iou(matrix), [1 / 3, 2 / 4, 2 / 2])
    np.testing.assert_allclose(per_class_recall(matrix), [1 / 2, 2 / 3, 2 / 2])
    np.testing.assert_allclose(per_class_precision(matrix), [1 / 2, 2 / 3, 2 / 2])
    assert pixel_accuracy(matrix) == pytest.approx(5 / 7)
    assert mean_iou(matrix) == pytest.approx((1 / 3 + 1 / 2 + 1) / 3)


def test_absent_class_is_left_out_of_the_mean():
    matrix = confusion_matrix(np.array([0, 0, 1]), np.array([0, 0, 1]), 4)
    assert np.isnan(per_class_iou(matrix)[2:]).all()
    assert mean_iou(matrix) == 1.0


def test_class_predicted_but_never_labelled_counts_as_iou_zero():
    label = np.array([[0, 0, 0], [1, 1, 1], [255, 255, 255]])
    prediction = np.array([[0, 2, 0], [1, 1, 2], [2, 2, 2]])  # class 2 is never in the label
    matrix = confusion_matrix(label, prediction, 3)
    np.testing.assert_array_equal(matrix, [[2, 0, 1], [0, 2, 1], [0, 0, 0]])
    iou, recall, precision = per_class_iou(matrix), per_class_recall(matrix), per_class_precision(matrix)
    np.testing.assert_allclose(iou, [2 / 3, 2 / 3, 0])
    assert np.isnan(recall[2]) and precision[2] == 0
    assert mean_iou(matrix) == pytest.approx(4 / 9)


def test_everything_ignored_gives_nan_not_a_warning():
    matrix = confusion_matrix(np.full((3, 3), 255), np.zeros((3, 3), int), 2)
    assert matrix.sum() == 0 and np.isnan(mean_iou(matrix))


def test_dice_and_frequency_weighted_iou_by_hand():
    matrix = confusion_matrix(LABEL, PREDICTION, 3)  # [[1, 1, 0], [1, 2, 0], [0, 0, 2]]
    np.testing.assert_allclose(per_class_dice(matrix), [2 / 4, 4 / 6, 4 / 4])  # 2 TP / (2 TP + FP + FN)
    np.testing.assert_allclose(per_class_dice(matrix), 2 * per_class_iou(matrix) / (1 + per_class_iou(matrix)))
    # Label pixels 2, 3, 2 of 7: (2/7)(1/3) + (3/7)(1/2) + (2/7)(1).
    assert frequency_weighted_iou(matrix) == pytest.approx(25 / 42)


def test_normalised_confusion_rows_sum_to_one():
    matrix = confusion_matrix(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 3)  # class 2 never labelled
    np.testing.assert_allclose(normalised_confusion(matrix), [[0.5, 0.5, 0], [1 / 3, 2 / 3, 0], [0, 0, 0]])


def single(shape, *pixels):
    mask = np.zeros(shape, bool)
    for pixel in pixels:
        mask[pixel] = True
    return mask


@pytest.mark.parametrize(
    "case, truth, predicted, expected",
    [
        ("one pixel 3 columns off", single((8, 8), (2, 2)), single((8, 8), (2, 5)), 3.0),
        # A 3x3 square shifted a column: each ring pixel is 0 or 1 from the other ring, the 95th percentile 1.
        (
            "a square shifted by one",
            np.pad(np.ones((3, 3), bool), ((1, 2), (1, 2))),
            np.pad(np.ones((3, 3), bool), ((1, 2), (2, 1))),
            1.0,
        ),
        # A 4x4 corner square found, and one stray pixel at (9, 9), sqrt(72) from the square's corner (3, 3): it is
        # one of 13 surface distances, the 95th percentile (linear, at 11.4 of 0..12) 0.4 of it.
        (
            "a stray pixel",
            np.pad(np.ones((4, 4), bool), ((0, 6), (0, 6))),
            np.pad(np.ones((4, 4), bool), ((0, 6), (0, 6))) | single((10, 10), (9, 9)),
            0.4 * np.sqrt(72),
        ),
        ("nothing predicted", single((4, 4), (1, 1)), np.zeros((4, 4), bool), np.inf),
        ("nothing to find", np.zeros((4, 4), bool), single((4, 4), (1, 1)), np.nan),
    ],
)
def test_hausdorff95_by_hand(case, truth, predicted, expected):
    assert hausdorff95(truth, predicted) == pytest.approx(expected, rel=1e-4, nan_ok=True), case
