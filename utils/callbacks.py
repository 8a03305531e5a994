"""Every callback of a train.py run, in the order fit calls them: the phase's StepClock and a Lap after each callback
(utils/training/timeline.py: where the time goes), the non-finite loss guard, precise BN (utils/training/precise_bn.py),
val mIoU, the loss history (utils/training/history.py), the Watch (utils/training/stopping.py: early stopping and the
plateau), the checkpoints (utils/weights/checkpoint.py, utils/training/resumable.py). Each is the Keras hook that calls
its concept's module.
"""

import math
import os
import time
from dataclasses import asdict

import keras

from utils.files.atomic import deferred_interrupt
from utils.metrics import class_iou, evaluate_confusion, nan_mean
from utils.training import stopping
from utils.training.history import write_history
from utils.training.learning_rate import lower_on_plateau
from utils.training.precise_bn import StatisticsPass
from utils.training.resumable import RunState, save_resumable
from utils.training.timeline import PhaseClock


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or inf, before the epoch's end could write its weights:
    the checkpoints of the last complete epoch stay as they are. The message names the precision policy, init_lr
    and save_dir."""

    def __init__(self, policy: str, init_lr: float, save_dir: str):
        super().__init__()
        self.hints, self.epoch = (policy, init_lr, save_dir), 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise stopping.NonFiniteLoss(stopping.non_finite_message(float(loss), self.epoch, batch, *self.hints))


class PreciseBatchNorm(keras.callbacks.Callback):
    """At the end of each epoch's last step, before Keras computes the val loss and the callbacks evaluate and
    save, the trainable BN layers take their statistics over `batches` (StatisticsPass)."""

    def __init__(self, batches, steps_per_epoch: int):
        super().__init__()
        self.batches, self.steps_per_epoch, self.statistics = batches, steps_per_epoch, None

    def on_train_begin(self, logs=None):
        self.statistics = StatisticsPass(self.model)

    def on_train_batch_end(self, batch, logs=None):
        # batch: the step within the epoch; with steps_per_execution > 1, the last step of the executed chunk.
        if batch + 1 >= self.steps_per_epoch:
            self.statistics(self.batches)


class EvalCallback(keras.callbacks.Callback):
    """Every `eval_period` epochs (and at the last), val mIoU at original resolution as get_miou.py computes it, by
    the model's prediction path (prediction/path.py) on `data` (build_eval_dataset's, read for that path), into the
    epoch logs as `val_miou` (percent) for the callbacks after it; with `images` (a ValImages), the first val images
    to TensorBoard. num_classes: the label's values (a multilabel head's sets of classes; multilabel: their count)."""

    def __init__(self, data, num_batches, num_classes, eval_period, total_epochs, path, images, multilabel=0):
        super().__init__()
        self.data, self.num_batches, self.num_classes, self.multilabel = data, num_batches, num_classes, multilabel
        self.eval_period, self.total_epochs = eval_period, total_epochs
        self.segment, self.images = path.masks, images

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if not stopping.evaluated(epoch + 1, self.eval_period, self.total_epochs):
            return
        collect = self.images.collect if self.images and self.images.count else None
        matrix = evaluate_confusion(self.segment, self.data, self.num_classes, self.num_batches, on_batch=collect)
        iou = class_iou(matrix, self.multilabel)
        logs["val_miou"] = 100 * nan_mean(iou)
        per_class = " ".join(f"{100 * value:.1f}" for value in iou)
        drawn = f"; {self.images.write(epoch + 1, self.epoch_started)}" if collect else ""
        print(f"Epoch {epoch + 1}: val mIoU {logs['val_miou']:.2f} (per class: {per_class}){drawn}")


class LossHistory(keras.callbacks.Callback):
    """One row per epoch (loss, val_loss, val_mIoU, learning rate), and the run folder's files made from them
    (utils/training/history.py). on_epoch_end only records the row; the CheckpointSaver writes the files after the
    epoch's checkpoint, so the history never runs ahead of the weights. A resumed run starts from the checkpoint's
    rows."""

    def __init__(self, run_dir: str, rows=()):
        super().__init__()
        self.run_dir, self.rows = run_dir, list(rows)
        os.makedirs(self.run_dir, exist_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": epoch + 1, "loss": logs.get("loss"), "val_loss": logs.get("val_loss")}
        row.update({"val_miou": logs.get("val_miou"), "learning_rate": learning_rate})
        self.rows.append(row)

    def write(self) -> None:
        """Writes every file of the run folder anew from the rows."""
        write_history(self.run_dir, self.rows)


class Watch(keras.callbacks.Callback):
    """Early stopping and the plateau learning rate, on the monitor of each epoch that has one
    (utils/training/stopping.py judges each epoch; utils/training/learning_rate.py lowers the rate). Early stopping in
    the frozen phase ends that phase, and the unfrozen phase starts at the next epoch (unfrozen_from); in the unfrozen
    phase it ends the run. Each phase starts at its own peak learning rate, from which the plateau rule lowers it."""

    def __init__(self, rules: stopping.WatchRules, state: dict | None = None):
        super().__init__()
        self.rules, self.state = rules, stopping.WatchState(**(state or {}))
        self.phase, self.last_phase = None, True  # the Phase being fitted, and whether another follows (start_phase)

    def start_phase(self, phase, last_phase: bool, min_lr: float = 0.0) -> None:
        """Before a phase's fit: its epochs, whether it is the run's last, the learning rate the plateau rule stops
        at."""
        self.phase, self.last_phase = phase, last_phase
        self.rules = stopping.WatchRules(**{**asdict(self.rules), "min_lr": min_lr})

    def state_dict(self) -> dict:
        return asdict(self.state)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.rules.monitor)
        if value is None:  # an epoch without evaluation: nothing to compare
            return
        verdict = stopping.judge_epoch(self.state, self.rules, epoch + 1, value, self.phase.first_epoch)
        if verdict.lower:
            self.lower_learning_rate(epoch + 1, verdict.why)
        if verdict.stop:
            self.stop(epoch + 1, verdict.why)

    def lower_learning_rate(self, done: int, why: str) -> None:
        lowered = lower_on_plateau(self.model.optimizer, self.rules.plateau_factor, self.rules.min_lr)
        if lowered:
            self.state.reduced_epoch = done
            print(f"Epoch {done}: {why}: plateau, learning rate {lowered[0]:.2e} -> {lowered[1]:.2e}")

    def stop(self, done: int, why: str) -> None:
        self.model.stop_training = True
        print(stopping.early_stop(self.state, done, why, self.last_phase))


class CheckpointSaver(keras.callbacks.Callback):
    """At each epoch's end, in this order: the resumable checkpoint (the commit point: a run resumes from the newest
    one; utils/training/resumable.py), the epoch's weights files (utils/weights/checkpoint.py: EpochFiles), then the
    history files. Every file is written atomically, and Ctrl-C waits for the whole sequence. A kill in the middle
    leaves the resumable checkpoint whole; the files after it that it did not reach are written when the run resumes
    (repair), from the same weights.

    Args:
        config: the run's TrainConfig as a dict, which the resumable checkpoint records.
        history: the LossHistory whose rows the checkpoint carries and whose files it writes.
        best: {"monitor", "value", "epoch"} so far ({} for a new run).
        resumed_epoch: the epoch a resumed run starts after (0 for a new run): its files are repaired first.
        watch: the run's Watch, whose state the checkpoint carries (it acts before this callback).
    """

    def __init__(self, files, monitor: str, config: dict, history, best: dict, resumed_epoch=0, watch=None):
        super().__init__()
        self.files, self.monitor, self.config, self.history, self.watch = files, monitor, config, history, watch
        self.best = dict(best) if best.get("monitor") == monitor else {}
        self.resumed_epoch = resumed_epoch

    def on_train_begin(self, logs=None):
        if self.resumed_epoch:  # once, at the first phase of a resumed run: the model holds the checkpoint's weights
            missing_last, missing_best = self.files.unwritten(self.resumed_epoch, self.best.get("epoch"))
            if missing_last or missing_best:
                print(
                    f"Writing the weights files of epoch {self.resumed_epoch} that the interrupted run did not finish."
                )
                self.files.write(
                    self.model, self.resumed_epoch, self.best if missing_best else None, self.history.rows[-1]
                )
            self.resumed_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        with deferred_interrupt():  # Ctrl-C lands after the epoch's files are all written, never between them
            value = logs.get(self.monitor)
            improved = value is not None and stopping.is_better(self.monitor, value, self.best.get("value"))
            if improved:
                self.best = {"monitor": self.monitor, "value": float(value), "epoch": epoch + 1}
                print(f"Epoch {epoch + 1}: {self.monitor} improved to {value:.4f}, saving best_epoch_weights")
            state = RunState(epoch + 1, self.config, self.history.run_dir, self.history.rows, self.best)
            state.watch = self.watch.state_dict() if self.watch else {}
            writing = time.perf_counter()
            save_resumable(self.model, self.files.save_dir, self.files.settings, state)
            seconds = time.perf_counter() - writing
            share = seconds / (time.perf_counter() - self.epoch_started)
            print(f"Epoch {epoch + 1}: resumable checkpoint written in {seconds:.2f} s ({share:.1%} of the epoch)")
            self.files.write(self.model, epoch + 1, self.best if improved else None, self.history.rows[-1])
            self.history.write()


class StepClock(keras.callbacks.Callback):
    """fit's hooks to a phase's PhaseClock (utils/training/timeline.py): compile and start, steps, the first step's
    tracing, the val loss, Keras' loop between steps."""

    def __init__(self, clock: PhaseClock):
        super().__init__()
        self.clock = clock

    def on_train_begin(self, logs=None):
        self.clock.fit_started()

    def on_epoch_begin(self, epoch, logs=None):
        self.clock.epoch_started()

    def on_epoch_end(self, epoch, logs=None):
        self.clock.mark_now()

    def on_train_batch_begin(self, batch, logs=None):
        self.clock.step_started()

    def on_train_batch_end(self, batch, logs=None):
        self.clock.step_ended()

    def on_train_end(self, logs=None):
        self.clock.fit_ended()

    def on_test_begin(self, logs=None):
        self.clock.test_started()

    def on_test_end(self, logs=None):
        self.clock.test_ended()


class Lap(keras.callbacks.Callback):
    """Placed after a callback: books its epoch-end and batch-end work under `stage` (PhaseClock.lap), without
    wrapping it."""

    def __init__(self, clock: PhaseClock, stage: str):
        super().__init__()
        self.clock, self.stage = clock, stage

    def on_epoch_end(self, epoch, logs=None):
        self.clock.lap(self.stage)

    def on_train_batch_end(self, batch, logs=None):
        self.clock.lap(self.stage)
