"""python train.py driven as a user runs it, on a tiny VOC tree."""

import csv
import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys

import h5py
import pytest
import tensorflow as tf

from nets.models import build_model, output_margin
from tests.helpers import ROOT, TINY_TRAIN, copy_run, run_inline, run_script
from train import TrainConfig
from utils.training.learning_rate import learning_rate, scaled_learning_rates


def train_args(voc, logs, *extra):
    return [*TINY_TRAIN, "--vocdevkit_path", voc, "--save_dir", logs, "--freeze_batch_size", "4"] + [
        "--unfreeze_batch_size",
        "2",
        "--save_period",
        "1",
        *extra,
    ]


def test_two_phases_write_weights_curves_history_and_resume(trained, tmp_path):
    """The shared tiny run (conftest's TRAINED_RUN: 1 frozen epoch at batch 4, 1 unfrozen at batch 2), then a
    run that starts from its last weights at epoch 2 (init_epoch) in a copy of its folder."""
    stdout, logs = trained["stdout"], copy_run(trained["logs"], tmp_path / "logs")
    tiny_voc = trained["voc"]
    assert "Frozen phase: epochs 1-1, batch 4" in stdout
    assert "Unfrozen phase: epochs 2-2, batch 2" in stdout
    assert "Data: 10 train, 4 val samples" in stdout and "num_classes" in stdout
    for name in ["best_epoch_weights", "last_epoch_weights"]:
        with h5py.File(os.path.join(logs, f"{name}.weights.h5")) as f:
            assert "layers" in f and "optimizer" not in f  # weights only: a third of the size
    assert len(glob.glob(os.path.join(logs, "ep00[12]-loss*-val_loss*.weights.h5"))) == 2
    (run_dir,) = glob.glob(os.path.join(logs, "loss_*"))
    for name in ["epoch_loss.txt", "epoch_val_loss.txt", "epoch_miou.txt", "epoch_loss.png", "epoch_miou.png"]:
        assert os.path.getsize(os.path.join(run_dir, name)) > 0, name
    assert glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True)
    # At each evaluation the first 4 val images go to TensorBoard: image | label | prediction, side by side.
    (images,) = glob.glob(os.path.join(run_dir, "images", "events.out.tfevents.*"))
    written = {}
    for record in tf.data.TFRecordDataset(images):
        event = tf.compat.v1.Event.FromString(record.numpy())
        for value in event.summary.value:  # an image summary: width, height, the PNG
            png = tf.io.decode_png(value.tensor.string_val[2]).numpy()
            written[(event.step, value.tag)] = png.shape
    assert sorted(written) == [(epoch, f"val_image_{i}") for epoch in (1, 2) for i in range(4)]
    assert set(written.values()) == {(256, 640, 3)}  # three 40 x 48 tiles side by side, 256 px high
    assert "4 val images to TensorBoard in" in stdout
    with open(os.path.join(run_dir, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert all(0 <= float(r["val_miou"]) <= 100 and float(r["loss"]) > 0 for r in rows)

    # Resume at epoch 2 of 4 from the last checkpoint: the unfrozen phase continues, the LR curve too.
    last = os.path.join(logs, "last_epoch_weights.weights.h5")
    resumed = run_script(
        "train.py",
        *train_args(tiny_voc, logs, "--freeze_epoch", "1", "--unfreeze_epoch", "4", "--init_epoch", "2"),
        "--model_path",
        last,
        "--eval_period",
        "4",
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Frozen phase" not in resumed.stdout and "Unfrozen phase: epochs 3-4" in resumed.stdout
    assert "loaded 22 layers, left 0 initialised" in resumed.stdout
    run_dirs = sorted(glob.glob(os.path.join(logs, "loss_*")))
    with open(os.path.join(run_dirs[-1], "history.csv")) as f:
        resumed_rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in resumed_rows] == [3, 4]
    # eval_period 4: val mIoU and the val loss at the last epoch only (and their curves from it)
    assert [(r["val_loss"] != "", r["val_miou"] != "") for r in resumed_rows] == [(False, False), (True, True)]
    copies = sorted(os.path.basename(path) for path in glob.glob(os.path.join(logs, "ep00[34]-*.weights.h5")))
    assert [("-val_loss" in name) for name in copies] == [False, True], copies  # named by the val loss where it ran
    assert os.path.getsize(os.path.join(run_dirs[-1], "epoch_loss.png")) > 0
    # After epoch 3 the rate is the whole run's cosine at epoch 3, not a fresh warm-up.
    defaults = TrainConfig()
    max_lr, min_lr = scaled_learning_rates(defaults.init_lr, defaults.min_lr, 2, defaults.optimizer_type)
    expected = float(learning_rate(3.0, 4, max_lr, min_lr, "cos"))
    assert float(resumed_rows[0]["learning_rate"]) == pytest.approx(expected, rel=1e-4)
    assert expected < max_lr / 2


def test_missing_split_and_bad_settings_are_clear_errors(tmp_path):
    voc = tmp_path / "VOCdevkit" / "VOC2007"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "JPEGImages" / "a.jpg").write_bytes(b"")  # the user has data, so no demo is written
    result = run_script("train.py", *TINY_TRAIN, "--vocdevkit_path", tmp_path / "VOCdevkit", "--save_dir", tmp_path)
    assert result.returncode == 2 and "train.txt not found" in result.stderr and "voc_annotation.py" in result.stderr
    result = run_inline("train.py", "--input_shape", "100", "100")
    assert result.returncode == 2 and "multiples of 32" in result.stderr and "Traceback" not in result.stderr
    result = run_inline("train.py", "--tversky_loss", "true", "--tversky_alpha", "-1")
    assert result.returncode == 2 and "tversky_alpha=-1.0" in result.stderr and "Traceback" not in result.stderr
    result = run_inline("train.py", "--oversample", "0.3", "--oversample_classes", "7")
    assert result.returncode == 2 and "oversample_classes=[7]" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_keeps_the_complete_epoch_and_prints_a_resume_command_that_works(tiny_voc, tmp_path):
    logs = str(tmp_path / "my logs")  # a space: the printed command must quote it
    args = train_args(tiny_voc, logs, "--freeze_train", "false", "--unfreeze_epoch", "50")
    process = subprocess.Popen(
        [sys.executable, "-u", os.path.join(ROOT, "train.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    output = []
    for line in process.stdout:
        output.append(line)
        if "saving best_epoch_weights" in line:  # epoch 1's checkpoints are being written: Ctrl-C waits for them
            process.send_signal(signal.SIGINT)
            break
    output.append(process.communicate(timeout=300)[0])
    text = "".join(output)
    assert process.returncode == 130, text[-3000:]
    assert "Interrupted during epoch 2" in text and "The checkpoints of epoch 1 are complete" in text
    with h5py.File(os.path.join(logs, "last_epoch_weights.weights.h5")) as f:
        assert f.attrs["epoch"] == 1  # the complete epoch's weights, not the interrupted ones
    assert os.path.isfile(os.path.join(logs, "interrupted_weights.weights.h5"))
    assert not glob.glob(os.path.join(glob.escape(logs), ".tmp-*"))
    # The printed command, run as printed (plus a shorter run), resumes after epoch 1.
    command = shlex.split(text.split("Resume with:")[1].strip().splitlines()[0])
    assert command[:2] == ["python", os.path.join(ROOT, "train.py")] and command[-1] == logs
    resumed = subprocess.run([sys.executable, *command[1:], "--unfreeze_epoch", "2"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Unfrozen phase: epochs 2-2" in resumed.stdout and "resumed after epoch 1" in resumed.stdout


def test_fresh_folder_gets_the_demo_data_a_mistyped_one_an_error(tmp_path):
    result = run_inline("train.py", "--vocdevkit_path", tmp_path / "VOCdevkt", "--save_dir", tmp_path / "logs")
    assert result.returncode == 2 and "VOCdevkt" in result.stderr and "no such folder" in result.stderr
    assert not os.path.exists(tmp_path / "VOCdevkt")
    # A fresh clone's dataset folder: the three VOC folders, each holding only its README.
    for readme in ["JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")]:
        source = os.path.join(ROOT, "VOCdevkit", "VOC2007", readme, "README.md")
        os.makedirs(tmp_path / "VOCdevkit" / "VOC2007" / readme)
        shutil.copy(source, tmp_path / "VOCdevkit" / "VOC2007" / readme / "README.md")
    result = run_script(
        "train.py",
        *["--vocdevkit_path", tmp_path / "VOCdevkit", "--save_dir", tmp_path / "logs", "--precision", "fp32"],
        *["--freeze_train", "false", "--unfreeze_epoch", "1", "--model_path", "", "--eval_flag", "false"],
        *["--input_shape", "32", "32", "--unfreeze_batch_size", "16"],  # the demo's 240 images in 15 small steps
        *["--model", "unet_small"],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DEMO dataset" in result.stdout
    voc = tmp_path / "VOCdevkit" / "VOC2007"
    assert len(os.listdir(voc / "JPEGImages")) == len(os.listdir(voc / "SegmentationClass")) == 300 + 1  # README
    assert os.path.isfile(tmp_path / "logs" / "best_epoch_weights.weights.h5")  # chosen by val_loss


def test_a_classic_input_shape_that_does_not_fit_stops_train_py_before_training(tiny_voc, tmp_path):
    args = ["--model", "unet_classic", "--input_shape", "256", "256", "--vocdevkit_path", tiny_voc]
    result = run_inline("train.py", *args, "--save_dir", tmp_path / "logs")
    assert result.returncode == 2 and "188 + 16k" in result.stderr and "Traceback" not in result.stderr
    assert output_margin(build_model("unet_small", (32, 32), 2)) == 0


def test_the_run_says_where_its_time_went(trained):
    """train.py's timeline (utils/training/timeline.py): every stage once, none counted twice, the whole run
    accounted for."""
    (run_dir,) = glob.glob(os.path.join(trained["logs"], "loss_*"))
    with open(os.path.join(run_dir, "timing.json")) as f:
        seconds = json.load(f)
    for phase in ("frozen phase", "unfrozen phase"):
        for stage in ("compile and start", "first step's tracing", "steps", "val loss"):
            assert seconds[f"{phase}: {stage}"] > 0, (phase, stage)
    # The unfrozen phase's epochs have several steps (batch 2), the frozen phase's one (batch 4).
    assert seconds["unfrozen phase: between steps (Keras' loop, progress bar)"] > 0
    for stage in ("start-up and imports", "dataset check", "model and weights", "val mIoU and images", "checkpoints"):
        assert seconds[stage] > 0, stage
    # None counted twice: the stages add up to no more than the total. The total is the process's own time, from
    # its start (start-up and imports included) to the table: the wall time the test measured around the process,
    # less the interpreter's exit (TensorFlow's teardown) at most.
    assert seconds["other (Keras' epoch loop)"] >= 0
    assert trained["seconds"] - 10 < seconds["total"] <= trained["seconds"]
