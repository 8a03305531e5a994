"""UNet decoder on a VGG16 or ResNet50 encoder, as in the VOC UNet platforms."""

import keras
from keras import layers

from nets.resnet50 import apply_resnet50_encoder
from nets.vgg16 import CaffePreprocess, apply_vgg16_encoder

BACKBONES = {"vgg": apply_vgg16_encoder, "resnet50": apply_resnet50_encoder}

# Decoder channels from the deepest stage up.
DECODER_FILTERS = [512, 256, 128, 64]


def apply_decoder_stage(x, skip, filters: int, name: str):
    """Upsamples x2, concatenates the skip and applies two 3x3 ReLU convolutions."""
    x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_upsample")(x)
    x = layers.Concatenate(name=f"{name}_concat")([skip, x])
    for j in range(2):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{j + 1}")(x)
    return x


def build_unet(input_shape=(512, 512, 3), num_classes: int = 21, backbone: str = "vgg") -> keras.Model:
    """Builds a UNet from raw RGB pixels to per-pixel class probabilities.

    The model preprocesses its input itself (RGB [0, 255] -> caffe-style BGR minus mean, as the ImageNet
    weights of both backbones expect), so callers feed plain pixel values.

    Args:
        input_shape: (H, W, 3), H and W multiples of 32.
        num_classes: Number of classes including the background.
        backbone: "vgg" or "resnet50".

    Returns:
        keras.Model: images (B, H, W, 3) -> probabilities (B, H, W, num_classes), float32 softmax.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone={backbone!r} is not supported; expected one of {sorted(BACKBONES)}.")
    images = keras.Input(input_shape, name="images")
    features = BACKBONES[backbone](CaffePreprocess(name="preprocess")(images))
    x = features[-1]  # VGG: (B, H/16, W/16, 512); ResNet50: (B, H/32, W/32, 2048)
    for i, (skip, filters) in enumerate(zip(reversed(features[:-1]), DECODER_FILTERS)):
        x = apply_decoder_stage(x, skip, filters, name=f"decoder{i + 1}")
    if backbone == "resnet50":
        # ResNet50's shallowest tap has stride 2: one more stage without a skip back to full size.
        x = layers.UpSampling2D(2, interpolation="bilinear", name="decoder5_upsample")(x)
        for j in range(2):
            x = layers.Conv2D(64, 3, padding="same", activation="relu", name=f"decoder5_conv{j + 1}")(x)
    # Zero-initialised head: training starts from uniform probabilities (loss ln C) instead of the
    # saturated softmax that the large, caffe-scale encoder activations would otherwise give.
    x = layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name="head")(x)  # (B, H, W, num_classes)
    # Softmax in float32 so mixed-precision training keeps a stable loss.
    probabilities = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(images, probabilities, name=f"unet_{backbone}")
