"""Keras' Adam and SGD with each variable's update compiled into one pass over memory, bit for bit Keras' own.

Keras 3 writes an optimizer's update in backend-neutral ops: Adam is about a dozen element-wise ops per variable
(subtract, multiply, square, sqrt, divide, three assigns), each a pass over memory. Over the VGG16-UNet's 25 M
parameters that was a third of the demo's training step (64x64, batch 4: 60 of 190 ms on 2 cores). Here the same
ops, in the same order with the same constants, are compiled by XLA into one loop per variable that reads the
gradient and the state once and writes them once, all variables in one call: 28 against 66 ms
(benchmarks/step_split.py).

The result is identical to Keras' to the last bit (tests/test_optimizers.py compares them exactly), so a run
trains as it did with Keras' optimizer: the same weights at every step, only sooner. TensorFlow's own training
kernels (ResourceApplyAdam) are a little faster but compute 1 - beta_1 in float32 where Keras rounds Python's
1 - 0.9 to float32: a different last bit in every step, which moved the demo's 24 epochs from 86.10 % to
83.78 % val mIoU (docs/performance.md).

The classes keep Keras' optimizer whole (its variables, schedule, weight decay, gradient clipping, loss scaling
and tf.distribute handling, and its saved state): only the update's arithmetic is replaced (`update_step`, and
Keras' loop over the variables where no tf.distribute strategy is in use).
"""

import keras
import tensorflow as tf
from keras import ops


def _tf_variable(variable):
    """The tf.Variable of a Keras variable (inside tf.distribute's update, the variable is one already)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


def _compiled(gradient, variable) -> bool:
    """Whether a variable's update runs compiled: a dense float32 one (others take Keras' own ops)."""
    return not isinstance(gradient, tf.IndexedSlices) and variable.dtype == "float32"


def _rounded(x, zero):
    """x, rounded to float32 on its own. XLA's CPU and GPU backends contract a product that feeds a sum into one
    fused multiply-add, rounding once where Keras' separate ops round twice. An integer OR with a zero that the
    compiler cannot know keeps the product a stored float32 value, at little cost in a loop bound by memory."""
    return tf.bitcast(tf.bitwise.bitwise_or(tf.bitcast(x, tf.int32), zero), tf.float32)


def _opaque_zero(step):
    """0, from the step count (never negative) in a form no compiler folds to a constant."""
    return tf.cast(step < 0, tf.int32)


@tf.function(jit_compile=True, autograph=False)
def _adam_update(variables, ms, vs, gradients, alpha, step, one_minus_beta_1, one_minus_beta_2, epsilon):
    """keras.optimizers.Adam.update_step's arithmetic (without amsgrad), in its order, for each variable: one
    compiled call, a loop per variable."""
    zero = _opaque_zero(step)
    for variable, m, v, gradient in zip(variables, ms, vs, gradients, strict=True):
        m.assign_add(_rounded((gradient - m) * one_minus_beta_1, zero))
        v.assign_add(_rounded((_rounded(tf.square(gradient), zero) - v) * one_minus_beta_2, zero))
        variable.assign_sub((m * alpha) / (tf.sqrt(v) + epsilon))


@tf.function(jit_compile=True, autograph=False)
def _sgd_update(variables, ms, gradients, learning_rate, momentum, step, nesterov: bool):
    """keras.optimizers.SGD.update_step's arithmetic with momentum, in its order, for each variable."""
    zero = _opaque_zero(step)
    for variable, m, gradient in zip(variables, ms, gradients, strict=True):
        m.assign(_rounded(m * momentum, zero) - _rounded(gradient * learning_rate, zero))
        if nesterov:
            variable.assign_add(_rounded(m * momentum, zero) - _rounded(gradient * learning_rate, zero))
        else:
            variable.assign_add(m)


class _OneCall:
    """Keras' per-variable loop replaced, where no tf.distribute strategy is in use, by one compiled call for all
    the variables, as each call has a fixed cost to start (the VGG16-UNet has 44 variables). Under a strategy,
    Keras' loop puts each replica's update on its device, one variable at a time."""

    def _distributed_tf_update_step(self, distribution, grads_and_vars, learning_rate):
        if tf.distribute.has_strategy() or not self._fused:
            return super()._distributed_tf_update_step(distribution, grads_and_vars, learning_rate)
        compiled = []
        for gradient, variable in grads_and_vars:
            if _compiled(gradient, variable):
                compiled.append((gradient, variable))
            else:
                super().update_step(gradient, variable, learning_rate)
        if compiled:
            self._update(compiled, learning_rate)

    def update_step(self, gradient, variable, learning_rate):
        if not self._fused or not _compiled(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        self._update([(gradient, variable)], learning_rate)


@keras.saving.register_keras_serializable(package="unet")
class FusedAdam(_OneCall, keras.optimizers.Adam):
    """keras.optimizers.Adam; the update of the float32 variables is one compiled pass each (module docstring)."""

    @property
    def _fused(self) -> bool:
        return not self.amsgrad

    def _update(self, pairs, learning_rate):
        # As Keras computes them (adam.py): the step's scalars, then the element-wise update.
        dtype = "float32"
        lr = ops.cast(learning_rate, dtype)
        local_step = ops.cast(self.iterations + 1, dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, dtype), local_step)
        beta_2_power = ops.power(ops.cast(self.beta_2, dtype), local_step)
        alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        indices = [self._get_variable_index(variable) for _, variable in pairs]
        _adam_update(
            [_tf_variable(variable) for _, variable in pairs],
            [_tf_variable(self._momentums[index]) for index in indices],
            [_tf_variable(self._velocities[index]) for index in indices],
            [ops.cast(gradient, dtype) for gradient, _ in pairs],
            alpha,
            _tf_variable(self.iterations),
            ops.convert_to_tensor(1 - self.beta_1, dtype),  # Python's 1 - 0.9, rounded, as Keras' ops take it
            ops.convert_to_tensor(1 - self.beta_2, dtype),
            ops.convert_to_tensor(self.epsilon, dtype),
        )


@keras.saving.register_keras_serializable(package="unet")
class FusedSGD(_OneCall, keras.optimizers.SGD):
    """keras.optimizers.SGD with momentum; the update of the float32 variables is one compiled pass each."""

    @property
    def _fused(self) -> bool:
        return bool(self.momentum)

    def _update(self, pairs, learning_rate):
        dtype = "float32"
        _sgd_update(
            [_tf_variable(variable) for _, variable in pairs],
            [_tf_variable(self.momentums[self._get_variable_index(variable)]) for _, variable in pairs],
            [ops.cast(gradient, dtype) for gradient, _ in pairs],
            ops.cast(learning_rate, dtype),
            ops.cast(self.momentum, dtype),
            _tf_variable(self.iterations),
            self.nesterov,
        )
