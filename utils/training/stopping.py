"""What a run decides on its own account: early stopping and the plateau learning rate, which act on the validation
metric, and the message of a run stopped because its loss is no longer a number. The callbacks that act on these
decisions (Watch, NonFiniteGuard) are in utils/callbacks.py.

Keras has EarlyStopping and ReduceLROnPlateau, but both start afresh at every fit call (train.py fits each phase
separately) and keep their counters where no checkpoint sees them. The Watch counts epochs in the whole run,
knows the phases and puts its state in the resumable checkpoint, so a resumed run decides as an uninterrupted one.
"""

import math
from dataclasses import dataclass


def evaluated(epoch: int, period: int, last_epoch: int) -> bool:
    """Whether the 1-based `epoch` is evaluated (val mIoU and the val loss, the monitors): every period-th, and the
    run's last."""
    return epoch % period == 0 or epoch == last_epoch


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


@dataclass(frozen=True)
class Verdict:
    """What an epoch's value calls for: `why` (the reason in words), and whether to lower the rate and to stop."""

    why: str = ""
    lower: bool = False
    stop: bool = False


def judge_epoch(state: WatchState, rules: WatchRules, done: int, value: float, phase_start: int) -> Verdict:
    """Records `value` of epoch `done` in `state` when it is the best so far; otherwise says whether the plateau's
    and early stopping's patience ran out. Patience counts epochs (not evaluations) since the later of the best
    value and the phase's start (phase_start: the epochs done before the phase); the plateau's also since its last
    reduction."""
    if is_better(rules.monitor, value, state.best):
        state.best, state.best_epoch = float(value), done
        return Verdict()
    since = done - max(state.best_epoch, phase_start)
    why = f"no better {rules.monitor} for {since} epochs (best {state.best:.4f} at epoch {state.best_epoch})"
    since_change = done - max(state.reduced_epoch, state.best_epoch, phase_start)
    lower = bool(rules.plateau_patience) and since_change >= rules.plateau_patience
    return Verdict(why, lower, bool(rules.early_stop_patience) and since >= rules.early_stop_patience)


def early_stop(state: WatchState, done: int, why: str, last_phase: bool) -> str:
    """Records in state that early stopping ended the frozen phase (unfrozen_from) or the run (stopped) after epoch
    `done`, and says so."""
    if not last_phase:
        state.unfrozen_from = done
        return (
            f"Epoch {done}: {why}: early stopping ends the frozen phase; the whole network trains from epoch {done + 1}"
        )
    state.stopped = done
    return f"Epoch {done}: {why}: early stopping ends the run; best_epoch_weights are epoch {state.best_epoch}'s"


class NonFiniteLoss(ValueError):
    """The loss became NaN or inf: train.py stops with this message (run_main prints it, no traceback)."""


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
