"""UNet decoder on a VGG16 or ResNet50 encoder, as in the VOC UNet platforms."""

from dataclasses import dataclass

import keras
from keras import layers

from nets.heads import apply_probabilities
from nets.resnet50 import KERAS_BN_EPSILON, apply_resnet50_encoder
from nets.vgg16 import PREPROCESSING, Preprocess, apply_vgg16_encoder

BACKBONES = {"vgg": apply_vgg16_encoder, "resnet50": apply_resnet50_encoder}

# Decoder channels from the deepest stage up.
DECODER_FILTERS = [512, 256, 128, 64]


@dataclass(frozen=True)
class UnetVariant:
    """The details a weights file was trained with and the network must reproduce: same layers, other arithmetic.

    The defaults are keras.applications' (and this platform's checkpoints); bubbliiiing's unet-keras / unet-tf2
    files take preprocess="tf", upsampling="nearest" and, for ResNet50, bn_epsilon=1e-3 (Keras 2.2's ResNet50).
    """

    preprocess: str = "caffe"  # caffe | tf: see nets.vgg16.PREPROCESSING
    upsampling: str = "bilinear"  # the decoder's x2 upsampling: bilinear | nearest
    bn_epsilon: float = KERAS_BN_EPSILON  # ResNet50's BatchNormalization epsilon

    def __post_init__(self):
        if self.preprocess not in PREPROCESSING or self.upsampling not in ("bilinear", "nearest"):
            raise ValueError(f"{self}: expected preprocess caffe | tf and upsampling bilinear | nearest.")

    def describe(self) -> str:
        return (
            f"input {PREPROCESSING[self.preprocess]}, {self.upsampling} upsampling"
            f"{'' if self.bn_epsilon == KERAS_BN_EPSILON else f', ResNet50 BN epsilon {self.bn_epsilon:g}'}"
        )


def apply_decoder_stage(x, skip, filters: int, upsampling: str, name: str):
    """Upsamples x2, concatenates the skip and applies two 3x3 ReLU convolutions."""
    x = layers.UpSampling2D(2, interpolation=upsampling, name=f"{name}_upsample")(x)
    x = layers.Concatenate(name=f"{name}_concat")([skip, x])
    for j in range(2):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{j + 1}")(x)
    return x


def build_unet(
    input_shape=(512, 512, 3),
    num_classes: int = 21,
    backbone: str = "vgg",
    variant: UnetVariant = UnetVariant(),
    ranges=(),
    head: str = "softmax",
) -> keras.Model:
    """Builds a UNet from raw RGB pixels to per-pixel class probabilities.

    The model preprocesses its input itself (by default RGB [0, 255] -> caffe-style BGR minus mean, as the
    ImageNet weights of both backbones expect), so callers feed plain pixel values.

    Args:
        input_shape: (H, W, C), H and W multiples of 32; C bands (3: RGB).
        num_classes: Number of classes including the background.
        backbone: "vgg" or "resnet50".
        variant: preprocessing, upsampling and BN epsilon, as the weights to be loaded were trained with.
        ranges: per band (low, high) that the preprocessing stretches to [0, 255] (Preprocess); () for 8-bit.
        head: softmax, or sigmoid with num_classes 1 (nets/heads.py).

    Returns:
        keras.Model: images (B, H, W, C) -> probabilities (B, H, W, num_classes), float32 softmax.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone={backbone!r} is not supported; expected one of {sorted(BACKBONES)}.")
    images = keras.Input(input_shape, name="images")
    features = BACKBONES[backbone](Preprocess(variant.preprocess, ranges, name="preprocess")(images))
    x = features[-1]  # VGG: (B, H/16, W/16, 512); ResNet50: (B, H/32, W/32, 2048)
    for i, (skip, filters) in enumerate(zip(reversed(features[:-1]), DECODER_FILTERS)):
        x = apply_decoder_stage(x, skip, filters, variant.upsampling, name=f"decoder{i + 1}")
    if backbone == "resnet50":
        # ResNet50's shallowest tap has stride 2: one more stage without a skip back to full size.
        x = layers.UpSampling2D(2, interpolation=variant.upsampling, name="decoder5_upsample")(x)
        for j in range(2):
            x = layers.Conv2D(64, 3, padding="same", activation="relu", name=f"decoder5_conv{j + 1}")(x)
    # Zero-initialised head: training starts from uniform probabilities (loss ln C) instead of the
    # saturated softmax that the large, caffe-scale encoder activations would otherwise give.
    x = layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name="head")(x)  # (B, H, W, num_classes)
    probabilities = apply_probabilities(x, head)
    model = keras.Model(images, probabilities, name=f"unet_{backbone}")
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):  # ResNet50's: read at call time, so set before any call
            layer.epsilon = variant.bn_epsilon
    return model


def model_variant(model: keras.Model) -> UnetVariant:
    """The variant a built model computes, read from its layers (defaults for what it lacks): what its
    checkpoints record, so that they are loaded into the same network."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, Preprocess) and layer.mode != "unit":  # unit: the networks trained from scratch
            found["preprocess"] = layer.mode
        elif isinstance(layer, layers.UpSampling2D) and layer.name.startswith("decoder"):
            found["upsampling"] = layer.interpolation
        elif isinstance(layer, layers.BatchNormalization) and layer.name.startswith("conv"):
            found["bn_epsilon"] = float(layer.epsilon)
    return UnetVariant(**found)
