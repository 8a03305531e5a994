"""Shared fixtures: a tiny VOC tree in tmp_path and one tiny model trained by train.py per session."""

import csv
import glob
import os

import pytest

from tests.helpers import TINY_TRAIN, make_tiny_voc, run_script

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture
def tiny_voc(tmp_path):
    return make_tiny_voc(tmp_path)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny VGG16-UNet trained by train.py for 2 epochs (1 frozen, 1 not) on a tiny VOC tree.

    Returns {"voc": dataset root, "logs": save_dir, "weights": last_epoch_weights, "val_miou": epoch 2's}.
    """
    root = tmp_path_factory.mktemp("trained")
    voc, logs = make_tiny_voc(root), str(root / "logs")
    args = [*TINY_TRAIN, "--vocdevkit_path", voc, "--save_dir", logs]
    args += ["--freeze_epoch", "1", "--unfreeze_epoch", "2", "--freeze_batch_size", "4", "--unfreeze_batch_size", "2"]
    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = glob.glob(os.path.join(logs, "loss_*"))
    with open(os.path.join(run_dir, "history.csv")) as f:
        val_miou = float(list(csv.DictReader(f))[-1]["val_miou"])
    weights = os.path.join(logs, "last_epoch_weights.weights.h5")
    return {"voc": voc, "logs": logs, "weights": weights, "val_miou": val_miou}
