"""The learning rate, all of it: scaled for the batch and clamped, scheduled over the whole run (both phases) as
warm-up + cosine or step decay by fractional epoch, or held and lowered on a plateau (the Watch in utils/callbacks.py
decides when; lower_on_plateau does it)."""

import math
from dataclasses import dataclass

import keras
from keras import ops

NOMINAL_BATCH_SIZE = 16
# Range the batch-scaled rate is clamped to. The floors are those of the bubbliiiing VOC platforms (small
# batches would otherwise train too slowly); their Adam ceiling is also 1e-4, which would make init_lr
# meaningless, so ours is 1e-3.
LR_LIMITS = {"adam": (1e-4, 1e-3), "sgd": (5e-4, 1e-1)}
NUM_STEPS = 10  # step decay: the rate falls in this many equal steps from init_lr to min_lr


def scaled_learning_rates(init_lr: float, min_lr: float, batch_size: int, optimizer_type: str):
    """(max, min) learning rate for a batch size: lr * batch / 16, clamped to the optimizer's range."""
    low, high = LR_LIMITS[optimizer_type]
    scale = batch_size / NOMINAL_BATCH_SIZE
    max_lr = min(max(scale * init_lr, low), high)
    min_lr = min(max(scale * min_lr, low * 1e-2), high * 1e-2)
    return max_lr, min_lr


def clamp_note(init_lr: float, min_lr: float, batch_size: int, optimizer_type: str) -> str:
    """What scaled_learning_rates changed beyond the batch scaling, said ('' when nothing): no rate is changed
    without a word."""
    low, high = LR_LIMITS[optimizer_type]
    scale = batch_size / NOMINAL_BATCH_SIZE
    notes = []
    for name, value, (floor, ceiling) in (
        ("init_lr", init_lr, (low, high)),
        ("min_lr", min_lr, (low * 1e-2, high * 1e-2)),
    ):
        scaled = scale * value
        if not floor <= scaled <= ceiling:
            bound = "ceiling" if scaled > ceiling else "floor"
            notes.append(
                f"{name} {value:.2e} x {batch_size}/{NOMINAL_BATCH_SIZE} = {scaled:.2e} is held at {optimizer_type}'s "
                f"{bound} {min(max(scaled, floor), ceiling):.2e}"
            )
    return "; ".join(notes)


def warmup_epochs(total_epochs: int) -> float:
    """The warm-up's length: 5 % of the run, at least 1 epoch and at most 3."""
    return min(max(0.05 * total_epochs, 1.0), 3.0)


def learning_rate(epoch, total_epochs: int, max_lr: float, min_lr: float, decay_type: str):
    """Rate at a fractional epoch (a float or a scalar tensor).

    cos: linear warm-up from max_lr / 10 over min(max(5 % of the run, 1), 3) epochs, then cosine to min_lr.
    step: max_lr * r ** floor(epoch / (total / 10)), r chosen so that the last step reaches min_lr.
    """
    epoch = ops.cast(epoch, "float32")
    if decay_type == "step":
        rate = (min_lr / max_lr) ** (1 / (NUM_STEPS - 1))
        return max_lr * ops.power(rate, ops.floor(epoch / (total_epochs / NUM_STEPS)))
    warmup = warmup_epochs(total_epochs)
    warm = max_lr / 10 + (max_lr - max_lr / 10) * epoch / warmup
    progress = ops.clip((epoch - warmup) / max(total_epochs - warmup, 1e-6), 0.0, 1.0)
    cosine = min_lr + 0.5 * (max_lr - min_lr) * (1 + ops.cos(math.pi * progress))
    return ops.where(epoch < warmup, warm, cosine)


