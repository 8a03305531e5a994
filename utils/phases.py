"""Training phases: the encoder frozen, then the whole network. Each phase is compiled for its trainable set and
learning rates and fitted from its first epoch (Keras' initial_epoch), so that a run can start at any epoch."""

import time
from dataclasses import dataclass, replace

import tensorflow as tf

from nets.models import set_backbone_trainable
from utils.callbacks import Lap, PreciseBatchNorm, StepClock
from utils.dataloader import Pipeline, Shard, build_train_dataset, build_val_dataset
from utils.training.learning_rate import LearningRates
from utils.training.optimizers import make_optimizer
from utils.training.precise_bn import calibration_samples, trainable_batch_norms
from utils.training.resumable import load_optimizer_state
from utils.training.stopping import evaluated
from utils.training.timeline import CALLBACK_STAGES, PhaseClock


@dataclass(frozen=True)
class Phase:
    first_epoch: int  # epochs done before it: it trains epochs first_epoch + 1 .. end_epoch
    end_epoch: int
    batch_size: int  # global: the images of a step over all replicas together
    frozen: bool  # the pretrained encoder is frozen


@dataclass(frozen=True)
class PhasePlan:
    """train.py's phase settings of the same names: with freeze_train, epochs 1..freeze_epoch train the encoder
    frozen at freeze_batch_size; the rest, to unfreeze_epoch, the whole network at unfreeze_batch_size."""

    freeze_train: bool = True
    freeze_epoch: int = 3
    unfreeze_epoch: int = 24
    freeze_batch_size: int = 4
    unfreeze_batch_size: int = 4

    def phases(self, unfrozen_from=None) -> list:
        """The Phases: the frozen one (when freeze_train) to freeze_epoch, then the unfrozen one to unfreeze_epoch.
        A run that starts later (init_epoch, --resume) skips what lies before.

        Args:
            unfrozen_from: the epoch early stopping ended the frozen phase after (utils/training/stopping.py), or
                None.
        """
        split = self.freeze_epoch if self.freeze_train else 0
        split = split if unfrozen_from is None else unfrozen_from
        planned = [
            Phase(0, split, self.freeze_batch_size, frozen=True),
            Phase(split, self.unfreeze_epoch, self.unfreeze_batch_size, frozen=False),
        ]
        return [phase for phase in planned if phase.end_epoch > phase.first_epoch]

    def batch_sizes(self) -> list:
        """The batch sizes the run trains at."""
        return [self.unfreeze_batch_size] + ([self.freeze_batch_size] if self.freeze_train else [])


def phase_optimizer(rates: LearningRates, phase: Phase, steps_per_epoch: int, initial_epoch: int, schedule_start: int):
    """The phase's optimizer: the run's learning rates scaled for the phase's (global) batch, on a schedule placed
    in the whole run, so the curve continues across the phase switch and a resume.

    Args:
        initial_epoch: the epochs done when the phase's fit starts (its first epoch, or later on a resume).
        schedule_start: the epoch at the optimizer's step 0: the phase's first epoch, or the epoch a run with a
            fresh optimizer starts at (init_epoch).

    Returns:
        (optimizer, a line describing the phase).
    """
    # A fresh optimizer after the run's start (the unfrozen phase's, or init_epoch's) warms up again from its start.
    schedule = rates.schedule(phase.batch_size, schedule_start, steps_per_epoch, fresh_from=schedule_start)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    split = f" ({phase.batch_size // replicas} on each of {replicas} replicas)" if replicas > 1 else ""
    line = (
        f"{'Frozen' if phase.frozen else 'Unfrozen'} phase: epochs {initial_epoch + 1}-{phase.end_epoch}, "
        f"batch {phase.batch_size}{split}, {steps_per_epoch} steps/epoch, {rates.describe(phase.batch_size)}"
    )
    return make_optimizer(rates.optimizer_type, schedule, rates.momentum, rates.weight_decay), line


def compile_phase(model, loss, phase: Phase, optimizer) -> None:
    """Sets the phase's trainable layers and compiles the model with its optimizer."""
    set_backbone_trainable(model, not phase.frozen)
    # With mixed_float16 as the policy, compile wraps the optimizer in a LossScaleOptimizer (auto_scale_loss).
    model.compile(optimizer=optimizer, loss=loss)
    # Built here, its variables exist before fit traces the training step: built inside the first trace instead,
    # they make TensorFlow trace the step a second time (about half of the first step's time on a 200-layer network).
    model.optimizer.build(model.trainable_variables)


