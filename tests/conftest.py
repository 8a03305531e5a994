"""Shared fixtures: a tiny VOC tree in tmp_path, and the models train.py trains once per test run and the tests
share (across pytest-xdist's workers too: the first worker to ask trains, the others wait and reuse)."""

import atexit
import json
import os
import shutil
import tempfile
import time

import pytest
from filelock import FileLock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# pytest-xdist's workers share the cores: each worker's TensorFlow, and the scripts it starts, take their share of
# threads, not every core each. These are set before TensorFlow is first imported (by tests.helpers).
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    threads = str(max(1, len(os.sched_getaffinity(0)) // workers))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", threads)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", threads)

# No test may depend on the machine's Keras cache (~/.keras: downloaded ImageNet files, keras.json): this process
# and every script it starts see an empty one of their own.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="keras_home_")
atexit.register(shutil.rmtree, os.environ["KERAS_HOME"], ignore_errors=True)
# fingerprints of read-only test datasets are cached here, not in the user's cache (utils/dataset/fingerprint.py)
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="cache_home_")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)

from tests.helpers import EXPORT_FORMATS, TINY_TRAIN, history_rows, make_tiny_voc, run_script


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


def train_once(folder, *args) -> dict:
    """train.py on a tiny VOC tree in folder with args: {"voc", "logs", "weights" (last epoch's), "val_miou"
    (the last epoch's), "stdout", "seconds" (the process's wall time)}."""
    voc, logs = make_tiny_voc(folder), str(folder / "logs")
    started = time.perf_counter()
    result = run_script("train.py", *args, "--vocdevkit_path", voc, "--save_dir", logs)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    val_miou = float(history_rows(logs)[-1]["val_miou"])
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


# The small UNet (2 M parameters): for what any network shows, where the VGG16-UNet's 25 M would cost time. Five
# epochs at a from-scratch learning rate: decisive enough that the quantised exports agree with it on the classes.
SMALL_RUN = ["--model", "unet_small", "--input_shape", "32", "32", "--num_classes", "3", "--precision", "fp32"]
SMALL_RUN += ["--model_path", "", "--freeze_train", "false", "--unfreeze_epoch", "5", "--unfreeze_batch_size", "2"]
SMALL_RUN += ["--init_lr", "8e-3", "--plan", "false"]


@pytest.fixture(scope="session")
def trained_small(shared_folder):
    """The small UNet train.py trained (SMALL_RUN) once for the whole test run, as `trained`."""
    return once(shared_folder, "trained_small", lambda folder: train_once(folder, *SMALL_RUN))


@pytest.fixture(scope="session")
def exported(trained_small, shared_folder):
    """export.py run once on a copy of the small trained model, every format: {"stdout": its output, "out": the
    folder, "weights": the copy, beside which export.py recorded the backends' speeds}."""

    def export(folder):
        images = os.path.join(trained_small["voc"], "VOC2007", "JPEGImages")
        weights = str(folder / "small.weights.h5")  # its own copy: export.py records its speeds beside the weights
        shutil.copyfile(trained_small["weights"], weights)
        args = ["--model_path", weights, "--parity_images", images]
        args += ["--export_dir", folder / "export", "--vocdevkit_path", trained_small["voc"]]  # int8: its splits
        result = run_script("export.py", *args, "--formats", *EXPORT_FORMATS)  # the weights record the rest
        assert result.returncode == 0, result.stderr[-3000:]
        return {"stdout": result.stdout, "out": str(folder / "export"), "weights": weights}

    return once(shared_folder, "exported", export)
