"""DeepLabV3+ (Chen et al. 2018) on an encoder of nets/encoders.py at output stride 16: atrous spatial pyramid
pooling on the deepest features, a decoder that fuses them with the stride-4 features, and bilinear upsampling to
the input size."""

import keras
import tensorflow as tf
from keras import layers

from nets.atrous import AtrousConv2D
from nets.encoders import apply_encoder, encoder_named
from nets.heads import apply_probabilities
from nets.preprocess import Preprocess

OUTPUT_STRIDE = 16
ASPP_RATES = (6, 12, 18)  # the paper's at output stride 16
ASPP_FILTERS = 256
LOW_LEVEL_FILTERS = 48  # the stride-4 features are reduced to this few, so the deep ones dominate the fusion
LOW_LEVEL_STRIDE = 4


@keras.saving.register_keras_serializable(package="unet")
class ResizeLike(layers.Layer):
    """Resizes x bilinearly to the height and width of `like`, whatever they are at call time: the image-pooling
    branch back to the feature map's size, at any input size the network is called with (test-time scales, a
    dynamic-size export). tf.image.resize, which keras.ops.image.resize calls, takes a size known only at run
    time inside a traced function; Keras' own checks it as a Python value."""

    def call(self, x, like):
        return tf.cast(tf.image.resize(x, tf.shape(like)[1:3], method="bilinear"), x.dtype)

    def compute_output_shape(self, x_shape, like_shape):
        return (x_shape[0], *like_shape[1:3], x_shape[3])


def apply_conv_bn(x, filters: int, kernel: int, name: str, rate: int = 1):
    """Convolution (no bias), batch normalisation and ReLU, named name, name_bn, name_relu."""
    conv = AtrousConv2D if rate > 1 else layers.Conv2D  # the same weights; only the taps that see the map
    x = conv(filters, kernel, padding="same", dilation_rate=rate, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def apply_aspp(x):
    """Atrous spatial pyramid pooling: a 1x1 convolution, three 3x3 at ASPP_RATES and the image's mean, each
    ASPP_FILTERS wide, concatenated and projected back to ASPP_FILTERS.

    Args:
        x: (B, H/16, W/16, C) encoder features.

    Returns:
        (B, H/16, W/16, ASPP_FILTERS).
    """
    branches = [apply_conv_bn(x, ASPP_FILTERS, 1, "aspp_conv0")]
    branches += [apply_conv_bn(x, ASPP_FILTERS, 3, f"aspp_conv{i}", rate) for i, rate in enumerate(ASPP_RATES, 1)]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(x)  # (B, 1, 1, C)
    # A bias, not batch normalisation: over the B values of a batch of 2 or 4 images, the statistics are noise (in
    # training each channel comes out +-1 whatever the image), and evaluation with their moving averages collapses
    # (on membrane, everything background).
    pooled = layers.Conv2D(ASPP_FILTERS, 1, activation="relu", name="aspp_pool_conv")(pooled)
    branches.append(ResizeLike(name="aspp_pool_resize")(pooled, x))
    x = layers.Concatenate(name="aspp_concat")(branches)  # (B, H/16, W/16, 5 x ASPP_FILTERS)
    x = apply_conv_bn(x, ASPP_FILTERS, 1, "aspp_project")
    return layers.Dropout(0.1, name="aspp_dropout")(x)


def build_deeplabv3plus(
    input_shape=(512, 512, 3), num_classes: int = 21, backbone: str = "resnet50", ranges=(), head: str = "softmax"
) -> keras.Model:
    """Builds DeepLabV3+ from raw pixels to per-pixel class probabilities.

    Args:
        input_shape: (H, W, C), H and W multiples of 16; C bands (3: RGB).
        num_classes: Number of classes including the background.
        backbone: an encoder of nets/encoders.py (resnet50 is the paper's; vgg's block5 is at stride 16 as it is).
        ranges: per band (low, high) that the preprocessing stretches to [0, 255] (Preprocess); () for 8-bit.
        head: softmax, or sigmoid with num_classes 1 (nets/heads.py).

    Returns:
        keras.Model: images (B, H, W, C) -> probabilities (B, H, W, num_classes), float32.
    """
    encoder = encoder_named(backbone)
    images = keras.Input(input_shape, name="images")
    features = apply_encoder(backbone, Preprocess(encoder.preprocess, ranges, name="preprocess")(images), OUTPUT_STRIDE)
    low = features[encoder.strides.index(LOW_LEVEL_STRIDE)]  # (B, H/4, W/4, C_low)
    x = apply_aspp(features[-1])  # (B, H/16, W/16, 256)
    x = layers.UpSampling2D(OUTPUT_STRIDE // LOW_LEVEL_STRIDE, interpolation="bilinear", name="decoder_upsample")(x)
    low = apply_conv_bn(low, LOW_LEVEL_FILTERS, 1, "decoder_low")
    x = layers.Concatenate(name="decoder_concat")([x, low])  # (B, H/4, W/4, 256 + 48)
    x = apply_conv_bn(x, ASPP_FILTERS, 3, "decoder_conv1")
    x = apply_conv_bn(x, ASPP_FILTERS, 3, "decoder_conv2")
    # Zero-initialised head, as the UNet's: training starts from uniform probabilities.
    x = layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name="head")(x)  # (B, H/4, W/4, num_classes)
    x = layers.UpSampling2D(LOW_LEVEL_STRIDE, interpolation="bilinear", name="head_upsample")(x)
    return keras.Model(images, apply_probabilities(x, head), name=f"deeplabv3plus_{backbone}")
