"""Shared fixtures: a tiny VOC tree in tmp_path, and the models train.py trains once per test run and the tests
share (across pytest-xdist's workers too: the first worker to ask trains, the others wait and reuse)."""

import atexit
import csv
import glob
import json
import os
import shutil
import tempfile
import time

import pytest
from filelock import FileLock

from tests.helpers import TINY_TRAIN, make_tiny_voc, run_script

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# No test may depend on the machine's Keras cache (~/.keras: downloaded ImageNet files, keras.json): this process
# and every script it starts see an empty one of their own.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="keras_home_")
atexit.register(shutil.rmtree, os.environ["KERAS_HOME"], ignore_errors=True)


@pytest.fixture
def tiny_voc(tmp_path):
    return make_tiny_voc(tmp_path)


@pytest.fixture(scope="session")
def shared_folder(tmp_path_factory):
    """A folder of this test run that every xdist worker sees (without xdist, the session's own)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(shared_folder, name: str, make) -> dict:
    """make(folder) -> a JSON-able dict, run once per test run into shared_folder/name; a worker that asks while
    another makes it waits for it."""
    folder = shared_folder / name
    with FileLock(str(folder) + ".lock"):
        done = folder / "made.json"
        if done.is_file():
            return json.loads(done.read_text())
        shutil.rmtree(folder, ignore_errors=True)  # a failed attempt's leftovers
        folder.mkdir()
        made = make(folder)
        done.write_text(json.dumps(made))
        return made


def train_once(folder, *args, binary: bool = False) -> dict:
    """train.py on a tiny VOC tree in folder with args: {"voc", "logs", "weights" (last epoch's), "val_miou"
    (the last epoch's), "stdout", "seconds" (the process's wall time)}."""
    voc, logs = make_tiny_voc(folder, binary), str(folder / "logs")
    started = time.perf_counter()
    result = run_script("train.py", *args, "--vocdevkit_path", voc, "--save_dir", logs)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    (run_dir,) = glob.glob(os.path.join(logs, "loss_*"))
    with open(os.path.join(run_dir, "history.csv")) as f:
        val_miou = float(list(csv.DictReader(f))[-1]["val_miou"])
    weights = os.path.join(logs, "last_epoch_weights.weights.h5")
    return {"voc": voc, "logs": logs, "weights": weights, "val_miou": val_miou, "stdout": result.stdout,
            "seconds": seconds}  # fmt: skip


# The `trained` model's run: the default network (VGG16-UNet) from random initialisation, 1 frozen epoch at batch 4
# and 1 unfrozen at batch 2, every epoch's weights kept (save_period 1).
TRAINED_RUN = [*TINY_TRAIN, "--freeze_epoch", "1", "--unfreeze_epoch", "2", "--freeze_batch_size", "4"]
TRAINED_RUN += ["--unfreeze_batch_size", "2", "--save_period", "1"]


@pytest.fixture(scope="session")
def trained(shared_folder):
    """The tiny VGG16-UNet train.py trained (TRAINED_RUN) once for the whole test run; its files are shared, so a
    test that writes into its logs works on a copy (copy_run)."""
    return once(shared_folder, "trained", lambda folder: train_once(folder, *TRAINED_RUN))
