"""train.py's optimizers: Keras' Adam and SGD (Nesterov).

TensorFlow's one-kernel updates (ResourceApplyAdam, ResourceApplyKerasMomentum) were measured again in issue 35:
they cut the first step of the deep networks by about a third, but the demo read lower over seeds (mean 83.03 %,
minimum 81.24 % against Keras' 83.57 % and 83.04 %), so train.py keeps Keras' own update (docs/performance.md).
"""

import keras


def make_optimizer(optimizer_type: str, learning_rate, momentum: float = 0.9, weight_decay: float = 0.0):
    """Keras' Adam or SGD (Nesterov); Keras 3 applies weight_decay decoupled (AdamW / SGDW)."""
    decay = weight_decay or None
    if optimizer_type == "adam":
        return keras.optimizers.Adam(learning_rate, beta_1=momentum, weight_decay=decay)
    return keras.optimizers.SGD(learning_rate, momentum=momentum, nesterov=True, weight_decay=decay)
