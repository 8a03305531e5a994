"""Every `model` through the scripts as a user runs them: train.py, get_miou.py and predict.py on a tiny tree. The
unet_small case is also the sigmoid head's (on the tree's 2-class variant): threshold sweep, threshold in predict.py,
export and the ONNX backend."""

import csv
import glob
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from tests.helpers import BINARY_CLASSES, HAS_ONNX, TINY_CLASSES, make_tiny_voc, run_script
from utils.checkpoint import read_settings

HEAD_RUNS = {  # scale modes: slide for unet_small (32 x 32 crops and windows) and unet_classic (auto), else fit
    "fcn8": ["--input_shape", "32", "32"],
    "unet_small": ["--input_shape", "32", "32", "--scale_mode", "slide", "--head", "sigmoid"],
    "unet_classic": ["--input_shape", "220", "220"],  # 48 x 40 images: windows of 36 x 36 output
    # offline, model_path auto finds no ImageNet file for these encoders: random, and no freeze phase ...
    "unet mobilenetv2": ["--input_shape", "32", "32"],
    "unet efficientnetv2b0": ["--input_shape", "32", "32"],
    "deeplabv3plus resnet50": ["--input_shape", "32", "32"],
    # ... while an empty model_path keeps the two phases (the encoder is frozen at random)
    "deeplabv3plus mobilenetv2": ["--input_shape", "32", "32", "--model_path", ""],
}
SCALE_MODES = {"unet_small": "slide", "unet_classic": "slide"}
ONNX_RUNS = ("unet_small", "deeplabv3plus mobilenetv2")  # export to ONNX and predict with the onnx backend too
# With -m slow only: networks of 200-300 layers take 10-20 s to trace a training step, and FCN-8s' 134 M parameters
# make each checkpoint half a gigabyte. The others cover their model, encoder and scale mode (tests/test_encoders.py
# the networks' shapes, names and weights; test_nets.py and test_weights.py FCN-8s').
SLOW_RUNS = ("fcn8", "unet efficientnetv2b0", "deeplabv3plus resnet50")


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW_RUNS else []) for n in HEAD_RUNS]
)
def test_train_predict_and_evaluate_each_head(name, tmp_path):
    binary = "sigmoid" in HEAD_RUNS[name]  # one output, 2 classes
    voc, logs = make_tiny_voc(tmp_path, binary), str(tmp_path / "logs")
    names = BINARY_CLASSES if binary else TINY_CLASSES
    model, backbone = (name.split() + ["vgg"])[:2]
    scale_mode = SCALE_MODES.get(name, "fit")
    settings = ["--model", model, "--backbone", backbone, *HEAD_RUNS[name], "--num_classes", str(len(names))]
    settings += ["--precision", "fp32"]
    args = [*settings, "--vocdevkit_path", voc, "--save_dir", logs, "--freeze_epoch", "1", "--unfreeze_epoch", "2"]
    result = run_script("train.py", *args, "--freeze_batch_size", "4", "--unfreeze_batch_size", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Scale: {scale_mode}:" in result.stdout
    if backbone != "vgg" and "--model_path" not in HEAD_RUNS[name]:  # offline: no ImageNet file to fetch
        assert "random initialisation: the ImageNet" in result.stdout and "freeze_train false" in result.stdout
        assert "Unfrozen phase: epochs 1-2" in result.stdout
    else:
        assert "Frozen phase: epochs 1-1" in result.stdout and "Unfrozen phase: epochs 2-2" in result.stdout
    # Networks with batch normalisation evaluate with statistics recomputed from the training images.
    assert ("(precise BN)" in result.stdout) == (name not in ("fcn8", "unet_classic"))
    if name == "fcn8":
        assert "loaded 13 layers" in result.stdout  # the VGG16 encoder: ImageNet or HED weights
    elif backbone == "vgg":
        assert "no pretrained encoder" in result.stdout
    (run_dir,) = glob.glob(os.path.join(logs, "loss_*"))
    with open(os.path.join(run_dir, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and all(np.isfinite(float(r["loss"])) for r in rows)

    # get_miou.py predicts the val images at their size (overlap-tile for the classic UNet) and agrees with
    # the val mIoU that training measured on the same weights; the weights file says which network they fill
    weights = os.path.join(logs, "last_epoch_weights.weights.h5")
    out = tmp_path / "miou_out"
    args = ["--model_path", weights, "--precision", "fp32", "--vocdevkit_path", voc, "--miou_out_path", out]
    result = run_script("get_miou.py", *args, *(["--thresholds", "0.02", "0.98"] if binary else []))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "summary.json") as f:
        summary = json.load(f)
    assert abs(summary["mIoU"] - float(rows[-1]["val_miou"])) <= 0.1
    if binary:  # the sweep: the threshold changes the masks, and the best one is named
        assert read_settings(weights).head == "sigmoid" and "Best threshold:" in result.stdout
        low, high = summary["threshold_sweep"]
        assert low["IoU_1"] != high["IoU_1"]
    with Image.open(next((out / "detection-results").glob("*.png"))) as prediction:
        assert prediction.size == (40, 48)

    # predict.py and export.py with only the weights file: it records the network, its size and its classes
    image = os.path.join(voc, "VOC2007", "JPEGImages", "img 10.jpg")
    args = ["--model_path", weights, "--precision", "fp32", "--show", "false", "--count", "true"]
    threshold = ["--threshold", "0.98", "--mix_type", "1"] if binary else []  # few pixels above 0.98
    result = run_script("predict.py", *args, *threshold, cwd=tmp_path, stdin=image + "\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(rf"model +{model}\n", result.stdout) and all(c in result.stdout for c in names)
    assert re.search(rf"backbone +{backbone}\n", result.stdout)
    if binary:  # class 1 drawn where P > 0.98: fewer pixels than get_miou.py's at 0.5
        drawn = np.asarray(Image.open(tmp_path / "img_out" / "img 10.png").convert("RGB"))
        at_half = np.asarray(Image.open(out / "detection-results" / "img 10.png"))
        assert (drawn.any(axis=-1)).sum() < (at_half == 1).sum()
    assert re.search(rf"scale_mode +{scale_mode}\n", result.stdout)  # as recorded in the weights
    with Image.open(tmp_path / "img_out" / "img 10.png") as saved:
        assert saved.size == (40, 48)
    # unet_small slides: its export is one window, the window slides around it
    onnx = name in ONNX_RUNS and HAS_ONNX
    formats = ["savedmodel", "onnx"] if onnx else ["savedmodel"]
    export = ["--model_path", weights, "--export_dir", tmp_path / "export", "--formats", *formats]
    result = run_script("export.py", *export, "--parity_images", os.path.dirname(image), "--parity_count", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(rf"model +{model}\n", result.stdout) and "savedmodel" in result.stdout and ": ok" in result.stdout
    if onnx:
        args = ["--backend", "onnx", "--model_path", tmp_path / "export" / "model.onnx", "--show", "false"]
        result = run_script("predict.py", *args, cwd=tmp_path / "export", stdin=image + "\n")
        assert result.returncode == 0, result.stderr[-3000:]
        assert re.search(rf"scale_mode +{scale_mode}\n", result.stdout)
        with Image.open(tmp_path / "export" / "img_out" / "img 10.png") as saved:
            assert saved.size == (40, 48)
