"""FCN-8s (Long, Shelhamer & Darrell 2015) on the VGG16 encoder, so the same encoder weights load by name."""

import keras
import numpy as np
from keras import layers

from nets.atrous import AtrousConv2D
from nets.heads import apply_probabilities
from nets.preprocess import Preprocess
from nets.vgg16 import apply_vgg16_pools

# FCN's conv6 / conv7 and the VGG16 classifier's layers they are made from (keras.applications' names): the 7x7
# and 1x1 convolutions compute on each 7x7 window what fc1 / fc2 compute on a flattened 7x7 pool5.
CONVOLUTIONALISED = {"fc6": "fc1", "fc7": "fc2"}


@keras.saving.register_keras_serializable(package="unet")
class BilinearUpsampling(keras.initializers.Initializer):
    """Conv2DTranspose kernel (k, k, C, C) that upsamples each channel bilinearly on its own, as FCN's
    deconvolution layers start: with kernel 2f, stride f and "same" padding it reproduces a half-pixel bilinear
    resize by f away from the borders."""

    def __call__(self, shape, dtype=None):
        size, _, out_channels, in_channels = shape
        factor = (size + 1) // 2
        centre = factor - 1 if size % 2 else factor - 0.5
        ramp = 1 - np.abs(np.arange(size) - centre) / factor  # (k,)
        kernel = np.zeros(shape, np.float32)
        for channel in range(min(out_channels, in_channels)):
            kernel[:, :, channel, channel] = np.outer(ramp, ramp)
        return keras.ops.convert_to_tensor(kernel, dtype=dtype)


def upsample(x, num_classes: int, factor: int, name: str):
    """Learned upsampling by `factor`: a transposed convolution (kernel 2 x factor), bilinear at the start."""
    return layers.Conv2DTranspose(
        num_classes,
        2 * factor,
        strides=factor,
        padding="same",
        use_bias=False,
        kernel_initializer=BilinearUpsampling(),
        name=name,
    )(x)


def score(x, num_classes: int, name: str):
    """1x1 class scores, zero-initialised as in the paper: a new skip adds nothing until it has learned.

    In float32 whatever the policy (they are cheap): with TF 2.21's oneDNN on an AMX CPU, the bf16 gradient of a
    1x1 convolution from 4096 channels to 8 or fewer corrupts the heap and aborts the process.
    """
    return layers.Conv2D(num_classes, 1, kernel_initializer="zeros", dtype="float32", name=name)(x)


def build_fcn8(
    input_shape=(512, 512, 3), num_classes: int = 21, fc_filters: int = 4096, ranges=(), head: str = "softmax"
) -> keras.Model:
    """Builds FCN-8s from raw RGB pixels to per-pixel class probabilities.

    VGG16's fully connected fc6 / fc7 become a 7x7 and a 1x1 convolution on pool5 (the paper's conv6 / conv7),
    scored at stride 32; the scores are upsampled x2 and added to pool4's, x2 again and added to pool3's,
    then x8 to the input size.

    Args:
        input_shape: (H, W, C), H and W multiples of 32; C bands (3: RGB).
        num_classes: Number of classes including the background.
        fc_filters: Channels of conv6 / conv7 (4096 in the paper).

    Returns:
        keras.Model: images (B, H, W, 3) -> probabilities (B, H, W, num_classes), float32 softmax.
    """
    images = keras.Input(input_shape, name="images")
    _, _, pool3, pool4, pool5 = apply_vgg16_pools(Preprocess(ranges=ranges, name="preprocess")(images))
    # (B, H/32, W/32, 4096); on maps under 7 px, the taps that see only padding are skipped (nets/atrous.py)
    x = AtrousConv2D(fc_filters, 7, padding="same", activation="relu", name="fc6")(pool5)
    x = layers.Dropout(0.5, name="drop6")(x)
    x = layers.Conv2D(fc_filters, 1, activation="relu", name="fc7")(x)
    x = layers.Dropout(0.5, name="drop7")(x)
    x = score(x, num_classes, "score_fr")  # (B, H/32, W/32, C)
    x = upsample(x, num_classes, 2, "upscore2")  # (B, H/16, W/16, C)
    x = layers.Add(name="fuse_pool4")([x, score(pool4, num_classes, "score_pool4")])
    x = upsample(x, num_classes, 2, "upscore_pool4")  # (B, H/8, W/8, C)
    x = layers.Add(name="fuse_pool3")([x, score(pool3, num_classes, "score_pool3")])
    x = upsample(x, num_classes, 8, "upscore8")  # (B, H, W, C)
    probabilities = apply_probabilities(x, head)
    return keras.Model(images, probabilities, name="fcn8")
