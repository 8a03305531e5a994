"""Keras' Adam and SGD with each variable's update done by one TensorFlow kernel.

Keras 3 writes an optimizer's update in backend-neutral ops: Adam is about a dozen element-wise ops per variable
(subtract, multiply, square, sqrt, divide, three assigns), each a pass over memory. Over the VGG16-UNet's 25 M
parameters that was a third of the demo's training step (64x64, batch 4: 60 of 190 ms on 2 cores). TensorFlow's
own training kernels (ResourceApplyAdam, ResourceApplyKerasMomentum) do the same arithmetic in one pass: 24 ms.

The classes keep Keras' optimizer whole (its variables, schedule, weight decay, gradient clipping, loss scaling and
tf.distribute handling, and its saved state): only `update_step`, the per-variable arithmetic, is replaced, with the
same formulas (tests/test_optimizers.py compares them with Keras').
"""

import keras
import tensorflow as tf


def _handle(variable):
    """The resource handle of a Keras variable or a tf.Variable (inside tf.distribute's update: this replica's)."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


@keras.saving.register_keras_serializable(package="unet")
class FusedAdam(keras.optimizers.Adam):
    """keras.optimizers.Adam; the update of each variable is TensorFlow's ResourceApplyAdam:
    m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, var -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


@keras.saving.register_keras_serializable(package="unet")
class FusedSGD(keras.optimizers.SGD):
    """keras.optimizers.SGD with momentum; the update of each variable is TensorFlow's ResourceApplyKerasMomentum:
    m = momentum m - lr g, var += m (Nesterov: var += momentum m - lr g)."""

    def update_step(self, gradient, variable, learning_rate):
        if not self.momentum or isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=_handle(variable),
            accum=_handle(self.momentums[self._get_variable_index(variable)]),
            lr=tf.cast(learning_rate, dtype),
            grad=tf.cast(gradient, dtype),
            momentum=tf.cast(self.momentum, dtype),
            use_nesterov=self.nesterov,
        )
