"""Every `model` through the scripts as a user runs them: train.py, get_miou.py, predict.py and export.py on a tiny
tree, one epoch each (the two phases: conftest's shared run, and test_distribute's). Each case also carries
options that have their own unit tests, to show they work through the scripts:
- unet_small: 4-band 16-bit TIFFs, scale mode slide, the sigmoid head (threshold sweep, threshold in predict.py),
  export and the ONNX backend;
- unet_classic: grey images taken as 3 bands (--input_channels 3), the weight map, elastic deformation, rotation,
  multiples of 90 degrees, vertical flips and shear;
- unet mobilenetv2: SGD with the step schedule;
- deeplabv3plus mobilenetv2: RGB images taken as 1 band (--input_channels 1), ONNX."""

import json
import os
import re
from dataclasses import dataclass, field

import h5py
import numpy as np
import pytest
from PIL import Image

from nets.models import build_model
from tests.helpers import (
    BINARY_CLASSES,
    HAS_ONNX,
    TINY_CLASSES,
    history_rows,
    make_tiny_voc,
    run_script,
    write_band_voc,
)
from train import TrainConfig
from utils.planning.rules import SCRATCH_LR
from utils.training.learning_rate import learning_rate, scaled_learning_rates
from utils.training.resumable import OPTIMIZER_GROUP
from utils.weights.checkpoint import read_settings

# one epoch of the whole network, as set (the unet mobilenetv2 case runs with the plan: tests/test_planner.py)
ONE_EPOCH = ["--freeze_train", "false", "--unfreeze_epoch", "1", "--unfreeze_batch_size", "2", "--plan", "false"]
RECIPE = ["--weight_map", "true", "--elastic_alpha", "10", "--elastic_sigma", "16", "--rotation", "10"]
RECIPE += ["--rotate_90", "true", "--vertical_flip", "true", "--shear", "5"]


@dataclass(frozen=True)
class Case:
    flags: list  # train.py's settings beyond the tree and save_dir
    tree: str = "rgb"  # rgb | grey (make_tiny_voc) | bands4 (write_band_voc's 4-band uint16 TIFFs, 2 classes)
    scale_mode: str = "fit"
    image: str = "img 10.jpg"  # a val image to predict
    onnx: bool = False  # export to ONNX too, and predict with the onnx backend
    channels: int = 3  # the bands the network takes
    checks: dict = field(default_factory=dict)  # lines train.py prints for this case's options


CASES = {
    "unet_small": Case(
        ["--input_shape", "32", "32", "--scale_mode", "slide", "--head", "sigmoid", *ONE_EPOCH], "bands4", "slide",
        "im10.tif", onnx=True, channels=4,
        checks={"bands": "Images: 4 bands, uint16: each band's 1-99.8 percentile range"},
    ),
    "unet_classic": Case(  # 48 x 40 images: windows of 36 x 36 output
        ["--input_shape", "220", "220", "--input_channels", "3", *RECIPE, *ONE_EPOCH], "grey", "slide",
        checks={"bands": "Images: RGB (3 bands), 8-bit"},
    ),
    # offline, model_path auto finds no ImageNet file for these encoders: random, and no freeze phase ...
    "unet mobilenetv2": Case(  # freeze_train not given: planned off for the random encoder, and said so
        ["--input_shape", "32", "32", "--optimizer_type", "sgd", "--lr_decay_type", "step", "--freeze_epoch", "1"]
        + ["--unfreeze_epoch", "1", "--unfreeze_batch_size", "2"],
        checks={"schedule": "(step)"},
    ),
    "unet efficientnetv2b0": Case(["--input_shape", "32", "32", *ONE_EPOCH]),
    "deeplabv3plus resnet50": Case(["--input_shape", "32", "32", *ONE_EPOCH]),
    "deeplabv3plus mobilenetv2": Case(
        ["--input_shape", "32", "32", "--model_path", "", "--input_channels", "1", *ONE_EPOCH],
        onnx=True, channels=1, checks={"bands": "Images: grey (1 band), 8-bit"},
    ),
    "fcn8": Case(["--input_shape", "32", "32", *ONE_EPOCH]),
}  # fmt: skip
# With -m slow only: networks of 200-300 layers take 10-20 s to trace a training step, and FCN-8s' 134 M parameters
# make each checkpoint half a gigabyte. The others cover their model, encoder and scale mode (tests/test_encoders.py
# the networks' shapes, names and weights; test_nets.py and test_weights.py FCN-8s').
SLOW_RUNS = ("fcn8", "unet efficientnetv2b0", "deeplabv3plus resnet50")


