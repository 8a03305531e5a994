"""Batch normalisation's statistics recomputed from the training images ("precise BN", Wu & Johnson 2021).

Keras keeps each BN layer's moving mean and variance as an exponential average (momentum 0.99) of the batches'
statistics. Over a short run from random weights that average still holds a third of its starting values (0 and 1:
0.99 ** 120 steps = 0.30) and the statistics of features the network has since moved away from, so a network that
segments well with its batches' own statistics predicts one class with its moving ones (benchmarks/
bn_statistics.py, docs/networks.md). Before each evaluation the trainable BN layers are given the
mean of their statistics over a fixed set of training images instead, as fvcore's update_bn_stats and PyTorch's
swa_utils.update_bn do.
"""

import math

import keras
import tensorflow as tf

# At most this many training images are passed through; the mean of their batches' statistics varies little more.
PRECISE_BN_IMAGES = 64


def trainable_batch_norms(model) -> list:
    """The BatchNormalization layers that training updates (a frozen encoder's keep their statistics). The networks
    are flat functional models: the encoders are cloned onto their input (nets/encoders.py)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def calibration_samples(samples, count: int = PRECISE_BN_IMAGES) -> list:
    """Up to `count` samples spread evenly over the list, the same in every run and on every worker."""
    step = max(1, math.ceil(len(samples) / count))
    return list(samples)[::step][:count]


class StatisticsPass:
    """One forward pass in training mode that leaves each BN layer's batch statistics in its moving variables
    (momentum 0 while it is traced), and the mean of those over a set of batches."""

    def __init__(self, model):
        self.model, self.layers = model, trainable_batch_norms(model)
        self.forward = None

    def trace(self, images):
        momenta = [layer.momentum for layer in self.layers]
        for layer in self.layers:
            layer.momentum = 0.0  # read when the call is traced: moving = this batch's statistics
        try:
            self.forward = tf.function(lambda x: self.model(x, training=True))
            self.forward.get_concrete_function(tf.TensorSpec([None, *images.shape[1:]], images.dtype))
        finally:
            for layer, momentum in zip(self.layers, momenta):
                layer.momentum = momentum

    def __call__(self, batches) -> int:
        """Sets every trainable BN layer's moving mean and variance to the mean of its batch statistics over
        `batches` (images (B, H, W, C), anything after). Returns the number of images."""
        sums, count = None, 0
        for batch in batches:
            images = batch[0]
            if self.forward is None:
                self.trace(images)
            self.forward(images)
            # Weighted by the batch's size, so that a short last batch counts for the images it holds.
            size = int(images.shape[0])
            values = [(size * layer.moving_mean.numpy(), size * layer.moving_variance.numpy()) for layer in self.layers]
            sums = values if sums is None else [(m + a, v + b) for (m, v), (a, b) in zip(sums, values)]
            count += size
        for layer, (mean, variance) in zip(self.layers, sums or ()):
            layer.moving_mean.assign(mean / count)
            layer.moving_variance.assign(variance / count)
        return count