@keras.saving.register_keras_serializable(package="unet")
class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Optimizer step -> `learning_rate` at epoch start_epoch + step / steps_per_epoch.

    One optimizer serves one phase; start_epoch places it in the whole run, so the curve continues
    across the freeze -> unfreeze switch and across a resume. From rewarm_epoch (> 0: a fresh optimizer started
    there, the unfrozen phase's or a run started at init_epoch) the rate warms up again, from a tenth over the
    warm-up's length: Adam's first steps move every weight by about the full rate, and at the peak rate they threw
    the newly unfrozen pretrained encoder off (the demo in float32 fell to background: docs/planning.md).
    """

    def __init__(self, start_epoch, steps_per_epoch, total_epochs, max_lr, min_lr, decay_type, rewarm_epoch=0):
        self.start_epoch, self.steps_per_epoch, self.total_epochs = start_epoch, steps_per_epoch, total_epochs
        self.max_lr, self.min_lr, self.decay_type = max_lr, min_lr, decay_type
        self.rewarm_epoch = rewarm_epoch

    def __call__(self, step):
        epoch = self.start_epoch + ops.cast(step, "float32") / self.steps_per_epoch
        rate = learning_rate(epoch, self.total_epochs, self.max_lr, self.min_lr, self.decay_type)
        if self.rewarm_epoch > 0:
            progress = ops.clip((epoch - self.rewarm_epoch) / warmup_epochs(self.total_epochs), 0.0, 1.0)
            rate = rate * (0.1 + 0.9 * progress)
        return rate

    def get_config(self):
        return dict(vars(self))


def phase_schedule(
    decay_type: str, max_lr: float, min_lr: float, start_epoch: int, steps_per_epoch: int, total: int, rewarm: int = 0
):
    """A phase optimizer's learning_rate: a number for plateau (lower_on_plateau changes it), else an EpochSchedule
    from start_epoch (the epoch at the optimizer's step 0) over the run's `total` epochs, warmed up again from
    epoch `rewarm` when > 0."""
    if decay_type == "plateau":
        return max_lr
    return EpochSchedule(start_epoch, steps_per_epoch, total, max_lr, min_lr, decay_type, rewarm)


def describe_schedule(decay_type: str, max_lr: float, min_lr: float, plateau_factor: float, plateau_patience: int):
    """The phase's rates in words, for its first line."""
    if decay_type == "plateau":
        return (
            f"lr {max_lr:.2e}, x {plateau_factor} after {plateau_patience} epochs without a better val metric, down "
            f"to {min_lr:.2e} (plateau)"
        )
    return f"lr {max_lr:.2e} -> {min_lr:.2e} ({decay_type})"


def lower_on_plateau(optimizer, factor: float, floor: float):
    """The optimizer's learning rate times factor, no lower than floor: (before, after), or None when it is at the
    floor already."""
    current = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    lowered = max(current * factor, floor)
    if lowered >= current * (1 - 1e-6):
        return None
    optimizer.learning_rate = lowered
    return current, lowered


@dataclass(frozen=True)
class LearningRates:
    """A run's learning rate and the optimizer it drives (train.py's settings of the same names; decay_type is its
    lr_decay_type, total_epochs its unfreeze_epoch). init_lr and min_lr are at batch 16: each phase scales them
    for its batch."""

    init_lr: float = 4e-4
    min_lr: float = 1e-6
    decay_type: str = "cos"
    total_epochs: int = 24
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    optimizer_type: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0

    def for_batch(self, batch_size: int) -> tuple:
        """(max, min) learning rate at batch_size (scaled_learning_rates)."""
        return scaled_learning_rates(self.init_lr, self.min_lr, batch_size, self.optimizer_type)

    def schedule(self, batch_size: int, start_epoch: int, steps_per_epoch: int, fresh_from: int = 0):
        """An optimizer's learning_rate at batch_size, its step 0 at start_epoch (phase_schedule), warmed up again
        from fresh_from, the epoch its fresh optimizer started at (0: the run's start, whose warm-up is the
        schedule's own)."""
        max_lr, min_lr = self.for_batch(batch_size)
        total = self.total_epochs
        return phase_schedule(self.decay_type, max_lr, min_lr, start_epoch, steps_per_epoch, total, fresh_from)

    def describe(self, batch_size: int) -> str:
        """The rates at batch_size in words, with what the clamp held, if anything."""
        max_lr, min_lr = self.for_batch(batch_size)
        held = clamp_note(self.init_lr, self.min_lr, batch_size, self.optimizer_type)
        rates = describe_schedule(self.decay_type, max_lr, min_lr, self.plateau_factor, self.plateau_patience)
        return rates + (f" ({held})" if held else "")
