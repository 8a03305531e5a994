"""Checkpoint files: written atomically, weights only, and Ctrl-C held back until the write is done."""

import os
import signal

import h5py
import keras
import pytest

from nets.models import build_model
from nets.unet import build_unet
from utils.files.atomic import deferred_interrupt
from utils.training.resumable import RunState, load_optimizer_state, save_resumable
from utils.weights.checkpoint import ModelSettings, read_settings, save_weights


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


def test_the_loss_scale_of_mixed_float16_is_carried_by_a_resumable_checkpoint(tmp_path):
    # Under mixed_float16, compile wraps the optimizer in a LossScaleOptimizer whose dynamic scale and step
    # counter sit beside Adam's moments. Set to values training could reach, they must come back on resume.
    # (CPU only here: fp16 training itself is a GPU path, not run on this machine.)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        models = []
        for _ in range(2):
            model = build_model("unet_small", (32, 32), 3, "vgg")
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
            models.append(model)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    written, resumed = models
    assert isinstance(written.optimizer, keras.optimizers.LossScaleOptimizer)
    written.optimizer.build(written.trainable_variables)
    written.optimizer.dynamic_scale.assign(512.0)
    written.optimizer.step_counter.assign(1234)
    written.optimizer.iterations.assign(77)
    settings = ModelSettings("unet_small", "vgg", 3, (32, 32))
    path = save_resumable(written, str(tmp_path), settings, RunState(epoch=1, config={}, run_dir=""))
    load_optimizer_state(resumed, path)
    assert float(resumed.optimizer.dynamic_scale.numpy()) == 512.0
    assert int(resumed.optimizer.step_counter.numpy()) == 1234
    assert int(resumed.optimizer.iterations.numpy()) == 77
