"""A trained network rebuilt for any input height and width (None, None), for export.py's dynamic-size ONNX.

Every network is convolutional, so the same layers and weights take any size their strides divide. One layer
cannot be traced at a size unknown until called: Keras' bilinear UpSampling2D checks its target size as a Python
value. Its twin here, ResizeBy, resizes by the same factor with the same bilinear kernel (tf.image.resize, which
Keras' TensorFlow backend calls), its size read from the tensor at run time.
"""

import keras
import tensorflow as tf
from keras import layers


class ResizeBy(layers.Layer):
    """UpSampling2D (channels last) by integer factors, of a size known only when called."""

    def __init__(self, factors=(2, 2), interpolation: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        self.factors, self.interpolation = tuple(factors), interpolation

    def call(self, x):
        size = tf.shape(x)[1:3] * tf.constant(self.factors, tf.int32)
        return tf.cast(tf.image.resize(x, size, method=self.interpolation), x.dtype)

    def compute_output_shape(self, input_shape):
        height, width = (None if s is None else s * f for s, f in zip(input_shape[1:3], self.factors))
        return (input_shape[0], height, width, input_shape[3])

    def get_config(self):
        return {**super().get_config(), "factors": list(self.factors), "interpolation": self.interpolation}


def traceable(layer):
    """A layer for the any-size clone: bilinear UpSampling2D as ResizeBy, every other layer as it is."""
    if isinstance(layer, layers.UpSampling2D) and layer.interpolation != "nearest":
        return ResizeBy(layer.size, layer.interpolation, name=layer.name, dtype=layer.dtype_policy)
    return layer.__class__.from_config(layer.get_config())


def any_size_twin(build, trained: keras.Model) -> keras.Model:
    """The network build((None, None)) makes, holding `trained`'s weights (the same network at a fixed size), with
    its bilinear upsampling traceable at any size."""
    network = build((None, None))
    network.set_weights(trained.get_weights())
    twin = keras.models.clone_model(network, clone_function=traceable)
    twin.set_weights(network.get_weights())
    return twin
