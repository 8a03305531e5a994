"""train.py's optimizers: Keras' Adam and SGD (Nesterov).

Keras' own update, not TensorFlow's one-kernel updates (ResourceApplyAdam and its kin): those shorten the first
step, but the demo's val mIoU over seeds fell with them (docs/performance.md, "The fused update again").
"""

import keras


def make_optimizer(optimizer_type: str, learning_rate, momentum: float = 0.9, weight_decay: float = 0.0):
    """Keras' Adam or SGD (Nesterov); Keras 3 applies weight_decay decoupled (AdamW / SGDW)."""
    decay = weight_decay or None
    if optimizer_type == "adam":
        return keras.optimizers.Adam(learning_rate, beta_1=momentum, weight_decay=decay)
    return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=True, weight_decay=decay)
