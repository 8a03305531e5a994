"""The sigmoid head for 2-class data: trained by train.py, predicted at a threshold, swept by get_miou.py, exported."""

import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from tests.helpers import HAS_ONNX, run_script, write_voc
from utils.checkpoint import read_settings
from utils.losses import build_loss
from utils.prediction import check_threshold


def make_binary_voc(root) -> str:
    """12 train + 4 val 40x40 images of one bright square class on a noisy background (2 classes)."""
    rng = np.random.default_rng(3)
    samples = {}
    for i in range(16):
        label = np.zeros((40, 40), np.uint8)
        label[6 + i % 5 : 22 + i % 5, 8:30] = 1
        image = (rng.uniform(0, 120, (40, 40, 3)) + 100 * label[..., None]).astype(np.uint8)
        samples[f"b{i:02d}"] = (image, label)
    ids = sorted(samples)
    return write_voc(root, samples, {"train": ids[:12], "val": ids[12:]})


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


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("binary")
    voc, logs = make_binary_voc(root), str(root / "logs")
    result = run_script(
        "train.py", "--model", "unet_small", "--head", "sigmoid", "--num_classes", "2", "--input_shape", "32", "32",
        "--model_path", "", "--precision", "fp32", "--freeze_train", "false", "--unfreeze_epoch", "2",
        "--unfreeze_batch_size", "2", "--vocdevkit_path", voc, "--save_dir", logs,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    weights, out = os.path.join(logs, "last_epoch_weights.weights.h5"), str(root / "miou")
    args = ["--model_path", weights, "--vocdevkit_path", voc, "--miou_out_path", out]
    result = run_script("get_miou.py", *args, "--thresholds", "0.02", "0.3", "0.98")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(out, "summary.json")) as f:
        sweep = {row["threshold"]: row for row in json.load(f)["threshold_sweep"]}
    return {"root": root, "voc": voc, "weights": weights, "sweep": sweep, "stdout": result.stdout}


def test_sigmoid_head_trains_predicts_at_a_threshold_and_is_swept(binary_run):
    weights, voc, root = binary_run["weights"], binary_run["voc"], binary_run["root"]
    assert read_settings(weights).head == "sigmoid"  # the checkpoint records the head
    assert "Best threshold:" in binary_run["stdout"]
    sweep = binary_run["sweep"]
    assert sweep[0.02]["IoU_1"] != sweep[0.98]["IoU_1"]  # the threshold changes the mask
    # predict.py takes the threshold too: its masks at 0.98 differ from get_miou.py's at 0.5 (the fixture's pass).
    folder, out = os.path.join(voc, "VOC2007", "JPEGImages"), str(root / "predicted")
    flags = ["--model_path", weights, "--threshold", "0.98", "--mode", "dir_predict", "--dir_origin_path", folder]
    result = run_script("predict.py", *flags, "--dir_save_path", out, "--save_mask", "--save_picture", "false")
    assert result.returncode == 0, result.stderr[-3000:]
    at_half = np.asarray(Image.open(root / "miou" / "detection-results" / "b12.png"))
    at_098 = np.asarray(Image.open(os.path.join(out, "masks", "b12.png")))
    assert at_098.sum() < at_half.sum()  # fewer pixels above 0.98 than above 0.5


@pytest.mark.parametrize("threshold, num_classes", [(1.5, 2), (0.0, 2), (0.3, 3)])
def test_a_threshold_that_cannot_work_is_refused(threshold, num_classes):
    with pytest.raises(ValueError, match=f"threshold={threshold}"):
        check_threshold(threshold, num_classes)


def test_sigmoid_head_exports_with_parity_and_runs_on_onnx(binary_run):
    weights, voc, root = binary_run["weights"], binary_run["voc"], binary_run["root"]
    export_dir = str(root / "export")
    formats = ["savedmodel", "onnx"] if HAS_ONNX else ["savedmodel"]
    images = os.path.join(voc, "VOC2007", "JPEGImages")
    result = run_script(
        "export.py", "--model_path", weights, "--parity_images", images, "--export_dir", export_dir,
        "--formats", *formats,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.count(": ok") == len(formats)
    if not HAS_ONNX:
        return
    out, onnx = str(root / "miou_onnx"), os.path.join(export_dir, "model.onnx")
    flags = ["--backend", "onnx", "--model_path", onnx, "--vocdevkit_path", voc, "--threshold", "0.3"]
    result = run_script("get_miou.py", *flags, "--miou_out_path", out)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(out, "summary.json")) as f:
        assert json.load(f)["mIoU"] == pytest.approx(binary_run["sweep"][0.3]["mIoU"], abs=0.05)  # Keras' at 0.3
