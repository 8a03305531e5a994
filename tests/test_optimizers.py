"""The fused optimizers (utils/optimizers.py) against Keras' own: the same updates to the last bit, and the same
state."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils.training import make_optimizer


def run_steps(make_optimizer, steps: int = 5, mode: str = "eager") -> list:
    """A few updates of two variables by fixed gradients, with a decaying learning rate: eagerly, or as model.fit
    runs them, inside a tf.function (all variables in one compiled call), or inside a tf.distribute strategy's
    step (one call per variable, on each replica)."""
    rng = np.random.default_rng(0)
    shapes = {"kernel": (3, 3, 16, 32), "bias": (32,)}
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0") if mode == "strategy" else tf.distribute.get_strategy()
    with strategy.scope():
        variables = [keras.Variable(rng.normal(size=s).astype("float32"), name=n) for n, s in shapes.items()]
        optimizer = make_optimizer()
        optimizer.build(variables)

    def apply(gradients):
        optimizer.apply_gradients(zip(gradients, variables))

    if mode == "tf.function":
        apply = tf.function(apply)
    elif mode == "strategy":
        apply = tf.function(lambda gradients, step=apply: strategy.run(step, args=(gradients,)))
    for _ in range(steps):
        # Gradients over several orders of magnitude, as a network's are: every rounding case shows.
        scales = [10.0 ** rng.integers(-6, 1, v.shape) for v in variables]
        apply([tf.constant((rng.normal(size=v.shape) * s).astype("float32")) for v, s in zip(variables, scales)])
    return [v.numpy() for v in variables + optimizer.variables], [v.name for v in optimizer.variables]


@pytest.mark.parametrize(
    "optimizer_type, settings",
    [("adam", {}), ("adam", {"weight_decay": 1e-2}), ("sgd", {}), ("sgd", {"weight_decay": 1e-2})],
)
@pytest.mark.parametrize("mode", ["eager", "tf.function", "strategy"])
def test_fused_updates_are_keras_updates_bit_for_bit(optimizer_type, settings, mode):
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-2, 1, 0.5)
    fused, plain = (
        lambda fused=fused: make_optimizer(optimizer_type, schedule, 0.9, fused=fused, **settings)
        for fused in (True, False)
    )
    assert type(fused()).__name__.startswith("Fused") and type(plain()).__module__.startswith("keras")
    (fused_values, fused_names), (plain_values, plain_names) = run_steps(fused, mode=mode), run_steps(plain, mode=mode)
    # The same state, in the same order: a resumable checkpoint of either loads into the other.
    assert fused_names == plain_names and len(fused_names) >= 3
    for a, b in zip(fused_values, plain_values, strict=True):
        np.testing.assert_array_equal(a, b)  # exactly: a run trains as with Keras' optimizer


def test_sgd_without_nesterov_is_keras_sgd_bit_for_bit():
    def fused():
        optimizer = make_optimizer("sgd", 1e-2, 0.9, fused=True)
        optimizer.nesterov = False
        return optimizer

    plain = lambda: keras.optimizers.SGD(1e-2, momentum=0.9)  # noqa: E731
    for a, b in zip(run_steps(fused)[0], run_steps(plain)[0], strict=True):
        np.testing.assert_array_equal(a, b)
