"""What a run does on its own account: early stopping and the plateau learning rate, which act on the validation
metric, and the guard that stops a run whose loss is no longer a number.

Keras has EarlyStopping and ReduceLROnPlateau, but both start afresh at every fit call (train.py fits each phase
separately) and keep their counters where no checkpoint sees them. The Watch below counts epochs in the whole run,
knows the phases and puts its state in the resumable checkpoint, so a resumed run decides as an uninterrupted one.
"""

import math
from dataclasses import asdict, dataclass

import keras

from utils.learning_rate import lower_on_plateau


def is_better(monitor: str, value: float, best) -> bool:
    """Whether value beats best (None: nothing yet) for the monitor: higher val_miou, lower val_loss. A value that is
    not a number (NaN: nothing measured) beats nothing."""
    if not math.isfinite(value):
        return False
    sign = 1.0 if monitor == "val_miou" else -1.0
    return best is None or sign * value > sign * best


@dataclass
class WatchState:
    """What the Watch has seen, as a resumable checkpoint records it (RunState.watch)."""

    best: float | None = None  # the best value of the monitor so far
    best_epoch: int = 0  # the epoch it was reached at
    reduced_epoch: int = 0  # the epoch of the last plateau reduction of the learning rate
    unfrozen_from: int | None = None  # early stopping ended the frozen phase after this epoch
    stopped: int = 0  # early stopping ended the run after this epoch


@dataclass(frozen=True)
class WatchRules:
    """train.py's settings for the Watch."""

    monitor: str = "val_miou"  # val_miou (higher is better) | val_loss (lower)
    early_stop_patience: int = 0  # epochs without a better value that end a phase; 0 = off
    plateau_patience: int = 0  # epochs without a better value before the learning rate is reduced; 0 = off
    plateau_factor: float = 0.5
    min_lr: float = 0.0  # the plateau reductions stop here (the phase's batch-scaled min_lr)

    @classmethod
    def of(cls, config, monitor: str) -> "WatchRules":
        plateau = config.plateau_patience if config.lr_decay_type == "plateau" else 0
        return cls(monitor, config.early_stop_patience, plateau, config.plateau_factor)


class Watch(keras.callbacks.Callback):
    """Early stopping and the plateau learning rate, on the monitor of each epoch that has one.

    Patience counts epochs (not evaluations) since the later of the best value and the phase's start; the plateau's
    also since its last reduction. Early stopping in the frozen phase ends that phase, and the unfrozen phase starts
    at the next epoch (unfrozen_from); in the unfrozen phase it ends the run. Each phase starts at its own peak
    learning rate, from which the plateau rule lowers it.
    """

    def __init__(self, rules: WatchRules, state: dict | None = None):
        super().__init__()
        self.rules, self.state = rules, WatchState(**(state or {}))
        self.phase, self.last_phase = None, True  # the Phase being fitted, and whether another follows (start_phase)

    def start_phase(self, phase, last_phase: bool, min_lr: float = 0.0) -> None:
        """Before a phase's fit: its epochs, whether it is the run's last, the learning rate the plateau rule stops
        at."""
        self.phase, self.last_phase = phase, last_phase
        self.rules = WatchRules(**{**asdict(self.rules), "min_lr": min_lr})

    def state_dict(self) -> dict:
        return asdict(self.state)

    def improved(self, value: float) -> bool:
        return is_better(self.rules.monitor, value, self.state.best)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.rules.monitor)
        if value is None:  # an epoch without evaluation: nothing to compare
            return
        done, state = epoch + 1, self.state
        if self.improved(value):
            state.best, state.best_epoch = float(value), done
            return
        since = done - max(state.best_epoch, self.phase.first_epoch)
        why = f"no better {self.rules.monitor} for {since} epochs (best {state.best:.4f} at epoch {state.best_epoch})"
        since_change = done - max(state.reduced_epoch, state.best_epoch, self.phase.first_epoch)
        if self.rules.plateau_patience and since_change >= self.rules.plateau_patience:
            self.reduce_learning_rate(done, why)
        if self.rules.early_stop_patience and since >= self.rules.early_stop_patience:
            self.stop(done, why)

    def reduce_learning_rate(self, done: int, why: str) -> None:
        lowered = lower_on_plateau(self.model.optimizer, self.rules.plateau_factor, self.rules.min_lr)
        if lowered:
            self.state.reduced_epoch = done
            print(f"Epoch {done}: {why}: plateau, learning rate {lowered[0]:.2e} -> {lowered[1]:.2e}")

    def stop(self, done: int, why: str) -> None:
        self.model.stop_training = True
        if not self.last_phase:
            self.state.unfrozen_from = done
            print(
                f"Epoch {done}: {why}: early stopping ends the frozen phase; the whole network trains from epoch "
                f"{done + 1}"
            )
        else:
            self.state.stopped = done
            print(
                f"Epoch {done}: {why}: early stopping ends the run; best_epoch_weights are epoch "
                f"{self.state.best_epoch}'s"
            )


class NonFiniteLoss(ValueError):
    """The loss became NaN or inf: train.py stops with this message (run_main prints it, no traceback)."""


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or inf, before the epoch's end could write its weights:
    the checkpoints of the last complete epoch stay as they are.

    Args:
        hints: (precision policy, init_lr, save_dir) for the message.
    """

    def __init__(self, hints: tuple):
        super().__init__()
        self.hints, self.epoch = hints, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLoss(non_finite_message(float(loss), self.epoch, batch, *self.hints))


def non_finite_message(loss: float, epoch: int, batch: int, policy: str, init_lr: float, save_dir: str) -> str:
    """What happened, what was kept and what usually causes a NaN loss, with the command to go on."""
    kept = (
        f"The checkpoints of epoch {epoch} in {save_dir}/ are kept as they were."
        if epoch
        else "No epoch was complete, so nothing was saved."
    )
    fp16 = " (this run's)" if policy == "mixed_float16" else ""
    go_on = (
        f" To go on from epoch {epoch}'s weights with changed settings: python train.py --model_path "
        f"{save_dir}/last_epoch_weights.weights.h5 --init_epoch {epoch} --save_dir {save_dir} (plus your other "
        "settings and the change)."
        if epoch
        else ""
    )
    return (
        f"Epoch {epoch + 1}, step {batch + 1}: the training loss is {loss}, so training stopped. {kept} Usual causes, "
        f"most likely first: a learning rate too high (lower init_lr, now {init_lr:g}); mixed_float16{fp16} "
        "overflowing (precision fp32, or mixed_bfloat16 where the hardware has it); labels with values that are "
        "neither a class nor 255 (python voc_annotation.py checks them); images holding NaN or inf values "
        f"(float TIFFs).{go_on}"
    )
