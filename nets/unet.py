"""UNet decoder on an encoder of nets/encoders.py (VGG16, ResNet50, MobileNetV2, EfficientNetV2-B0), as in the VOC
UNet platforms."""

import re
from dataclasses import dataclass, replace

import keras
from keras import layers

from nets.encoders import ENCODERS, FIRST_CONVS, KERAS_BN_EPSILON, apply_encoder, encoder_named
from nets.heads import apply_probabilities
from nets.preprocess import PREPROCESSING, Preprocess

# The UNet decoder's upsampling layers (apply_decoder_stage): what the variant's upsampling is read from.
UNET_UPSAMPLING = re.compile(r"decoder\d+_upsample")


@dataclass(frozen=True)
class UnetVariant:
    """The details a weights file was trained with and the network must reproduce: same layers, other arithmetic.

    The defaults are keras.applications' (and this platform's checkpoints); bubbliiiing's unet-keras / unet-tf2
    files take preprocess="tf", upsampling="nearest" and, for ResNet50, bn_epsilon=1e-3 (Keras 2.2's ResNet50).
    """

    preprocess: str = ""  # "": the encoder's own (nets/encoders.py); caffe | tf | torch: see nets.vgg16.PREPROCESSING
    upsampling: str = ""  # the decoder's x2 upsampling: "": the encoder's own (nets/encoders.py) | bilinear | nearest
    bn_epsilon: float = KERAS_BN_EPSILON  # ResNet50's BatchNormalization epsilon

    def __post_init__(self):
        if self.preprocess not in ("", *PREPROCESSING) or self.upsampling not in ("", "bilinear", "nearest"):
            raise ValueError(
                f"{self}: expected preprocess {' | '.join(PREPROCESSING)} and upsampling bilinear | nearest."
            )

    def relative_to(self, backbone: str) -> "UnetVariant":
        """The same variant with the encoder's own preprocessing and upsampling as "" (files written before ""
        meant the encoder's own recorded them by name)."""
        encoder = ENCODERS.get(backbone)
        if encoder is None:
            return self
        own = {"preprocess": encoder.preprocess, "upsampling": encoder.upsampling}
        return replace(self, **{name: "" for name, value in own.items() if getattr(self, name) == value})

    def describe(self) -> str:
        parts = [f"input {PREPROCESSING[self.preprocess]}"] if self.preprocess else []
        parts += [f"{self.upsampling} upsampling"] if self.upsampling else []
        parts += [f"ResNet50 BN epsilon {self.bn_epsilon:g}"] if self.bn_epsilon != KERAS_BN_EPSILON else []
        return ", ".join(parts)


def apply_decoder_stage(x, skip, filters: int, upsampling: str, name: str):
    """Upsamples x2, concatenates the skip (if any) and applies two 3x3 ReLU convolutions."""
    x = layers.UpSampling2D(2, interpolation=upsampling, name=f"{name}_upsample")(x)
    if skip is not None:
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
    """Builds a UNet from raw pixels to per-pixel class probabilities.

    The model preprocesses its input itself (RGB [0, 255] -> what the encoder's ImageNet weights expect: caffe-style
    BGR minus mean for VGG16 and ResNet50, [-1, 1] for MobileNetV2, ImageNet-normalised for EfficientNetV2-B0), so
    callers feed plain pixel values.

    Args:
        input_shape: (H, W, C), H and W multiples of 32; C bands (3: RGB).
        num_classes: Number of classes including the background.
        backbone: an encoder of nets/encoders.py: vgg | resnet50 | mobilenetv2 | efficientnetv2b0.
        variant: preprocessing, upsampling and BN epsilon, as the weights to be loaded were trained with.
        ranges: per band (low, high) that the preprocessing stretches to [0, 255] (Preprocess); () for 8-bit.
        head: softmax, or sigmoid with num_classes 1 (nets/heads.py).

    Returns:
        keras.Model: images (B, H, W, C) -> probabilities (B, H, W, num_classes), float32 softmax.
    """
    encoder = encoder_named(backbone)
    images = keras.Input(input_shape, name="images")
    preprocess = Preprocess(variant.preprocess or encoder.preprocess, ranges, name="preprocess")
    features = apply_encoder(backbone, preprocess(images))
    x = features[-1]  # VGG: (B, H/16, W/16, 512); ResNet50: (B, H/32, W/32, 2048); ...
    skips, upsampling = reversed(features[:-1]), variant.upsampling or encoder.upsampling
    for i, filters in enumerate(encoder.decoder_filters):
        # From the deepest map up, x2 each stage; an encoder whose shallowest map has stride 2 (all but VGG's) gets a
        # last stage without a skip, back to full size.
        x = apply_decoder_stage(x, next(skips, None), filters, upsampling, name=f"decoder{i + 1}")
    # Zero-initialised head: training starts from uniform probabilities (loss ln C) instead of the
    # saturated softmax that the large, caffe-scale encoder activations would otherwise give.
    x = layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name="head")(x)  # (B, H, W, num_classes)
    probabilities = apply_probabilities(x, head)
    model = keras.Model(images, probabilities, name=f"unet_{backbone}")
    if backbone == "resnet50":
        for layer in model.layers:
            if isinstance(layer, layers.BatchNormalization):  # read at call time, so set before any call
                layer.epsilon = variant.bn_epsilon
    return model


def encoder_of(model: keras.Model) -> str | None:
    """The backbone a built network's encoder is (by its first convolution), or None for one of its own."""
    names = {layer.name for layer in model.layers}
    return next((backbone for backbone, conv in zip(ENCODERS, FIRST_CONVS) if conv in names), None)


def model_variant(model: keras.Model) -> UnetVariant:
    """The variant a built model computes, read from its layers (defaults for what it lacks): what its
    checkpoints record, so that they are loaded into the same network."""
    found, backbone = {}, encoder_of(model)
    for layer in model.layers:
        if isinstance(layer, Preprocess) and backbone and layer.mode != ENCODERS[backbone].preprocess:
            found["preprocess"] = layer.mode
        elif isinstance(layer, layers.UpSampling2D) and UNET_UPSAMPLING.fullmatch(layer.name) and backbone:
            if layer.interpolation != ENCODERS[backbone].upsampling:
                found["upsampling"] = layer.interpolation
        elif isinstance(layer, layers.BatchNormalization) and backbone == "resnet50" and layer.name.startswith("conv"):
            found["bn_epsilon"] = float(layer.epsilon)
    return UnetVariant(**found)
