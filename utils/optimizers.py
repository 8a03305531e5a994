"""train.py's optimizers: Keras' Adam and SGD (Nesterov), each variable's update one TensorFlow op.

Keras 3 writes an optimizer's update in element-wise ops: Adam's is about a dozen per variable (moments, bias
correction, step), each a pass over the variable's memory and a node of the training step's graph. TensorFlow has
each update as one kernel (`tf.raw_ops.ResourceApplyAdam`, `ResourceApplyKerasMomentum`), the formulas Keras'
Adam and SGD compute. With them the step's graph is smaller, so its first call (tracing and graph optimisation)
is shorter, and the update makes one pass over memory (docs/performance.md, "The first step").

The variables, their names and their order are Keras' own (built by Keras' `build`), so weights files and
resumable checkpoints keep their layout. The fused update runs where it is the same computation: one device (no
tf.distribute strategy, whose per-replica variables are Keras' to map), dense gradients and no AMSGrad; anywhere
else Keras' own update runs.
"""

import keras
import tensorflow as tf


class _FusedUpdates:
    """Records each trainable variable's slot variables as Keras' build creates them, by the TensorFlow variable
    that update_step receives."""

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        created = super().add_optimizer_variables(trainable_variables, name, initializer)
        slots = created if isinstance(name, (list, tuple)) else (created,)
        if not hasattr(self, "slots_of"):
            self.slots_of = {}
        for index, variable in enumerate(trainable_variables):
            key = variable.value.ref()
            self.slots_of[key] = self.slots_of.get(key, ()) + tuple(slot[index] for slot in slots)
        return created

    def fused_slots(self, gradient, variable):
        """The variable's slot variables when the fused update applies to it, else None."""
        if tf.distribute.has_strategy() or not isinstance(gradient, tf.Tensor) or not isinstance(variable, tf.Variable):
            return None
        slots = getattr(self, "slots_of", {}).get(variable.ref())
        return None if slots is None or any(slot is None for slot in slots) else slots


@keras.saving.register_keras_serializable(package="segmentation")
class FusedAdam(_FusedUpdates, keras.optimizers.Adam):
    """Keras' Adam, its update of each variable TensorFlow's ResourceApplyAdam (module docstring)."""

    def update_step(self, gradient, variable, learning_rate):
        slots = None if self.amsgrad else self.fused_slots(gradient, variable)
        if slots is None:
            return super().update_step(gradient, variable, learning_rate)
        momentum, velocity = slots[:2]
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=momentum.value.handle,
            v=velocity.value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )


@keras.saving.register_keras_serializable(package="segmentation")
class FusedSGD(_FusedUpdates, keras.optimizers.SGD):
    """Keras' SGD with momentum, its update of each variable TensorFlow's ResourceApplyKerasMomentum (module
    docstring)."""

    def update_step(self, gradient, variable, learning_rate):
        slots = self.fused_slots(gradient, variable) if self.momentum else None
        if slots is None:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        tf.raw_ops.ResourceApplyKerasMomentum(
            var=variable.handle,
            accum=slots[0].value.handle,
            lr=tf.cast(learning_rate, dtype),
            grad=tf.cast(gradient, dtype),
            momentum=tf.cast(self.momentum, dtype),
            use_nesterov=self.nesterov,
        )


def make_optimizer(optimizer_type: str, learning_rate, momentum: float = 0.9, weight_decay: float = 0.0):
    """Adam or SGD (Nesterov), Keras' with fused updates; Keras 3 applies weight_decay decoupled (AdamW / SGDW)."""
    decay = weight_decay or None
    if optimizer_type == "adam":
        return FusedAdam(learning_rate, beta_1=momentum, weight_decay=decay)
    return FusedSGD(learning_rate, momentum=momentum, nesterov=True, weight_decay=decay)
