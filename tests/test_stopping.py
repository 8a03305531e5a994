"""Early stopping, the plateau learning rate and the NaN guard."""

import os

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import history_rows, run_inline
from utils.callbacks import Watch
from utils.phases import Phase, PhasePlan
from utils.training.resumable import resumable_checkpoints
from utils.training.stopping import NonFiniteLoss, WatchRules
from utils.weights.checkpoint import recorded_epoch


def watched(rules: WatchRules, state=None, learning_rate: float = 1e-3) -> Watch:
    """A Watch on a small compiled model (its optimizer's learning rate is what the plateau lowers)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    watch = Watch(rules, state)
    watch.set_model(model)
    return watch


def feed(watch: Watch, values: dict) -> list:
    """on_epoch_end for {epoch (1-based): val_miou or None}; returns the epochs after which training was stopped."""
    stopped = []
    for epoch, value in values.items():
        watch.model.stop_training = False
        watch.on_epoch_end(epoch - 1, {} if value is None else {"val_miou": value})
        stopped += [epoch] if watch.model.stop_training else []
    return stopped


def learning_rate(watch: Watch) -> float:
    return float(keras.ops.convert_to_numpy(watch.model.optimizer.learning_rate))


def test_early_stopping_stops_at_the_epoch_patience_runs_out():
    watch = watched(WatchRules(early_stop_patience=3))
    watch.start_phase(Phase(0, 10, 2, frozen=False), last_phase=True)
    # Best 61 at epoch 4; epochs 5, 6, 7 bring nothing better: the run ends after epoch 7, not before.
    assert feed(watch, {1: 50, 2: 60, 3: 59, 4: 61, 5: 60, 6: 61, 7: 60, 8: 70}) == [7]
    assert watch.state.stopped == 7 and watch.state.best_epoch == 8  # (epoch 8 is fed here only to test the stop)


def test_patience_counts_epochs_not_evaluations():
    watch = watched(WatchRules(early_stop_patience=3))
    watch.start_phase(Phase(0, 10, 2, frozen=False), last_phase=True)
    assert feed(watch, {1: 50, 2: None, 3: None, 4: 49}) == [4]  # eval_period 3: three epochs since the best


def test_early_stopping_in_the_frozen_phase_unfreezes_and_counts_afresh():
    plan = PhasePlan(freeze_train=True, freeze_epoch=6, unfreeze_epoch=12, freeze_batch_size=4, unfreeze_batch_size=2)
    frozen, unfrozen = plan.phases()
    watch = watched(WatchRules(early_stop_patience=2))
    watch.start_phase(frozen, last_phase=False)
    assert feed(watch, {1: 50, 2: 49, 3: 48}) == [3]
    assert watch.state.unfrozen_from == 3 and not watch.state.stopped
    assert plan.phases(watch.state.unfrozen_from) == [Phase(0, 3, 4, True), Phase(3, 12, 2, False)]
    watch.start_phase(Phase(3, 12, 2, False), last_phase=True)
    # The unfrozen phase's patience starts at its first epoch, although the best (50) is from epoch 1.
    assert feed(watch, {4: 49, 5: 49}) == [5]
    assert watch.state.stopped == 5


def test_plateau_halves_the_learning_rate_down_to_min_lr():
    watch = watched(WatchRules(plateau_patience=2, plateau_factor=0.5), learning_rate=1e-3)
    watch.start_phase(Phase(0, 20, 2, frozen=False), last_phase=True, min_lr=2e-4)
    rates = []
    for epoch in range(1, 10):
        feed(watch, {epoch: 50.0})
        rates.append(learning_rate(watch))
    # Reduced after epochs 3, 5, 7 (two epochs without a better value since the best or the last reduction).
    np.testing.assert_allclose(rates, [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4, 2e-4, 2e-4, 2e-4], rtol=1e-6)


def test_a_resumed_watch_decides_as_an_uninterrupted_one():
    values = {1: 50, 2: 60, 3: 59, 4: 58, 5: 57, 6: 58}
    rules = WatchRules(early_stop_patience=4, plateau_patience=2)
    whole = watched(rules)
    whole.start_phase(Phase(0, 10, 2, False), last_phase=True, min_lr=1e-5)
    whole_stops = feed(whole, values)
    first = watched(rules)
    first.start_phase(Phase(0, 10, 2, False), last_phase=True, min_lr=1e-5)
    feed(first, {k: v for k, v in values.items() if k <= 3})
    # The checkpoint carries the Watch's state, and the optimizer's (the learning rate is one of its variables):
    # handed over here as the checkpoint would; that the checkpoint does is train.py's test below.
    second = watched(rules, first.state_dict(), learning_rate=learning_rate(first))
    second.start_phase(Phase(0, 10, 2, False), last_phase=True, min_lr=1e-5)
    assert feed(second, {k: v for k, v in values.items() if k > 3}) == whole_stops == [6]
    assert learning_rate(second) == pytest.approx(learning_rate(whole))
    assert second.state_dict() == whole.state_dict()


def test_a_nan_loss_stops_training_at_once_and_keeps_the_last_checkpoint(tiny_voc, tmp_path, monkeypatch):
    import train

    calls = tf.Variable(0.0, trainable=False)
    real_loss = train.build_loss

    def loss_with_nan(*args, **kwargs):
        """train.py's loss, NaN from its 9th call on: epoch 1 has 5 steps and 2 validation batches."""
        loss = real_loss(*args, **kwargs)

        def injected(y_true, y_pred):
            count = calls.assign_add(1.0)
            return loss(y_true, y_pred) + tf.where(count > 8, float("nan"), 0.0)

        return injected

    monkeypatch.setattr(train, "build_loss", loss_with_nan)
    logs = str(tmp_path / "logs")
    config = train.TrainConfig(
        model="unet_small", model_path="", input_shape=[32, 32], num_classes=3, precision="fp32",
        vocdevkit_path=tiny_voc, save_dir=logs, freeze_train=False, unfreeze_epoch=3, unfreeze_batch_size=2,
        plan=False,  # the defaults evaluate every epoch, as the count of the loss's calls above assumes
    )  # fmt: skip
    with pytest.raises(NonFiniteLoss, match=r"Epoch 2, step 2: the training loss is nan") as raised:
        train.train(config)
    message = str(raised.value)
    for advice in ("init_lr", "precision fp32", "voc_annotation.py", "--init_epoch 1"):
        assert advice in message
    assert recorded_epoch(os.path.join(logs, "last_epoch_weights.weights.h5")) == 1
    assert [os.path.basename(p) for p in resumable_checkpoints(logs)] == ["resume_epoch001.weights.h5"]
    with h5py.File(os.path.join(logs, "last_epoch_weights.weights.h5"), "r") as h5:
        arrays = []
        h5.visititems(lambda name, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    assert arrays and all(np.isfinite(a).all() for a in arrays if a.dtype.kind == "f")  # the kept weights are numbers


def scripted_val_miou(values: dict):
    """train.py's val mIoU callback, reporting {epoch: val mIoU} instead of what the tiny model scores: the epochs
    at which early stopping and the plateau act are then known in advance."""
    import utils.callbacks

    class Scripted(utils.callbacks.EvalCallback):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if "val_miou" in logs:
                logs["val_miou"] = values[epoch + 1]

    return Scripted


def test_train_py_stops_each_phase_early_lowers_the_rate_and_resumes_as_it_would_have_gone_on(
    tiny_voc, tmp_path, monkeypatch
):
    import utils.callbacks

    monkeypatch.setattr(utils.callbacks, "EvalCallback", scripted_val_miou({1: 50, 2: 50, 3: 60, 4: 60, 5: 60}))
    logs = tmp_path / "logs"
    run = ["--model", "unet_small", "--input_shape", "32", "32", "--num_classes", "3", "--model_path", ""]
    run += ["--plan", "false", "--precision", "fp32", "--vocdevkit_path", tiny_voc, "--save_dir", logs]
    run += ["--tensorboard_images", "0", "--tversky_loss", "true", "--lovasz_loss", "true"]  # every loss trains
    run += ["--noise", "0.1", "--blur", "0.2", "--contrast", "0.15", "--low_resolution", "0.25", "--gamma", "0.3"]
    run += ["--oversample", "0.33", "--oversample_classes", "2"]
    run += ["--freeze_epoch", "3", "--unfreeze_epoch", "5", "--freeze_batch_size", "4", "--unfreeze_batch_size", "4"]
    run += ["--early_stop_patience", "1", "--lr_decay_type", "plateau", "--plateau_patience", "1"]
    result = run_inline("train.py", *run)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    # Epoch 2 brings no better value: the plateau halves the rate and the frozen phase ends; the unfrozen phase
    # starts at epoch 3 at its own peak; epoch 4 brings no better value either: halved again, and the run ends.
    assert "Epoch 2: no better val_miou for 1 epochs" in result.stdout
    assert "early stopping ends the frozen phase; the whole network trains from epoch 3" in result.stdout
    assert "Unfrozen phase: epochs 3-5" in result.stdout and "early stopping ends the run" in result.stdout
    assert "Done: epochs 1-4" in result.stdout
    assert "Oversampling: 1 of each batch's 4 images drawn from the" in result.stdout
    rates = history_rates(logs)
    assert "Epoch 2: no better val_miou for 1 epochs (best 50.0000 at epoch 1): plateau, learning rate" in result.stdout
    assert list(rates) == [1, 2, 3, 4] and rates[1] == rates[2] == rates[3] == rates[4]  # lowered after 2 and 4

    # A run that early stopping ended is not resumed with the same patience: it says how to go on.
    again = run_inline("train.py", "--resume", logs)
    assert again.returncode == 2 and "was ended by early stopping after epoch 4" in again.stderr
    assert "--early_stop_patience" in again.stderr and "Traceback" not in again.stderr
    # With more patience it goes on with epoch 5, at the rate the plateau left (halved after epoch 4), as the
    # uninterrupted run would have.
    resumed = run_inline("train.py", "--resume", logs, "--early_stop_patience", "3")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert "Unfrozen phase: epochs 5-5" in resumed.stdout and "resumed after epoch 4" in resumed.stdout
    after = history_rates(logs)
    assert list(after) == [1, 2, 3, 4, 5] and {k: after[k] for k in rates} == rates
    assert after[5] == pytest.approx(rates[4] / 2)


def history_rates(logs) -> dict:
    """{epoch: learning rate during it} from the run's history.csv."""
    return {int(row["epoch"]): float(row["learning_rate"]) for row in history_rows(logs)}