@dataclass(frozen=True)
class Run:
    """What every phase of a train.py run shares: its phases and learning rates, its loss, samples ((image path,
    label path) each) and how they are made into batches, its seed, where it starts (an epoch, and the resumable
    checkpoint or None: inside the phase it stopped in, the checkpoint's optimizer state is restored, so the phase
    goes on as if it had never stopped), this worker's shard of the training files, the Timeline its stages are
    timed into (or None), how often the val loss is computed, and the samples oversampled."""

    plan: PhasePlan
    rates: LearningRates
    loss: object
    train: list
    val: list
    pipeline: Pipeline
    seed: int = 11
    start_epoch: int = 0
    checkpoint: str | None = None
    shard: Shard = Shard()
    timeline: object = None
    val_period: int = 1  # the val loss every this many epochs and at the run's last (eval_period's, with val mIoU)
    oversampled: list = ()  # the train samples a share of each batch is drawn from (Pipeline.oversample)


def precise_bn(model, run: Run, phase: Phase, steps_per_epoch: int) -> list:
    """[PreciseBatchNorm] when the phase trains batch normalisation layers, else []."""
    norms = trainable_batch_norms(model)
    if not norms:
        return []
    # Every worker computes the same statistics from the same images, so their copies stay equal.
    chosen = calibration_samples(run.train)
    calibration = build_val_dataset(chosen, replace(run.pipeline, weight_map=None), phase.batch_size)
    print(
        f"Batch normalisation: {len(norms)} layers take their statistics from {len(chosen)} training images "
        "after each epoch (precise BN)"
    )
    return [PreciseBatchNorm(calibration, steps_per_epoch)]


def fit_phase(model, run: Run, phase: Phase, callbacks: list) -> float:
    """One phase of the run: compile, then fit its epochs from where the run starts. Returns the seconds its steps
    took (the phase's wall time without a timeline to clock them)."""
    started = time.time()
    name = "frozen phase" if phase.frozen else "unfrozen phase"
    clock = PhaseClock(run.timeline, name) if run.timeline else None  # the phase's start: compile and datasets
    initial_epoch = max(phase.first_epoch, run.start_epoch)
    restore = run.checkpoint is not None and initial_epoch > phase.first_epoch
    steps_per_epoch = len(run.train) // phase.batch_size
    # A fresh optimizer's step 0 is the epoch it starts at; a restored one counts its steps from the phase's start.
    schedule_start = phase.first_epoch if restore else initial_epoch
    optimizer, line = phase_optimizer(run.rates, phase, steps_per_epoch, initial_epoch, schedule_start)
    compile_phase(model, run.loss, phase, optimizer)
    if restore:
        load_optimizer_state(model, run.checkpoint)
    print(f"\n{line}" + (f"; resumed after epoch {initial_epoch} with the optimizer's state" if restore else ""))
    # The phase's stream of batches from its first epoch on (seeded per phase); a resumed phase skips the epochs
    # it has done, so each epoch sees what it would have seen in an uninterrupted run.
    seed, skip = run.seed + phase.first_epoch, (initial_epoch - phase.first_epoch) * steps_per_epoch
    batches = build_train_dataset(run.train, run.pipeline, phase.batch_size, seed, run.shard, skip, run.oversampled)
    val_batches = build_val_dataset(run.val, run.pipeline, phase.batch_size)
    callbacks = precise_bn(model, run, phase, steps_per_epoch) + list(callbacks)
    model.fit(
        batches,
        epochs=phase.end_epoch,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps_per_epoch,
        validation_data=val_batches,
        validation_freq=validated_epochs(initial_epoch, phase.end_epoch, run.val_period, run.plan.unfreeze_epoch),
        callbacks=timed_callbacks(clock, callbacks) if clock else callbacks,
        shuffle=False,  # the tf.data pipeline shuffles
    )
    return clock.steps_seconds if clock else time.time() - started


def validated_epochs(first_epoch: int, end_epoch: int, period: int, last_epoch: int) -> list:
    """The epochs (1-based, first_epoch + 1 .. end_epoch) whose val loss is computed: every period-th and the run's
    last, as EvalCallback's val mIoU, so that both val passes stay within the plan's share of the run."""
    return [epoch for epoch in range(first_epoch + 1, end_epoch + 1) if evaluated(epoch, period, last_epoch)]


def timed_callbacks(clock: PhaseClock, callbacks: list) -> list:
    """A phase's callbacks for fit, timed: its StepClock first (it sees each step end before any other callback
    works), then each callback followed by a Lap that books the callback's epoch-end and batch-end work under its
    stage (Keras calls a list's callbacks one after another)."""
    timed = [StepClock(clock)]
    for callback in callbacks:
        timed += [callback, Lap(clock, CALLBACK_STAGES.get(type(callback).__name__, type(callback).__name__))]
    return timed
