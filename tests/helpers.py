"""Helpers the test modules share: a tiny VOC tree, the script runner, digests and the tiny model's settings."""

import contextlib
import csv
import glob
import hashlib
import importlib.util
import io
import os
import runpy
import shutil
import subprocess
import sys
import traceback

import keras
import numpy as np
import tifffile
from PIL import Image

from nets.fcn import build_fcn8
from nets.models import build_model
from utils.precision import cpu_has_bf16

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The optional export packages (requirements-export.txt): ONNX export and the onnxruntime backend.
HAS_ONNX = all(importlib.util.find_spec(name) for name in ("tf2onnx", "onnxruntime"))

# The mixed-precision policy the tests of mixed precision's plumbing use: bfloat16 where the CPU has it natively (as
# oneDNN may use it: ONEDNN_MAX_CPU_ISA), float16 elsewhere (bfloat16 is emulated slowly there, or not at all).
MIXED = "mixed_bfloat16" if cpu_has_bf16() else "mixed_float16"
# export.py's formats, and those it can write here (ONNX needs requirements-export.txt)
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
ALL_FORMATS = ["savedmodel", "tflite_fp32", "tflite_fp16", "tflite_int8", "onnx", "openvino"]
EXPORT_FORMATS = [name for name in ALL_FORMATS if {"onnx": HAS_ONNX, "openvino": HAS_OPENVINO}.get(name, True)]
# Settings of the tiny model that conftest's `trained` fixture trains; predict.py and get_miou.py take them too.
TINY_MODEL = ["--input_shape", "32", "32", "--num_classes", "3", "--precision", "fp32"]
# train.py on a tiny tree: the tiny model from random initialisation (no encoder weights to find), with the
# defaults the tests are written for rather than a plan (tests/test_planner.py tests the plan).
TINY_TRAIN = [*TINY_MODEL, "--model_path", "", "--plan", "false"]
# The tiny tree's classes (its classes.txt): train.py records them in the weights.
TINY_CLASSES = ["background", "upper", "lower"]
BINARY_CLASSES = ["background", "stripe"]  # make_tiny_voc's binary variant
# The 13 convolutions of VGG16, as keras.applications names them.
VGG_CONVS = [f"block{i}_conv{j}" for i, n in enumerate([2, 2, 3, 3, 3], 1) for j in range(1, n + 1)]


def build_network(model: str, input_shape, num_classes: int, backbone: str = "vgg"):
    """build_model's network, but FCN-8s with 64 filters in fc6 / fc7 instead of 4096 (8 M parameters, not 134 M):
    for tests of names, shapes and weights' layouts, which the width does not change."""
    if model == "fcn8":
        return build_fcn8((*input_shape, 3), num_classes, fc_filters=64)
    return build_model(model, input_shape, num_classes, backbone)


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


def make_tiny_voc(root, binary: bool = False, grey: bool = False) -> str:
    """A VOC tree of 10 train + 4 val 48x40 images (non-square), 3 classes (TINY_CLASSES, in classes.txt): stripes
    of class 1 and 2; with binary, 2 classes (BINARY_CLASSES): both stripes class 1; with grey, 8-bit grey JPEGs."""
    rng = np.random.default_rng(0)
    samples = {}
    for i in range(14):
        label = np.zeros((48, 40), np.uint8)
        label[8:20, 4 + i : 20 + i] = 1
        label[28:44, 10:30] = 2
        label[0, :] = 255  # a VOC-style ignore border
        image = (rng.uniform(0, 60, (48, 40, 3)) + 90 * label[..., None] % 255).astype(np.uint8)
        image = image.mean(axis=-1).astype(np.uint8) if grey else image
        if binary:
            label = np.where(label == 2, 1, label).astype(np.uint8)
        samples[f"img {i:02d}"] = (image, label)  # a space in the id, as users' files have
    ids = sorted(samples)
    voc = write_voc(root, samples, {"train": ids[:10], "val": ids[10:], "trainval": ids})
    with open(os.path.join(voc, "classes.txt"), "w") as f:  # as json_to_dataset.py writes it
        f.write("\n".join(BINARY_CLASSES if binary else TINY_CLASSES) + "\n")
    return voc


