"""Checkpoint files: written atomically, weights only, and Ctrl-C held back until the write is done."""

import os
import signal

import h5py
import pytest

from nets.unet import build_unet
from utils.atomic import deferred_interrupt
from utils.checkpoint import ModelSettings, read_settings, save_weights


def test_ctrl_c_waits_for_the_block_then_raises():
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            signal.raise_signal(signal.SIGINT)
            finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is before


def test_atomic_save_writes_weights_only_and_leaves_no_temporary(tmp_path):
    model = build_unet((32, 32, 3), 2)
    model.compile(optimizer="adam", loss="mse")
    path = str(tmp_path / "last_epoch_weights.weights.h5")
    settings = ModelSettings("unet", "vgg", 2, (32, 32), class_names=("background", "cell"))
    save_weights(model, path, settings, epoch=1)
    save_weights(model, path, settings, epoch=2)  # over an existing file
    assert os.listdir(tmp_path) == ["last_epoch_weights.weights.h5"]
    with h5py.File(path) as f:
        assert "layers" in f and "optimizer" not in f and f.attrs["epoch"] == 2
    assert read_settings(path) == settings
