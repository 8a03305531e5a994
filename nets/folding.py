"""Batch normalisation folded into the convolution before it, for inference: the prediction path's network.

In inference a BatchNormalization is an affine map per channel, y = (x - mean) * gamma / sqrt(var + eps) + beta,
so a convolution followed by it equals one convolution with kernel * scale and bias (bias - mean) * scale + beta.
Folded, the network skips a pass over every normalised feature map, and under mixed precision the casts to float32
that Keras' BatchNormalization makes around it: MobileNetV2's encoder runs about 3 times as fast in bf16 on a CPU.
"""

import keras
import numpy as np
from keras import layers

from nets.encoders import edited

FOLDABLE = (layers.Conv2D, layers.DepthwiseConv2D)


@keras.saving.register_keras_serializable(package="unet")
class Folded(layers.Layer):
    """Where a BatchNormalization was: its work is in the convolution before it, so it passes x on."""

    def call(self, x, **kwargs):  # **kwargs: BatchNormalization's training and mask
        return x


def foldable_pairs(model: keras.Model) -> dict:
    """{convolution name: the BatchNormalization after it} for each convolution whose only consumer is a
    BatchNormalization over its channels (last axis), with no activation of its own in between."""
    consumers = {}  # id of a tensor -> how many of the model's layers take it
    for layer in model.layers[1:]:  # after the input layer
        for tensor in keras.tree.flatten(layer.input):
            consumers[id(tensor)] = consumers.get(id(tensor), 0) + 1
    pairs = {}
    for layer in model.layers:
        if not isinstance(layer, layers.BatchNormalization) or layer.axis not in (-1, len(layer.input.shape) - 1):
            continue
        source = layer.input._keras_history.operation
        linear = getattr(source, "activation", None) is keras.activations.linear
        if isinstance(source, FOLDABLE) and linear and consumers[id(layer.input)] == 1:
            pairs[source.name] = layer
    return pairs


def folded_weights(conv, norm) -> list:
    """[kernel, bias] of the convolution `conv` with the BatchNormalization `norm` after it folded in."""
    mean, variance = (
        keras.ops.convert_to_numpy(v).astype(np.float64) for v in (norm.moving_mean, norm.moving_variance)
    )
    gamma = keras.ops.convert_to_numpy(norm.gamma).astype(np.float64) if norm.scale else 1.0
    beta = keras.ops.convert_to_numpy(norm.beta).astype(np.float64) if norm.center else 0.0
    scale = gamma / np.sqrt(variance + norm.epsilon)  # (C_out,)
    kernel = keras.ops.convert_to_numpy(conv.kernel).astype(np.float64)
    if isinstance(conv, layers.DepthwiseConv2D):  # (k, k, C_in, multiplier): output channel c * multiplier + m
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:  # (k, k, C_in, C_out)
        kernel = kernel * scale
    bias = keras.ops.convert_to_numpy(conv.bias).astype(np.float64) if conv.use_bias else 0.0
    return [kernel.astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)]


def fold_batch_norms(model: keras.Model) -> keras.Model:
    """An inference copy of the model with every foldable BatchNormalization (foldable_pairs) in its convolution,
    the same layer names otherwise; the model itself when it has none (VGG16, FCN-8s: nothing is copied)."""
    pairs = foldable_pairs(model)
    if not pairs:
        return model
    norms = {norm.name for norm in pairs.values()}
    biased = {name: {"use_bias": True} for name in pairs}  # a folded convolution gets the batch norm's shift

    def clone(layer):
        return Folded(name=layer.name, dtype=layer.dtype_policy) if layer.name in norms else edited(layer, biased)

    folded = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in pairs:
            folded.get_layer(layer.name).set_weights(folded_weights(layer, pairs[layer.name]))
        elif layer.weights and layer.name not in norms:
            folded.get_layer(layer.name).set_weights(layer.get_weights())
    return folded
