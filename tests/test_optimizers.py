"""The fused optimizers (utils/optimizers.py) against Keras' own: the same updates to the last bit, and the same
state."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils.training import make_optimizer


def run_steps(optimizer, steps: int = 5, graph: bool = False) -> list:
    """A few updates of two variables by fixed gradients, with a decaying learning rate; eagerly or, as model.fit
    runs them, inside a tf.function."""
    rng = np.random.default_rng(0)
    shapes = {"kernel": (3, 3, 16, 32), "bias": (32,)}
    variables = [keras.Variable(rng.normal(size=shape).astype("float32"), name=n) for n, shape in shapes.items()]
    optimizer.build(variables)
    apply = optimizer.apply_gradients
    if graph:
        apply = tf.function(lambda gradients: optimizer.apply_gradients(zip(gradients, variables)))
    for _ in range(steps):
        # Gradients over several orders of magnitude, as a network's are: every rounding case shows.
        gradients = [
            (rng.normal(size=v.shape) * 10.0 ** rng.integers(-6, 1, v.shape)).astype("float32") for v in variables
        ]
        apply(gradients) if graph else apply(zip(gradients, variables))
    return [v.numpy() for v in variables + optimizer.variables], [v.name for v in optimizer.variables]


@pytest.mark.parametrize(
    "optimizer_type, settings",
    [("adam", {}), ("adam", {"weight_decay": 1e-2}), ("sgd", {}), ("sgd", {"weight_decay": 1e-2})],
)
@pytest.mark.parametrize("graph", [False, True], ids=["eager", "tf.function"])
def test_fused_updates_are_keras_updates_bit_for_bit(optimizer_type, settings, graph):
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, 1, 0.5)
    fused, plain = (make_optimizer(optimizer_type, schedule, 0.9, fused=fused, **settings) for fused in (True, False))
    assert type(fused).__name__.startswith("Fused") and type(plain).__module__.startswith("keras")
    (fused_values, fused_names), (plain_values, plain_names) = (
        run_steps(fused, graph=graph),
        run_steps(plain, graph=graph),
    )
    # The same state, in the same order: a resumable checkpoint of either loads into the other.
    assert fused_names == plain_names and len(fused_names) >= 3
    for a, b in zip(fused_values, plain_values, strict=True):
        np.testing.assert_array_equal(a, b)  # exactly: a run trains as with Keras' optimizer


def test_sgd_without_nesterov_is_keras_sgd_bit_for_bit():
    fused = make_optimizer("sgd", 1e-2, 0.9, fused=True)
    plain = keras.optimizers.SGD(1e-2, momentum=0.9)
    fused.nesterov = False
    for a, b in zip(run_steps(fused)[0], run_steps(plain)[0], strict=True):
        np.testing.assert_array_equal(a, b)
