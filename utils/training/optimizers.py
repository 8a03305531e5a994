"""train.py's optimizers: Keras' Adam and SGD (Nesterov), with Keras' numerics.

Keras' Adam computes the step's scalars (the bias corrections and the step size) again for every variable: a
network of 240 variables traces about ten scalar operations 240 times into its training step's graph, and
TensorFlow optimises them all before the first step runs. `Adam` below computes them once per step, then updates
each variable with Keras' own operations in Keras' order: the same values, bit for bit (tests/test_optimizers.py),
from a smaller graph. The variables, their names and their order are Keras' own (Keras' `build` makes them), so
resumable checkpoints keep their layout.

TensorFlow's one-kernel updates (ResourceApplyAdam and its kin) would shorten the first step further but change the
numerics, and the demo's val mIoU over seeds fell with them (docs/performance.md, "The fused update again").
"""

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="segmentation")
class Adam(keras.optimizers.Adam):
    """keras.optimizers.Adam whose step computes its scalars once, not once per variable (the module's docstring).

    Public hooks only: `add_optimizer_variables` (called by Keras' `build`) records each variable's moments,
    `apply` (every update goes through it: fit's step, apply_gradients, a LossScaleOptimizer's inner call) starts
    a step's scalars afresh, `update_step` updates one variable. Under a tf.distribute strategy update_step gets
    each replica's copy of a variable, which Keras maps to its moments by private means: there Keras' own step runs.
    """

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        created = super().add_optimizer_variables(trainable_variables, name, initializer)
        if name == ["momentum", "velocity"]:  # Adam's build: the moments, in the variables' order
            self.moments_of = {variable.value.ref(): (m, v) for variable, m, v in zip(trainable_variables, *created)}
        return created

    def apply(self, grads, trainable_variables=None):
        self.step_scalars = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self.step_scalars = {}

    def step_scalars_of(self, learning_rate, dtype) -> tuple:
        """This step's alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t), 1 - beta_1, 1 - beta_2 and epsilon as tensors
        of `dtype`, made once per step, as Keras' Adam computes them (its Python numbers become the same float
        constants)."""
        if dtype not in self.step_scalars:
            lr = ops.cast(learning_rate, dtype)
            local_step = ops.cast(self.iterations + 1, dtype)
            beta_1_power = ops.power(ops.cast(self.beta_1, dtype), local_step)
            beta_2_power = ops.power(ops.cast(self.beta_2, dtype), local_step)
            alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
            numbers = [ops.convert_to_tensor(n, dtype) for n in (1 - self.beta_1, 1 - self.beta_2, self.epsilon)]
            self.step_scalars[dtype] = (alpha, *numbers)
        return self.step_scalars[dtype]

    def update_step(self, gradient, variable, learning_rate):
        moments = None
        if not (self.amsgrad or tf.distribute.has_strategy()) and isinstance(variable, tf.Variable):
            moments = getattr(self, "moments_of", {}).get(variable.ref())
        if moments is None or not hasattr(self, "step_scalars"):
            return super().update_step(gradient, variable, learning_rate)
        m, v = moments
        alpha, one_minus_beta_1, one_minus_beta_2, epsilon = self.step_scalars_of(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), one_minus_beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), one_minus_beta_2))
        self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), epsilon)))


def make_optimizer(optimizer_type: str, learning_rate, momentum: float = 0.9, weight_decay: float = 0.0):
    """Adam (above) or Keras' SGD (Nesterov); Keras 3 applies weight_decay decoupled (AdamW / SGDW)."""
    decay = weight_decay or None
    if optimizer_type == "adam":
        return Adam(learning_rate, beta_1=momentum, weight_decay=decay)
    return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=True, weight_decay=decay)
