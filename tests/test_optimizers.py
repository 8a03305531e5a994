"""The fused optimizers (utils/optimizers.py) against Keras' own: the same updates, steps and state."""

import keras
import numpy as np
import pytest

from utils.training import make_optimizer


def run_steps(optimizer, steps: int = 5) -> list:
    """A few updates of two variables by fixed gradients, with a decaying learning rate."""
    rng = np.random.default_rng(0)
    shapes = {"kernel": (3, 3, 4, 8), "bias": (8,)}
    variables = [keras.Variable(rng.normal(size=shape).astype("float32"), name=n) for n, shape in shapes.items()]
    for _ in range(steps):
        gradients = [rng.normal(size=v.shape).astype("float32") for v in variables]
        optimizer.apply_gradients(zip(gradients, variables))
    return [v.numpy() for v in variables + optimizer.variables], [v.name for v in optimizer.variables]


@pytest.mark.parametrize("optimizer_type", ["adam", "sgd"])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_fused_updates_are_keras_updates(optimizer_type, weight_decay):
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, 1, 0.5)
    fused, plain = (make_optimizer(optimizer_type, schedule, 0.9, weight_decay, fused) for fused in (True, False))
    assert type(fused).__name__.startswith("Fused") and type(plain).__module__.startswith("keras")
    (fused_values, fused_names), (plain_values, plain_names) = run_steps(fused), run_steps(plain)
    # The same state, in the same order: a resumable checkpoint of either loads into the other.
    assert fused_names == plain_names and len(fused_names) >= 3
    for a, b in zip(fused_values, plain_values, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
