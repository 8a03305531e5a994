"""A run's time, estimated from the measured Speed (utils/planning/speed.py), and fitted into a budget: the epochs
and the evaluation period are chosen so that the whole learning-rate schedule completes before the budget ends,
with evaluation a small share of the run."""

import math
from dataclasses import dataclass

from utils.planning.rules import Planned
from utils.planning.speed import Speed
from utils.training.stopping import evaluated

PIPELINE_FACTOR = 1.05  # a step fed by the tf.data pipeline against one on an in-memory batch (docs/planning.md)
EVAL_FACTOR = 1.5  # val mIoU's forward calls and their resizing, argmax and confusion matrix, against bare calls
# An epoch's end writes the resumable checkpoint (the weights and Adam's two moments), last_epoch_weights and, when
# it is the best, a copy: about this many times the measured write (a first write, slower than the run's later ones).
FILES_PER_EPOCH = 2
FORWARD_TRACES = 3  # ... and its forward calls: the val loss's, val mIoU's and precise BN's
PRECISE_BN_FACTOR = 3.0  # precise BN's calls (training-mode statistics, then their mean) against forward calls
# s: an epoch's start and end beyond its steps: the pipelines' iterators started again, Keras' epoch loop, the
# history, its curves and TensorBoard's scalars (train.py's timing.json: "other" 0.5-1 s an epoch)
EPOCH_OVERHEAD = 0.6
END_RESERVE = 3.0  # s: the process's end after the last file (TensorFlow's teardown), inside the budget too
EVAL_OVERHEAD = 0.5  # s: an evaluation's start, its per-class line and its TensorBoard images
EVAL_SHARE = 0.10  # val mIoU and the val loss take at most this share of the run
MARGIN = 0.92  # of the remaining budget, what is planned; the rest absorbs what the measurement misses
MIN_EPOCHS = 3
SAVED_COPIES = 5  # save_period keeps about this many ep*.weights.h5 copies over a run


@dataclass(frozen=True)
class Workload:
    """What a run computes: its train and val images, its batch, a val image's forward work in windows (1 in
    fit; in slide, the val images' windows at image_scale, on average), and whether val mIoU is computed (eval_flag:
    the val loss then runs with it, every eval_period epochs; else every epoch)."""

    train_images: int
    val_images: int
    batch_size: int
    windows: float = 1.0
    calibration_images: int = 0  # precise BN's, when the network has batch normalisation
    frozen_batch_size: int = 0  # the frozen phase's batch; 0: batch_size
    val_miou: bool = True


@dataclass(frozen=True)
class Estimate:
    """Seconds: an epoch (its steps, precise BN, its files; the val loss without val mIoU), one evaluation (val mIoU
    and the val loss), what each phase pays once (tracing), what the run pays once after the plan (building the
    network, the process's end), an epoch with the encoder frozen (0: priced as an epoch), and that epoch's steps
    alone (what the budget's refit measures the machine by)."""

    epoch: float
    evaluation: float
    per_phase: float
    once: float = 0.0
    frozen_epoch: float = 0.0
    frozen_steps: float = 0.0

    def seconds(self, epochs: int, eval_period: int, frozen: int = 0) -> float:
        """A run of `epochs`, the first `frozen` of them with the encoder frozen (a phase of their own)."""
        evaluations = sum(evaluated(epoch, eval_period, epochs) for epoch in range(1, epochs + 1))
        frozen = min(frozen, epochs)
        epochs_cost = frozen * (self.frozen_epoch or self.epoch) + (epochs - frozen) * self.epoch
        phases = 2 if 0 < frozen < epochs else 1  # each phase compiles and traces its steps again
        return epochs_cost + evaluations * self.evaluation + phases * self.per_phase + self.once


def estimate(speed: Speed, work: Workload) -> Estimate:
    """The run's costs on this machine."""
    val_loss = math.ceil(work.val_images / work.batch_size) * speed.forward
    calibration = math.ceil(work.calibration_images / work.batch_size) if speed.batch_norm else 0
    beyond_steps = PRECISE_BN_FACTOR * calibration * speed.forward + FILES_PER_EPOCH * speed.write + EPOCH_OVERHEAD
    beyond_steps += 0.0 if work.val_miou else val_loss
    epoch = work.train_images // work.batch_size * speed.step * PIPELINE_FACTOR + beyond_steps
    frozen_steps = work.train_images // (work.frozen_batch_size or work.batch_size)
    frozen_steps_seconds = frozen_steps * (speed.frozen_step or speed.step) * PIPELINE_FACTOR
    frozen_epoch = frozen_steps_seconds + beyond_steps if speed.frozen_step else 0.0
    evaluation = 0.0
    if work.val_miou and work.val_images:
        evaluation = math.ceil(work.val_images * work.windows / work.batch_size) * speed.forward * EVAL_FACTOR
        evaluation += EVAL_OVERHEAD + val_loss
    per_phase = speed.trace_step + FORWARD_TRACES * speed.trace_forward
    return Estimate(epoch, evaluation, per_phase, speed.build + END_RESERVE, frozen_epoch, frozen_steps_seconds)


