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

from nets.models import Network, build_model
from utils.files.atomic import TEMPORARY_PREFIX
from utils.files.bands import Bands
from utils.losses import build_loss
from utils.training.optimizers import make_optimizer
from utils.training.precise_bn import trainable_batch_norms

TIMED_STEPS = 3


@dataclass(frozen=True)
class Speed:
    """Seconds: a training step of the planned batch, a forward call of it, the first step's and the first call's
    extra time (tracing: paid again by each phase), building the network, and writing its weights once; and
    whether the network has batch normalisation (precise BN then runs after each epoch)."""

    step: float
    forward: float
    trace_step: float
    trace_forward: float
    build: float
    write: float
    batch_norm: bool = False

    def describe(self, batch_size: int) -> str:
        return (
            f"a training step of {batch_size} images {self.step:.3f} s, a forward call {self.forward:.3f} s, "
            f"tracing {self.trace_step + self.trace_forward:.1f} s, writing the weights {self.write:.2f} s"
        )


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def measure_speed(network: Network, batch_size: int, bands: Bands, save_dir: str) -> Speed:
    """The Speed of `network` for images of `bands` at batch_size (train.py's optimizer and loss), its weights
    written into save_dir and removed."""
    started = time.perf_counter()
    model = build_model(
        network.model, network.input_shape, network.num_classes, network.backbone, bands=bands, head=network.head
    )
    loss = build_loss([1.0] * network.num_classes, dice_loss=True, head=network.head)
    model.compile(optimizer=make_optimizer("adam", 1e-5), loss=loss)
    build = time.perf_counter() - started
    rng = np.random.default_rng(0)
    shape = (batch_size, *network.input_shape, bands.channels)
    images = rng.integers(0, 256, shape).astype(bands.input_dtype)
    labels = rng.integers(0, network.num_classes, (batch_size, *model.output_shape[1:3])).astype(np.uint8)
    first_step = timed(lambda: model.train_on_batch(images, labels))
    step = statistics.median(timed(lambda: model.train_on_batch(images, labels)) for _ in range(TIMED_STEPS))
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
    return Speed(step, forward, max(0.0, first_step - step), max(0.0, first_call - forward), build, write, norms)


def measure_apart(network: Network, batch_size: int, bands: Bands, save_dir: str) -> Speed:
    """measure_speed, leaving Keras as it found it: the throwaway network's layer names released (the run's network
    is named as in a run without the measurement) and the precision policy kept."""
    policy = keras.mixed_precision.global_policy().name
    try:
        return measure_speed(network, batch_size, bands, save_dir)
    finally:
        keras.utils.clear_session()  # also resets the policy
        keras.mixed_precision.set_global_policy(policy)
