"""The sigmoid head's loss and the threshold's checks; train.py -> get_miou.py (the sweep) -> predict.py (a threshold)
-> export.py -> the ONNX backend run in tests/test_models_end_to_end.py (its unet_small case)."""

import math

import numpy as np
import pytest

from utils.losses import build_loss
from utils.prediction.scores import check_threshold


def test_binary_cross_entropy_of_the_sigmoid_head_by_hand():
    p = np.array([[[[0.8], [0.3]]]], np.float32)  # (1, 1, 2, 1): P(class 1)
    y_true = np.array([[[1, 0]]], np.uint8)
    expected = -(math.log(0.8) + math.log(0.7)) / 2
    assert float(build_loss([1, 1], head="sigmoid")(y_true, p)) == pytest.approx(expected, rel=1e-5)
    assert float(build_loss([1, 1], head="sigmoid")(y_true, p[..., 0])) == pytest.approx(expected, rel=1e-5)
    # Dice of the foreground alone: TP 0.8, FP 0.3, FN 0.2.
    dice = 1 - 2 * 0.8 / (2 * 0.8 + 0.3 + 0.2)
    with_dice = float(build_loss([1, 1], dice_loss=True, head="sigmoid")(y_true, p))
    assert with_dice == pytest.approx(expected + dice, rel=1e-4)


@pytest.mark.parametrize("threshold, num_classes", [(1.5, 2), (0.0, 2), (0.3, 3)])
def test_a_threshold_that_cannot_work_is_refused(threshold, num_classes):
    with pytest.raises(ValueError, match=f"threshold={threshold}"):
        check_threshold(threshold, num_classes)
