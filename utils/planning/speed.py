"""The planned network's speed on this machine, measured before the run: a few training steps and forward calls of
a throwaway copy at the planned input and batch, in the run's precision, and one weights file written where the run
writes its own. What a budget is planned from; the measurement counts in the budget."""

import os
import statistics
import tempfile
import time
from dataclasses import dataclass

import keras
import numpy as np

from nets.models import Network, build_model, set_backbone_trainable
from utils.files.atomic import TEMPORARY_PREFIX
from utils.files.bands import Bands
from utils.losses import build_loss
from utils.training.optimizers import make_optimizer
from utils.training.precise_bn import trainable_batch_norms

# The median of up to TIMED_STEPS steps, so that one slow step on a shared machine does not set the plan; at least
# MIN_TIMED_STEPS, fewer than TIMED_STEPS once they have taken TIMED_SECONDS (a large input's steps take seconds).
TIMED_STEPS, MIN_TIMED_STEPS, TIMED_SECONDS = 5, 2, 4.0


@dataclass(frozen=True)
class Speed:
    """Seconds: a training step of the planned batch, a forward call of it, the first step's and the first call's
    extra time (tracing: paid again by each phase), building the network, and writing its weights once; whether
    the network has batch normalisation (precise BN then runs after each epoch); and a step with the encoder frozen
    (no gradients through it: under the AVX2 cap 0.7 of a step for the VGG16-UNet), 0 when not measured."""

    step: float
    forward: float
    trace_step: float
    trace_forward: float
    build: float
    write: float
    batch_norm: bool = False
    frozen_step: float = 0.0

    def describe(self, batch_size: int) -> str:
        frozen = f" ({self.frozen_step:.3f} s with the encoder frozen)" if self.frozen_step else ""
        return (
            f"a training step of {batch_size} images {self.step:.3f} s{frozen}, a forward call {self.forward:.3f} s, "
            f"tracing {self.trace_step + self.trace_forward:.1f} s, writing the weights {self.write:.2f} s"
        )


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def random_batch(model: keras.Model, batch_size: int, bands: Bands, num_classes: int) -> tuple:
    """(images, labels) of batch_size random samples at the model's input and output sizes."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size, *model.input_shape[1:])).astype(bands.input_dtype)
    labels = rng.integers(0, num_classes, (batch_size, *model.output_shape[1:3])).astype(np.uint8)
    return images, labels


def step_seconds(model: keras.Model, images, labels) -> tuple:
    """(a step's seconds, the first step's extra seconds: its tracing) of model.train_on_batch."""
    first = timed(lambda: model.train_on_batch(images, labels))
    steps = []
    while len(steps) < MIN_TIMED_STEPS or (len(steps) < TIMED_STEPS and sum(steps) < TIMED_SECONDS):
        steps.append(timed(lambda: model.train_on_batch(images, labels)))
    step = statistics.median(steps)
    return step, max(0.0, first - step)


def measure_speed(network: Network, batch_size: int, bands: Bands, save_dir: str, frozen_batch_size: int = 0) -> Speed:
    """The Speed of `network` for images of `bands` at batch_size (train.py's optimizer and loss), its weights
    written into save_dir and removed; with frozen_batch_size, also a step of that batch with the encoder frozen
    (nets/models.py: set_backbone_trainable)."""
    started = time.perf_counter()
    model = build_model(
        network.model, network.input_shape, network.num_classes, network.backbone, bands=bands, head=network.head
    )
    loss = build_loss([1.0] * network.num_classes, dice_loss=True, head=network.head)
    model.compile(optimizer=make_optimizer("adam", 1e-5), loss=loss)
    build = time.perf_counter() - started
    images, labels = random_batch(model, batch_size, bands, network.num_classes)
    step, trace_step = step_seconds(model, images, labels)
    first_call = timed(lambda: model.predict_on_batch(images))
    forward = min(timed(lambda: model.predict_on_batch(images)) for _ in range(2))
    # a temporary file of the run's kind, where the run writes (a folder not made yet: the system's temporary one)
    folder = save_dir if os.path.isdir(save_dir) else tempfile.gettempdir()
    path = os.path.join(folder, f"{TEMPORARY_PREFIX}speed-{os.getpid()}.weights.h5")
    try:
        write = timed(lambda: model.save_weights(path))
    finally:
        if os.path.exists(path):
            os.remove(path)
    norms = bool(trainable_batch_norms(model))
    frozen_step = 0.0
    if frozen_batch_size:
        set_backbone_trainable(model, False)
        model.compile(optimizer=make_optimizer("adam", 1e-5), loss=loss)  # trainability is read at compile
        frozen_step, _ = step_seconds(model, *random_batch(model, frozen_batch_size, bands, network.num_classes))
    trace_call = max(0.0, first_call - forward)
    return Speed(step, forward, trace_step, trace_call, build, write, norms, frozen_step)


def measure_apart(network: Network, batch_size: int, bands: Bands, save_dir: str, frozen_batch_size: int = 0) -> Speed:
    """measure_speed, leaving Keras as it found it: the throwaway network's layer names released (the run's network
    is named as in a run without the measurement) and the precision policy kept."""
    policy = keras.mixed_precision.global_policy().name
    try:
        return measure_speed(network, batch_size, bands, save_dir, frozen_batch_size)
    finally:
        keras.utils.clear_session()  # also resets the policy
        keras.mixed_precision.set_global_policy(policy)