def eval_period_for(cost: Estimate) -> int:
    """The fewest epochs between evaluations that keep them (val mIoU and the val loss) within EVAL_SHARE of the
    run."""
    return max(1, math.ceil((1 - EVAL_SHARE) / EVAL_SHARE * cost.evaluation / cost.epoch))


def plan_eval_period(cost: Estimate) -> Planned:
    """eval_period from eval_period_for, with its reason: planned with a budget or without one (where evaluation would
    otherwise run every epoch: on Dubai's 14 large val tiles, slid at 0.75, 2.3 times an epoch's steps)."""
    period = eval_period_for(cost)
    reason = f"val mIoU and the val loss take {cost.evaluation:.1f} s: every {period} epochs keeps them within "
    return Planned(period, reason + f"{EVAL_SHARE:.0%}")


def fit_budget(cost: Estimate, seconds_left: float, budget_minutes: float, most: int = 0, frozen_for=None) -> dict:
    """unfreeze_epoch and eval_period that fit seconds_left (MARGIN of it), each a Planned; at most `most` epochs
    when given (a budget as a ceiling: the planned epochs, fewer if they do not fit). frozen_for(epochs): how many
    of them train with the encoder frozen (none when not given).

    Raises:
        ValueError: when not even MIN_EPOCHS fit, naming the budget that would.
    """
    evaluation, frozen_for = plan_eval_period(cost), frozen_for or (lambda epochs: 0)
    period = evaluation.value

    def run_seconds(epochs: int) -> float:
        return cost.seconds(epochs, period, frozen_for(epochs))

    usable = seconds_left * MARGIN
    epochs = 0
    while run_seconds(epochs + 1) <= usable and not (most and epochs >= most):
        epochs += 1
    if epochs < MIN_EPOCHS:
        needed = (run_seconds(MIN_EPOCHS) / MARGIN + budget_minutes * 60 - seconds_left) / 60
        raise ValueError(
            f"time_budget={budget_minutes:g} min: an epoch takes about {cost.epoch:.0f} s on this machine, so not "
            f"even {MIN_EPOCHS} epochs fit. Give --time_budget {math.ceil(needed)} or more, or a smaller "
            "--input_shape, or a lighter network (e.g. --backbone mobilenetv2)."
        )
    if most and epochs >= most:
        why = f"the {most} planned epochs of about {cost.epoch:.1f} s fit the budget"
    else:
        why = f"{epochs} epochs of about {cost.epoch:.1f} s fit the budget"
    why += f" ({run_seconds(epochs) / 60:.1f} min planned)"
    return {"unfreeze_epoch": Planned(epochs, why), "eval_period": evaluation}


@dataclass(frozen=True)
class Fitted:
    """A budget's fit (fit_budget's), kept to fit the epochs again after the frozen phase (refit_epochs): its
    estimate, the budget in minutes, the evaluation period and the ceiling on the epochs (0: none)."""

    cost: Estimate
    minutes: float
    eval_period: int
    most: int = 0


def refit_epochs(fitted: Fitted, frozen: int, steps_seconds: float, seconds_left: float) -> tuple:
    """(epochs, scale): the run's epochs fitted again once its first `frozen` epochs, a phase of their own, have
    trained, their steps taking steps_seconds. A few steps before the run can fall into a slow (or fast) spell of a
    shared machine that whole epochs even out: the rest of the run is priced at the estimate times `scale`, the
    frozen steps' time against their estimate, and fitted into MARGIN of seconds_left; at least one epoch after the
    frozen ones, at most the ceiling. The steps alone are compared: what a phase pays once (the pipeline's start, a
    first evaluation's tracing) would be multiplied over every epoch after it. A slower machine is believed in full;
    a faster one only halfway (the scale moved half-way to 1): the frozen step's own measurement can have erred
    high, which says nothing of the full step's, and a run that ends late breaks the budget where one that ends
    early only trains a little less."""
    cost, period = fitted.cost, fitted.eval_period
    scale = steps_seconds / (frozen * cost.frozen_steps) if cost.frozen_steps else 1.0  # 0: no step was measured
    scale = scale if scale >= 1 else (1 + scale) / 2

    def rest_seconds(epochs: int) -> float:
        evaluations = sum(evaluated(epoch, period, epochs) for epoch in range(frozen + 1, epochs + 1))
        return scale * ((epochs - frozen) * cost.epoch + evaluations * cost.evaluation + cost.per_phase) + END_RESERVE

    epochs = frozen + 1
    while rest_seconds(epochs + 1) <= seconds_left * MARGIN and not (fitted.most and epochs >= fitted.most):
        epochs += 1
    return epochs, scale


def frozen_epochs(epochs: int) -> int:
    """The frozen phase planned for a run of `epochs`: an eighth of it, at least 1."""
    return max(1, round(epochs / 8))


def phase_lengths(epochs: int, freeze_train: bool) -> dict:
    """freeze_epoch (an eighth of the run, at least 1, when the encoder is frozen first) and save_period (about
    SAVED_COPIES copies)."""
    planned = {"save_period": Planned(max(1, math.ceil(epochs / SAVED_COPIES)), f"about {SAVED_COPIES} copies")}
    if freeze_train:
        planned["freeze_epoch"] = Planned(frozen_epochs(epochs), "an eighth of the run")
    return planned
