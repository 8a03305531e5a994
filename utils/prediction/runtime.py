"""An exported model run by its own runtime (onnxruntime, OpenVINO, TFLite), behind what the prediction path uses of
a Keras model: input_shape, output_shape and a call on images (B, H, W, bands) returning float32 probabilities
(B, H', W', C). The call works inside tf.function (the runtime runs in a tf.numpy_function), so letterboxing,
tiling and restoring stay the same code."""

import numpy as np
import tensorflow as tf


class RuntimeModel:
    """The shared part: a subclass sets input_shape and output_shape ((None, H, W, C), None where the file's size is
    dynamic) and defines run(images) -> float32 numpy probabilities."""

    input_shape: tuple
    output_shape: tuple

    @property
    def dynamic(self) -> bool:
        """Whether the file takes any input height and width."""
        return None in self.input_shape[1:3]

    def pin(self, input_size, output_size) -> None:
        """A dynamic-size model taken at input_size (H, W) -> output_size (H', W'), as a Keras model of that size."""
        self.input_shape = (None, *input_size, self.input_shape[-1])
        self.output_shape = (None, *output_size, self.output_shape[-1])

    def run(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, images, training=False):
        probabilities = tf.numpy_function(self.run, [images], tf.float32, stateful=False)
        return tf.ensure_shape(probabilities, [None, *self.output_shape[1:]])