def make_tree(folder, case: Case) -> str:
    if case.tree == "bands4":
        return write_band_voc(folder, "bands4", binary=True)
    return make_tiny_voc(folder, grey=case.tree == "grey")


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW_RUNS else []) for n in CASES])
def test_train_predict_and_evaluate_each_head(name, tmp_path):
    case = CASES[name]
    binary = "sigmoid" in case.flags  # one output, 2 classes
    voc, logs = make_tree(tmp_path, case), str(tmp_path / "logs")
    names = BINARY_CLASSES if binary else TINY_CLASSES
    model, backbone = (name.split() + ["vgg"])[:2]
    settings = ["--model", model, "--backbone", backbone, *case.flags, "--num_classes", str(len(names))]
    settings += ["--precision", "fp32"]
    result = run_script("train.py", *settings, "--vocdevkit_path", voc, "--save_dir", logs)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Scale: {case.scale_mode}:" in result.stdout
    for line in case.checks.values():
        assert line in result.stdout, line
    if backbone != "vgg" and "--model_path" not in case.flags:  # offline: no ImageNet file to fetch
        assert "random initialisation: the ImageNet" in result.stdout
        if "--freeze_train" not in case.flags:  # planned (utils/planning/rules.py)
            assert "a random encoder has nothing to keep: no frozen phase" in result.stdout
    assert "Unfrozen phase: epochs 1-1" in result.stdout and "Frozen phase" not in result.stdout
    # Networks with batch normalisation evaluate with statistics recomputed from the training images.
    assert ("(precise BN)" in result.stdout) == (name not in ("fcn8", "unet_classic"))
    if name == "fcn8":
        assert "loaded 13 layers" in result.stdout  # the VGG16 encoder: ImageNet or HED weights
    elif backbone == "vgg":
        assert "no pretrained encoder" in result.stdout
    rows = history_rows(logs)
    assert [int(r["epoch"]) for r in rows] == [1]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    weights = os.path.join(logs, "last_epoch_weights.weights.h5")
    recorded = read_settings(weights)
    assert recorded.bands.channels == case.channels
    if case.tree == "bands4":  # the 16-bit bands' ranges, as measured on the train split
        assert recorded.bands.dtype == "uint16" and len(recorded.bands.ranges) == 4
    if "sgd" in case.flags:  # SGD keeps one momentum per variable (Adam two), and the rate follows the step schedule
        with h5py.File(os.path.join(logs, "resume_epoch001.weights.h5")) as h5:
            slots = [name for name, array in h5[OPTIMIZER_GROUP].items() if array.shape]  # not the step, the rate
        trainable = build_model(model, (32, 32), 3, backbone, bands=recorded.bands).trainable_variables
        assert len(slots) == len(trainable)
        rates = scaled_learning_rates(SCRATCH_LR, TrainConfig.min_lr, 2, "sgd")  # the planned rate, sgd's clamp
        expected = float(learning_rate(1.0, 1, *rates, "step"))  # after epoch 1 of 1
        assert float(rows[0]["learning_rate"]) == pytest.approx(expected, rel=1e-4)
        assert expected != pytest.approx(float(learning_rate(1.0, 1, *rates, "cos")), rel=1e-2)

    # get_miou.py predicts the val images at their size (overlap-tile for the classic UNet) and agrees with
    # the val mIoU that training measured on the same weights; the weights file says which network they fill
    out = tmp_path / "miou_out"
    args = ["--model_path", weights, "--precision", "fp32", "--vocdevkit_path", voc, "--miou_out_path", out]
    result = run_script("get_miou.py", *args, *(["--thresholds", "0.02", "0.98"] if binary else []))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "summary.json") as f:
        summary = json.load(f)
    assert abs(summary["mIoU"] - float(rows[-1]["val_miou"])) <= 0.1
    if binary:  # the sweep: the threshold changes the masks, and the best one is named
        assert recorded.head == "sigmoid" and "Best threshold:" in result.stdout
        low, high = summary["threshold_sweep"]
        assert low["IoU_1"] != high["IoU_1"]
    stem = os.path.splitext(case.image)[0]
    size = (48, 40) if case.tree == "bands4" else (40, 48)  # (width, height) of the val images
    with Image.open(out / "detection-results" / f"{stem}.png") as prediction:
        assert prediction.size == size

    # predict.py and export.py with only the weights file: it records the network, its size and its classes
    image = os.path.join(voc, "VOC2007", "JPEGImages", case.image)
    args = ["--model_path", weights, "--precision", "fp32", "--show", "false", "--count", "true"]
    extra = ["--threshold", "0.98", "--mix_type", "1"] if binary else []  # few pixels above 0.98
    extra += ["--display_bands", "3", "2", "1"] if case.tree == "bands4" else []  # bands 4, 3, 2 as R, G, B
    result = run_script("predict.py", *args, *extra, cwd=tmp_path, stdin=image + "\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(rf"model +{model}\n", result.stdout) and all(c in result.stdout for c in names)
    assert re.search(rf"backbone +{backbone}\n", result.stdout)
    assert re.search(rf"scale_mode +{case.scale_mode}\n", result.stdout)  # as recorded in the weights
    with Image.open(tmp_path / "img_out" / f"{stem}.png") as saved:
        assert saved.size == size and saved.mode == "RGB"
    if binary:  # class 1 drawn where P > 0.98: fewer pixels than get_miou.py's at 0.5
        drawn = np.asarray(Image.open(tmp_path / "img_out" / f"{stem}.png").convert("RGB"))
        at_half = np.asarray(Image.open(out / "detection-results" / f"{stem}.png"))
        assert (drawn.any(axis=-1)).sum() < (at_half == 1).sum()
    # unet_small slides: its export is one window, the window slides around it; parity on the real images
    formats = ["savedmodel", "onnx"] if case.onnx and HAS_ONNX else ["savedmodel"]
    export = ["--model_path", weights, "--export_dir", tmp_path / "export", "--formats", *formats]
    result = run_script("export.py", *export, "--parity_images", os.path.dirname(image), "--parity_count", "2")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert re.search(rf"model +{model}\n", result.stdout) and "savedmodel" in result.stdout
    # onnx: at input_shape and at two other sizes (its height and width are dynamic)
    assert result.stdout.count(": ok") == len(formats) + 2 * ("onnx" in formats) and "FAILED" not in result.stdout
    if len(formats) > 1:
        args = ["--backend", "onnx", "--model_path", tmp_path / "export" / "model.onnx", "--show", "false"]
        result = run_script("predict.py", *args, cwd=tmp_path / "export", stdin=image + "\n")
        assert result.returncode == 0, result.stderr[-3000:]
        assert re.search(rf"scale_mode +{case.scale_mode}\n", result.stdout)
        with Image.open(tmp_path / "export" / "img_out" / f"{stem}.png") as saved:
            assert saved.size == size
    elif case.onnx:
        pytest.skip("the ONNX export and backend: pip install -r requirements-export.txt")
