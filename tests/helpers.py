"""Helpers the test modules share: a tiny VOC tree, the script runner, digests and the tiny model's settings."""

import glob
import hashlib
import importlib.util
import os
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The optional export packages (requirements-export.txt): ONNX export and the onnxruntime backend.
HAS_ONNX = all(importlib.util.find_spec(name) for name in ("tf2onnx", "onnxruntime"))

# Settings of the tiny model that conftest's `trained` fixture trains; predict.py and get_miou.py take them too.
TINY_MODEL = ["--input_shape", "32", "32", "--num_classes", "3", "--precision", "fp32"]
# train.py on a tiny tree: the tiny model from random initialisation (no encoder weights to find).
TINY_TRAIN = [*TINY_MODEL, "--model_path", ""]
# The tiny tree's classes (its classes.txt): train.py records them in the weights.
TINY_CLASSES = ["background", "upper", "lower"]
BINARY_CLASSES = ["background", "stripe"]  # make_tiny_voc's binary variant
# The 13 convolutions of VGG16, as keras.applications names them.
VGG_CONVS = [f"block{i}_conv{j}" for i, n in enumerate([2, 2, 3, 3, 3], 1) for j in range(1, n + 1)]


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


def make_tiny_voc(root, binary: bool = False) -> str:
    """A VOC tree of 10 train + 4 val 48x40 images (non-square), 3 classes (TINY_CLASSES, in classes.txt): stripes
    of class 1 and 2; with binary, 2 classes (BINARY_CLASSES): both stripes class 1."""
    rng = np.random.default_rng(0)
    samples = {}
    for i in range(14):
        label = np.zeros((48, 40), np.uint8)
        label[8:20, 4 + i : 20 + i] = 1
        label[28:44, 10:30] = 2
        label[0, :] = 255  # a VOC-style ignore border
        image = (rng.uniform(0, 60, (48, 40, 3)) + 90 * label[..., None] % 255).astype(np.uint8)
        if binary:
            label = np.where(label == 2, 1, label).astype(np.uint8)
        samples[f"img {i:02d}"] = (image, label)  # a space in the id, as users' files have
    ids = sorted(samples)
    voc = write_voc(root, samples, {"train": ids[:10], "val": ids[10:], "trainval": ids})
    with open(os.path.join(voc, "classes.txt"), "w") as f:  # as json_to_dataset.py writes it
        f.write("\n".join(BINARY_CLASSES if binary else TINY_CLASSES) + "\n")
    return voc


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
