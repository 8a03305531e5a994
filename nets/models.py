"""The segmentation networks the scripts can train, chosen by name with the `model` setting."""

from dataclasses import dataclass

import keras

from nets.deeplab import OUTPUT_STRIDE, build_deeplabv3plus
from nets.encoders import BACKBONES, ENCODER_PREFIXES, FIRST_CONVS
from nets.fcn import build_fcn8
from nets.heads import check_head, head_channels
from nets.unet import UnetVariant, build_unet
from nets.unet_classic import (
    CLASSIC_MARGIN,
    build_unet_classic,
    build_unet_small,
    check_classic_input_shape,
    valid_classic_sizes,
)
from utils.files.bands import Bands

MODELS = ("unet", "deeplabv3plus", "fcn8", "unet_classic", "unet_small")
# Models on an encoder of nets/encoders.py, which starts from pretrained weights; the others train from scratch.
PRETRAINED_ENCODER = ("unet", "deeplabv3plus", "fcn8")
# The backbones each model takes: unet and deeplabv3plus any encoder; fcn8 is VGG16's; the others have their own
# ("vgg" is their setting's default).
MODEL_BACKBONES = {"unet": BACKBONES, "deeplabv3plus": BACKBONES}


@dataclass(frozen=True)
class Network:
    """Which network to build: the `model`, its `backbone`, the classes it tells apart, its input (height, width)
    and its output `head` (nets/heads.py). The scripts make one from their settings of the same names."""

    model: str = "unet"
    backbone: str = "vgg"
    num_classes: int = 2
    input_shape: tuple = (64, 64)
    head: str = "softmax"


def input_multiple(model: str) -> int:
    """What each input side must be a multiple of (its encoder's stride); unet_classic's are 188 + 16k instead."""
    return 16 if model == "unet_small" else OUTPUT_STRIDE if model == "deeplabv3plus" else 32


def nearby_sizes(model: str, input_shape) -> list:
    """Two input sizes (H, W) the model takes, other than input_shape and each other: about 0.75 and 1.25 times it
    (export.py's dynamic-size check)."""

    def near(side: int, factor: float) -> int:
        if model == "unet_classic":
            return valid_classic_sizes(round(side * factor), 1)[0]
        multiple = input_multiple(model)
        return max(multiple, round(side * factor / multiple) * multiple)

    step = 16 if model == "unet_classic" else input_multiple(model)
    smaller = [near(side, 0.75) if near(side, 0.75) < side else side + 2 * step for side in input_shape]
    larger = [max(near(side, 1.25), side + step) for side in input_shape]
    return [tuple(smaller), tuple(larger)]


def check_model_settings(model: str, input_shape, backbone: str = "vgg") -> None:
    """Raises ValueError unless the model exists, takes this input_shape (height, width) and this backbone."""
    if model not in MODELS:
        raise ValueError(f"model={model!r}: expected one of {', '.join(MODELS)}.")
    if backbone not in MODEL_BACKBONES.get(model, ("vgg",)):
        if model in MODEL_BACKBONES:
            raise ValueError(f"backbone={backbone!r}: model={model!r} takes one of {', '.join(BACKBONES)}.")
        own = "is built on VGG16" if model == "fcn8" else "has its own encoder"
        raise ValueError(
            f"model={model!r} {own}; backbone={backbone!r} is for model unet or deeplabv3plus only. Set backbone vgg."
        )
    if len(input_shape) != 2 or any(side is not None and side <= 0 for side in input_shape):
        raise ValueError(f"input_shape={list(input_shape)}: expected two positive sides (height width).")
    if model == "unet_classic":
        check_classic_input_shape(input_shape)
        return
    multiple = input_multiple(model)
    if any(side is not None and side % multiple for side in input_shape):  # None: any size (a dynamic export)
        raise ValueError(
            f"input_shape={list(input_shape)}: model={model!r} needs multiples of {multiple} (its encoder's stride), "
            "e.g. 256 256 or 512 512."
        )


def build_model(
    model: str,
    input_shape,
    num_classes: int,
    backbone: str = "vgg",
    variant: UnetVariant = UnetVariant(),
    bands: Bands = Bands(),
    head: str = "softmax",
) -> keras.Model:
    """The network `model` for images (H, W) -> probabilities (B, H', W', num_classes), float32 softmax, or
    (B, H', W', 1) P(class 1) for head sigmoid (nets/heads.py); H' = H except for unet_classic (H - 184).
    `variant` (the weights file's, utils.weights.formats.weights_variant) is for model=unet; the other models have
    one variant. `bands`: the images' band count and ranges (utils/files/bands.py), which the preprocessing applies."""
    check_model_settings(model, input_shape, backbone)
    if model != "unet" and variant != UnetVariant():
        raise ValueError(f"The weights were trained as a UNet with {variant.describe()}: set model=unet.")
    check_head(head, num_classes)
    shape, ranges, channels = (*input_shape, bands.channels), bands.ranges, head_channels(num_classes, head)
    if model == "unet":
        return build_unet(shape, channels, backbone, variant, ranges, head)
    if model == "deeplabv3plus":
        return build_deeplabv3plus(shape, channels, backbone, ranges, head)
    if model == "fcn8":
        return build_fcn8(shape, channels, ranges=ranges, head=head)
    if model == "unet_classic":
        return build_unet_classic(shape, channels, ranges, head)
    return build_unet_small(shape, channels, ranges, head)


def model_margin(model: str) -> int:
    """Input pixels on each side that the network `model`'s output does not cover (valid convolutions)."""
    return CLASSIC_MARGIN if model == "unet_classic" else 0


def output_shape(model: str, input_shape, num_classes: int, head: str = "softmax") -> tuple:
    """(H', W', channels): what the network `model` gives for input_shape (H, W), without building it."""
    return (*(side - 2 * model_margin(model) for side in input_shape), head_channels(num_classes, head))


def output_margin(model: keras.Model) -> int:
    """Input pixels on each side that the model's output does not cover (92 for the classic UNet, else 0)."""
    return (model.input_shape[1] - model.output_shape[1]) // 2


def set_backbone_trainable(model: keras.Model, trainable: bool) -> None:
    """Freezes or unfreezes the pretrained encoder (nets/encoders.py: its layers by ENCODER_PREFIXES), but for its
    first convolution when the network takes other than 3 bands (FIRST_CONVS); a model trained from scratch has
    none, and freezing leaves it whole."""
    # For other than 3 bands the first convolution's kernels are adapted from the RGB ones (utils/weights/matching.py
    # adapt_first_conv), so it keeps training: it has to learn what the new bands hold (with 4 bands, R and the 4th
    # start with the same kernels and would be summed alike).
    adapted = model.input_shape[-1] != 3
    for layer in model.layers:
        if layer.name.startswith(ENCODER_PREFIXES):
            layer.trainable = trainable or (adapted and layer.name in FIRST_CONVS)
