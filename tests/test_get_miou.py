"""get_miou.py end to end on a tiny VOC tree, with weights trained by train.py."""

import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from tests.helpers import TINY_MODEL, run_inline, run_script
from utils.metrics import (
    frequency_weighted_iou,
    mean_iou,
    per_class_dice,
    per_class_iou,
    per_class_precision,
    per_class_recall,
    pixel_accuracy,
)
from utils.prediction.report import summarize

NAMES = ["background", "upper", "lower"]


def miou_args(trained, out, *extra):
    return [*TINY_MODEL, "--model_path", trained["weights"], "--vocdevkit_path", trained["voc"]] + [
        "--miou_out_path",
        out,
        "--name_classes",
        *NAMES,
        *extra,
    ]


def read_matrix(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["true \\ predicted", *NAMES] and [r[0] for r in rows[1:]] == NAMES
    return np.array([[int(v) for v in row[1:]] for row in rows[1:]])


def test_outputs_agree_with_the_confusion_matrix_and_with_training(trained, tmp_path):
    out = tmp_path / "miou_out"
    result = run_script("get_miou.py", *miou_args(trained, out), "--batch_size", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    charts = ["mIoU.png", "Dice.png", "mPA.png", "Recall.png", "Precision.png", "confusion_matrix.png"]
    for name in [*charts, "confusion_matrix.csv", "summary.json"]:
        assert os.path.getsize(out / name) > 0, name
    predictions = sorted(os.listdir(out / "detection-results"))
    assert predictions == [f"img {i}.png" for i in range(10, 14)]
    assert Image.open(out / "detection-results" / "img 10.png").size == (40, 48)

    matrix = read_matrix(out / "confusion_matrix.csv")
    assert matrix.sum() == 4 * (48 - 1) * 40  # every pixel of the 4 val labels but the ignored top row
    with open(out / "summary.json") as f:
        summary = json.load(f)
    assert summary["images"] == 4
    assert summary["mIoU"] == pytest.approx(100 * mean_iou(matrix), abs=1e-3)
    assert summary["accuracy"] == pytest.approx(100 * pixel_accuracy(matrix), abs=1e-3)
    assert summary["fwIoU"] == pytest.approx(100 * frequency_weighted_iou(matrix), abs=1e-3)
    assert summary["mDice"] == pytest.approx(100 * np.nanmean(per_class_dice(matrix)), abs=1e-3)
    for c, entry in enumerate(summary["classes"]):
        assert entry["name"] == NAMES[c] and entry["label_pixels"] == matrix[c].sum()
        for key, metric in [("IoU", per_class_iou), ("recall", per_class_recall), ("precision", per_class_precision)]:
            value = metric(matrix)[c]
            assert entry[key] is None if np.isnan(value) else entry[key] == pytest.approx(100 * value, abs=1e-3)
    assert f"mIoU {summary['mIoU']:.2f}" in result.stdout

    # per_image.csv: the images' confusion rows pooled are the dataset's matrix; the worst images come first.
    with open(out / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 * len(NAMES) and {row["image"] for row in rows} == {f"img {i}" for i in range(10, 14)}
    pooled = np.zeros_like(matrix)
    for row in rows:
        pooled[NAMES.index(row["class"])] += [int(row[f"as_{name}"]) for name in NAMES]
    assert (pooled == matrix).all()
    image_mious = [float(row["image_mIoU"]) for row in rows[:: len(NAMES)]]
    assert image_mious == sorted(image_mious) and summary["worst_images"][0]["image"] == rows[0]["image"]
    for row in rows:
        tp, fp, fn = int(row["TP"]), int(row["FP"]), int(row["FN"])
        if row["IoU"]:
            assert float(row["IoU"]) == pytest.approx(100 * tp / (tp + fp + fn), abs=1e-3)
        assert (row["HD95_px"] == "") == (int(row["label_pixels"]) == 0)
    assert os.path.getsize(out / "worst_images.png") > 0 and "Lowest mIoU: " + rows[0]["image"] in result.stdout

    # The val mIoU train.py logged for these weights is get_miou.py's, to 0.1 points.
    assert abs(summary["mIoU"] - trained["val_miou"]) <= 0.1

    # miou_mode 2 computes the same figures again from the saved predictions, without a model.
    again = run_inline("get_miou.py", *miou_args(trained, out, "--miou_mode", "2"))
    assert again.returncode == 0 and "Unet:" not in again.stdout
    with open(out / "summary.json") as f:
        assert json.load(f) == summary


def test_compute_only_without_predictions_says_what_to_run(trained, tmp_path):
    result = run_script("get_miou.py", *miou_args(trained, tmp_path / "empty", "--miou_mode", "2"))  # its exit status
    assert result.returncode == 2 and "no predictions to compute mIoU from" in result.stderr
    assert "--miou_mode 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_summary_of_a_class_never_labelled_nor_predicted():
    matrix = np.array([[5, 1, 0], [2, 4, 0], [0, 0, 0]])
    summary = summarize(matrix, NAMES)
    assert summary["classes"][2]["IoU"] is None and summary["classes"][2]["recall"] is None
    assert summary["mIoU"] == pytest.approx(100 * (5 / 8 + 4 / 7) / 2, abs=1e-3)
    assert summary["accuracy"] == pytest.approx(100 * 9 / 12, abs=1e-3)


def test_tta_through_get_miou_and_predict_is_the_predictors(trained, tmp_path):
    """--tta through both scripts: their masks are those of Unet(tta=...), the one prediction path."""
    from unet import Unet

    out = tmp_path / "miou_out"
    result = run_inline("get_miou.py", *miou_args(trained, out, "--tta", "hflip", "vflip", "--precision", "fp32"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Test-time augmentation: " in result.stdout
    unet = Unet(model_path=trained["weights"], precision="fp32", tta=["hflip", "vflip"])
    images = os.path.join(trained["voc"], "VOC2007", "JPEGImages")
    for name in sorted(os.listdir(out / "detection-results")):
        expected = np.asarray(unet.get_miou_png(Image.open(os.path.join(images, name.replace(".png", ".jpg")))))
        np.testing.assert_array_equal(np.asarray(Image.open(out / "detection-results" / name)), expected)
    saved = tmp_path / "predicted"
    args = ["--model_path", trained["weights"], "--precision", "fp32", "--show", "false", "--tta", "hflip", "vflip"]
    args += ["--mode", "dir_predict", "--dir_origin_path", images, "--dir_save_path", saved, "--save_mask"]
    result = run_inline("predict.py", *args)
    assert result.returncode == 0 and "Test-time augmentation: " in result.stdout, result.stderr[-3000:]
    for name in ("img 10", "img 13"):
        expected = np.asarray(unet.get_miou_png(Image.open(os.path.join(images, f"{name}.jpg"))))
        np.testing.assert_array_equal(np.asarray(Image.open(saved / "masks" / f"{name}.png")), expected)
