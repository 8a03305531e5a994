"""Checkpoints that carry the run: exact resume after SIGKILL, and the run folder's guards."""

import os
import subprocess
from dataclasses import replace

import pytest

from tests.helpers import TINY_TRAIN, copy_run, run_inline, run_script
from train import TrainConfig, validate_config
from utils.training.resumable import find_resumable
from utils.training.runs import prepare_save_dir, resumed_config

# A small network with batch normalisation and dropout, two phases: what must survive a kill is all there.
RESUME_RUN = ["--model", "unet_small", "--input_shape", "32", "32", "--num_classes", "3", "--model_path", ""]
RESUME_RUN += ["--freeze_epoch", "1", "--unfreeze_epoch", "2", "--unfreeze_batch_size", "2"]


def test_a_run_killed_during_a_checkpoint_write_resumes_to_the_straight_runs_weights(tiny_voc, tmp_path):
    # Killed while epoch 2's checkpoint is written: resumes after epoch 1, at the phase boundary, and trains on.
    # (Resuming inside a phase, with the optimizer's state, is in test_train_script's Ctrl-C test and in the slow
    # ten-kill test; benchmarks/resume.py takes any list of moments.)
    moments = ["--moments", "write:2", "--work_dir", tmp_path / "runs"]
    result = run_script("benchmarks/resume.py", *RESUME_RUN, "--vocdevkit_path", tiny_voc, *moments)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "largest weight difference: 0 " in result.stdout  # bit for bit: fp32 kernels are deterministic here
    assert "history rows: identical (2 and 2 epochs)" in result.stdout
    assert result.stdout.count("(killed)") == 1 and "temporary files left: 0" in result.stdout


@pytest.mark.slow
def test_ten_kills_of_a_vgg_unet_run_resume_to_the_straight_run(tiny_voc, tmp_path):
    moments = ["epoch:1", "write:1", "val:2", "epoch:2", "write:2", "epoch:3", "val:3", "write:3", "epoch:4", "val:4"]
    flags = [*TINY_TRAIN, "--freeze_epoch", "2", "--unfreeze_epoch", "4", "--unfreeze_batch_size", "2"]
    args = [*flags, "--vocdevkit_path", tiny_voc, "--moments", *moments, "--work_dir", tmp_path / "runs"]
    result = run_script("benchmarks/resume.py", *args, timeout=3600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "history rows: identical" in result.stdout


def test_settings_that_cannot_work_are_refused_before_training():
    for changes, named in [
        ({"eval_period": 0}, "eval_period=0"),
        ({"save_period": 0}, "save_period=0"),
        ({"unfreeze_batch_size": 0}, "unfreeze_batch_size=0"),
        ({"freeze_epoch": 30, "unfreeze_epoch": 24}, "freeze_epoch=30, unfreeze_epoch=24"),
        ({"scale_mode": "slide", "overlap": 1.0}, "overlap=1.0"),
        ({"scale_mode": "slide", "image_scale": 0.0}, "image_scale=0.0"),
        ({"scale_mode": "tiles"}, "scale_mode='tiles'"),
        (
            {"model": "unet_classic", "input_shape": [188, 188], "scale_mode": "fit"},
            "scale_mode=fit: model='unet_classic'",
        ),
    ]:
        with pytest.raises(ValueError, match=named):
            validate_config(TrainConfig(**changes))


def test_the_run_folder_is_guarded(trained, tmp_path):
    """An earlier run is never replaced, a folder that cannot be written stops training before the first epoch,
    and a resumed run keeps its settings."""
    logs = tmp_path / "logs"
    copy_run(trained["logs"], logs)
    result = run_inline("train.py", *TINY_TRAIN, "--vocdevkit_path", trained["voc"], "--save_dir", logs)
    assert result.returncode == 2 and "holds an earlier run" in result.stderr and f"--resume {logs}" in result.stderr
    assert "Traceback" not in result.stderr
    (tmp_path / "a file").write_text("in the way")
    with pytest.raises(ValueError, match="a file': a file, not a folder"):
        prepare_save_dir(str(tmp_path / "a file"), continuing=False)
    checkpoint, state = find_resumable(str(logs))
    assert checkpoint.endswith("resume_epoch002.weights.h5") and state.epoch == 2
    config = TrainConfig(resume=str(logs))
    with pytest.raises(ValueError, match="has completed its 2 epochs"):
        resumed_config(config, state, {"resume"}, str(logs))
    given = replace(config, unfreeze_epoch=3, num_classes=5)
    with pytest.raises(ValueError, match=r"--num_classes 5 \(the run has 3\)"):
        resumed_config(given, state, {"resume", "unfreeze_epoch", "num_classes"}, str(logs))
    assert resumed_config(given, state, {"resume", "unfreeze_epoch"}, str(logs)).num_classes == 3
    with pytest.raises(ValueError, match="not a resumable checkpoint"):
        find_resumable(str(logs / "last_epoch_weights.weights.h5"))


def mount_tmpfs(folder, size: str) -> bool:
    os.makedirs(folder)
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", folder], capture_output=True).returncode
        == 0
    )


def test_a_full_disk_stops_with_a_message_and_the_last_checkpoint_intact(tiny_voc, tmp_path):
    disk = str(tmp_path / "disk")
    if not mount_tmpfs(disk, "50m"):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        # Epoch 1's files (a 23 MB resumable checkpoint, two 8 MB weights files) fit; epoch 2's checkpoint does not.
        result = run_script("train.py", *RESUME_RUN, "--vocdevkit_path", tiny_voc, "--save_dir", disk)
        assert result.returncode == 2, result.stderr[-3000:]
        assert "the disk is full" in result.stderr and "Traceback" not in result.stderr
        assert sorted(n for n in os.listdir(disk) if n.startswith(".tmp-")) == []
        assert os.path.isfile(os.path.join(disk, "resume_epoch001.weights.h5"))
        from utils.training.resumable import read_state

        assert read_state(os.path.join(disk, "resume_epoch001.weights.h5")).epoch == 1
    finally:
        subprocess.run(["umount", disk], capture_output=True)
