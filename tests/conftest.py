"""Shared fixtures: a tiny VOC tree in tmp_path and a runner for the top-level scripts."""

import csv
import glob
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def write_voc(root, samples: dict, splits: dict) -> str:
    """Writes {id: (image array, label array)} and {split: [ids]} as a VOC tree under root/VOCdevkit."""
    voc = os.path.join(root, "VOCdevkit", "VOC2007")
    for folder in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
        os.makedirs(os.path.join(voc, folder), exist_ok=True)
    for sample_id, (image, label) in samples.items():
        Image.fromarray(image).save(os.path.join(voc, "JPEGImages", f"{sample_id}.jpg"), quality=95)
        Image.fromarray(label).save(os.path.join(voc, "SegmentationClass", f"{sample_id}.png"))
    for split, ids in splits.items():
        with open(os.path.join(voc, "ImageSets", "Segmentation", f"{split}.txt"), "w") as f:
            f.write("\n".join(ids) + "\n")
    return os.path.join(root, "VOCdevkit")


def make_tiny_voc(root) -> str:
    """A VOC tree of 10 train + 4 val 48x40 images (non-square), 3 classes: stripes of class 1 and 2."""
    rng = np.random.default_rng(0)
    samples = {}
    for i in range(14):
        label = np.zeros((48, 40), np.uint8)
        label[8:20, 4 + i : 20 + i] = 1
        label[28:44, 10:30] = 2
        label[0, :] = 255  # a VOC-style ignore border
        image = (rng.uniform(0, 60, (48, 40, 3)) + 90 * label[..., None] % 255).astype(np.uint8)
        samples[f"img {i:02d}"] = (image, label)  # a space in the id, as users' files have
    ids = sorted(samples)
    return write_voc(root, samples, {"train": ids[:10], "val": ids[10:], "trainval": ids})


@pytest.fixture
def tiny_voc(tmp_path):
    return make_tiny_voc(tmp_path)


# Settings of the tiny model that `trained` trains; predict.py and get_miou.py take the same flags.
TINY_MODEL = ["--input_shape", "32", "32", "--num_classes", "3", "--precision", "fp32"]


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny VGG16-UNet trained by train.py for 2 epochs (1 frozen, 1 not) on a tiny VOC tree.

    Returns {"voc": dataset root, "logs": save_dir, "weights": last_epoch_weights, "val_miou": epoch 2's}.
    """
    root = tmp_path_factory.mktemp("trained")
    voc, logs = make_tiny_voc(root), str(root / "logs")
    args = [*TINY_MODEL, "--model_path", "", "--vocdevkit_path", voc, "--save_dir", logs]
    args += ["--freeze_epoch", "1", "--unfreeze_epoch", "2", "--freeze_batch_size", "4", "--unfreeze_batch_size", "2"]
    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = glob.glob(os.path.join(logs, "loss_*"))
    with open(os.path.join(run_dir, "history.csv")) as f:
        val_miou = float(list(csv.DictReader(f))[-1]["val_miou"])
    weights = os.path.join(logs, "last_epoch_weights.weights.h5")
    return {"voc": voc, "logs": logs, "weights": weights, "val_miou": val_miou}


def digest(folder) -> dict:
    """sha256 of every file under folder: to show that a tool left a dataset byte-identical."""
    return {
        p: hashlib.sha256(open(p, "rb").read()).hexdigest()
        for p in glob.glob(f"{folder}/**/*", recursive=True)
        if os.path.isfile(p)
    }


def run_script(script: str, *args, cwd=None, timeout=600, stdin=None) -> subprocess.CompletedProcess:
    """Runs a top-level script as a user would: python <script> <args>, from `cwd` (default: the repo)."""
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, script), *map(str, args)],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )
