"""The UNet weight map against its formula, and in the losses and the pipeline."""

import math

import numpy as np
import pytest

from utils.dataloader import Pipeline, build_train_dataset
from utils.files.images import IGNORE_LABEL, split_samples
from utils.losses import build_loss, cross_entropy, dice
from utils.weight_map import NEGLIGIBLE, WeightMap, border_weights


def formula(label: np.ndarray, objects: list, w0: float, sigma: float) -> np.ndarray:
    """w0 exp(-(d1 + d2)² / 2 sigma²) at every pixel, d1 <= d2 the distances to the nearest pixel of each object
    (boolean masks), computed by brute force."""
    points = np.indices(label.shape).reshape(2, -1).T  # (N, 2)
    distances = []
    for mask in objects:
        pixels = np.argwhere(mask)  # (M, 2)
        gaps = np.sqrt(((points[:, None, :] - pixels[None, :, :]) ** 2).sum(-1)).min(axis=1)
        distances.append(gaps.reshape(label.shape))
    first, second = np.sort(np.stack(distances), axis=0)[:2]
    return w0 * np.exp(-((first + second) ** 2) / (2 * sigma**2))


@pytest.mark.parametrize("layout", ["touching classes", "one class, a 2-pixel gap"])
def test_weight_map_is_the_formula_on_two_touching_squares(layout):
    label = np.zeros((40, 44), np.uint8)
    if layout == "touching classes":  # a square of class 1 and one of class 2, side by side: two objects
        label[10:30, 5:18], label[10:30, 18:31] = 1, 2
        objects, classes = [label == 1, label == 2], (1, 2)
    else:  # two cells of one class, a membrane of background between them
        label[10:30, 5:18], label[10:30, 20:33] = 1, 1
        objects, classes = (
            [(label == 1) & (np.indices(label.shape)[1] < 19), (label == 1) & (np.indices(label.shape)[1] > 19)],
            (1,),
        )
    label[0, :] = IGNORE_LABEL
    weights = border_weights(label, WeightMap(10.0, 5.0, classes))
    expected = formula(label, objects, 10.0, 5.0)
    gaps = label == 0
    np.testing.assert_allclose(weights[gaps], expected[gaps], atol=NEGLIGIBLE * 1.01)
    assert (weights[label != 0] == 0).all()  # the objects, and the ignored row
    # Chosen pixels by hand: above the squares' junction, 2 px from each (or in the gap, 1 and 2 px away).
    y, x, d1, d2 = (8, 17, 2, math.hypot(2, 1)) if layout == "touching classes" else (20, 18, 1, 2)
    assert weights[y, x] == pytest.approx(10 * math.exp(-((d1 + d2) ** 2) / 50), abs=1e-4)


def test_weights_go_into_cross_entropy_with_the_class_weights_and_not_into_dice():
    y_pred = np.array([[[[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]]], np.float32)  # (1, 1, 3, 2)
    ids = np.array([[[1, 0, IGNORE_LABEL]]], np.float32)
    border = np.array([[[0.0, 3.0, 5.0]]], np.float32)  # the ignored pixel's border term must not count
    targets = np.stack([ids, border], axis=-1)  # (1, 1, 3, 2)
    ce = float(build_loss([1.0, 2.0], weight_map=True)(targets, y_pred))
    assert ce == pytest.approx((2 * -math.log(0.8) + (1 + 3) * -math.log(0.6)) / 2, rel=1e-5)
    with_dice = float(build_loss([1.0, 2.0], dice_loss=True, weight_map=True)(targets, y_pred))
    plain_dice = float(dice()(ids.astype(np.uint8), y_pred))
    assert with_dice == pytest.approx(ce + plain_dice, rel=1e-5)
    focal = float(build_loss([1.0, 2.0], focal_loss=True, weight_map=True)(targets, y_pred))
    expected = 0.5 * (2 * 0.2**2 * -math.log(0.8) + 4 * 0.4**2 * -math.log(0.6)) / 2
    assert focal == pytest.approx(expected, rel=1e-5)
    assert float(cross_entropy([1.0, 2.0])(ids.astype(np.uint8), y_pred)) < ce  # the border term adds weight


def test_pipeline_gives_ids_and_weights(tiny_voc):
    samples = split_samples(tiny_voc, "train")
    pipeline = Pipeline((32, 32), weight_map=WeightMap(10.0, 5.0, (1, 2)))
    images, targets = next(iter(build_train_dataset(samples, pipeline, 2, seed=1)))
    targets = targets.numpy()
    assert targets.shape == (2, 32, 32, 2) and targets.dtype == np.float32
    ids, weights = targets[..., 0], targets[..., 1]
    assert set(np.unique(ids)) <= {0, 1, 2, IGNORE_LABEL}
    assert (weights >= 0).all() and (weights <= 10).all() and weights.max() > 0
    assert (weights[ids != 0] == 0).all()  # only the gaps (class 0 here) carry the border term