def write_band_voc(root, kind: str, binary: bool = False) -> str:
    """A VOC tree of 10 train + 4 val 40 x 48 images (3 classes). kind "bands4": 4-band uint16 TIFFs in which class 2
    differs from the background only in the 4th band; "grey16": 16-bit grey PNGs in a narrow range (value x 16 +
    1000, as microscopes write them). binary: 2 classes, class 2 written as 1."""
    voc = root / "VOCdevkit" / "VOC2007"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ids = [f"im{i:02d}" for i in range(14)]
    for i, sample in enumerate(ids):
        label = np.zeros((40, 48), np.uint8)
        label[6:18, 4 + i : 22 + i] = 1
        label[24:36, 8:30] = 2
        noise = rng.uniform(0, 40, (40, 48))
        if kind == "bands4":
            image = np.stack([noise + 100 * (label == 1)] * 3 + [noise + 120 * (label == 2)], axis=-1)
            tifffile.imwrite(voc / "JPEGImages" / f"{sample}.tif", (image * 16 + 1000).astype(np.uint16))
        else:
            Image.fromarray((noise + 90 * label).astype(np.uint16) * 16 + 1000).save(
                voc / "JPEGImages" / f"{sample}.png"
            )
        Image.fromarray(np.minimum(label, 1) if binary else label).save(voc / "SegmentationClass" / f"{sample}.png")
    for split, chosen in (("train", ids[:10]), ("val", ids[10:])):
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(chosen) + "\n")
    (root / "VOCdevkit" / "classes.txt").write_text("\n".join(BINARY_CLASSES if binary else TINY_CLASSES) + "\n")
    return str(root / "VOCdevkit")


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


def run_inline(script: str, *args, cwd=None, stdin: str = "") -> subprocess.CompletedProcess:
    """Runs a top-level script as `python <script> <args>` would, but inside this process: for the checks a script
    makes before its work starts, without the 3-5 s of a new process's TensorFlow start-up.

    The script runs as __main__ with sys.argv, stdin, stdout, stderr and the working directory set as for a user's
    run, and Keras' global dtype policy restored afterwards. Its exit status is SystemExit's code (0 when it ends
    without one); an exception it lets out is printed as Python would print it, with status 1, so that a test's
    "Traceback" check sees it. The contract of the real process (exit status and no traceback) is tested once per
    script with run_script.
    """
    out, err = io.StringIO(), io.StringIO()
    command = [os.path.join(ROOT, script), *map(str, args)]
    policy, argv, stdin_before, before = keras.mixed_precision.global_policy(), sys.argv, sys.stdin, os.getcwd()
    sys.argv, sys.stdin = command, io.StringIO(stdin)
    code = 0
    try:
        os.chdir(cwd or ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_path(command[0], run_name="__main__")
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            except Exception:  # as the interpreter would print it
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(before)
        sys.argv, sys.stdin = argv, stdin_before
        keras.mixed_precision.set_global_policy(policy)
    return subprocess.CompletedProcess(command, code, out.getvalue(), err.getvalue())


def history_rows(logs) -> list:
    """The rows of history.csv in the one run folder (loss_*) of a save_dir: {column: text} each."""
    (run_dir,) = glob.glob(os.path.join(glob.escape(str(logs)), "loss_*"))
    with open(os.path.join(run_dir, "history.csv")) as f:
        return list(csv.DictReader(f))


def copy_run(logs, target) -> str:
    """A run folder copied to target, its files as hard links (the scripts replace files, never edit them; a test
    that edits one in place copies it first)."""
    shutil.copytree(logs, target, copy_function=link_or_copy)
    return str(target)


def link_or_copy(source, target):
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copy2(source, target)


MULTILABEL_CLASSES = ["cell", "stain"]  # write_multilabel_voc's, in bit order


def write_multilabel_voc(root) -> str:
    """A VOC tree of multi-label masks (utils/multilabel.py's layout), 10 train + 4 val 48 x 40 images: a "cell"
    rectangle (brighter red; its masks 0/255) and a "stain" band across it (brighter green; its masks 0/1), the two
    overlapping; the top row ignored (_ignore). No SegmentationClass: voc_annotation.py packs it."""
    voc = root / "VOCdevkit" / "VOC2007"
    for folder in ("JPEGImages", "SegmentationLabels/cell", "SegmentationLabels/stain", "SegmentationLabels/_ignore"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(14):
        cell, stain = np.zeros((48, 40), np.uint8), np.zeros((48, 40), np.uint8)
        cell[8 + i // 2 : 36, 6:30] = 1
        stain[20:30, 2 + i : 38] = 1
        image = rng.uniform(0, 50, (48, 40, 3)) + np.stack([100 * cell, 100 * stain, 0 * cell], axis=-1)
        Image.fromarray(image.astype(np.uint8)).save(voc / "JPEGImages" / f"m{i:02d}.jpg", quality=95)
        Image.fromarray(cell * 255).save(voc / "SegmentationLabels" / "cell" / f"m{i:02d}.png")
        Image.fromarray(stain).save(voc / "SegmentationLabels" / "stain" / f"m{i:02d}.png")
        ignore = np.zeros((48, 40), np.uint8)
        ignore[0] = 1
        Image.fromarray(ignore).save(voc / "SegmentationLabels" / "_ignore" / f"m{i:02d}.png")
    return str(root / "VOCdevkit")
