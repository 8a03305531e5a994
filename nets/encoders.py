"""The encoders that `model=unet` and `model=deeplabv3plus` are built on, chosen by the `backbone` setting.

VGG16 is this platform's own layers (nets/vgg16.py); ResNet50, MobileNetV2 and EfficientNetV2-B0 are built by
keras.applications with weights=None and keep its layer names, so that each one's ImageNet file loads by name
afterwards (utils/weights/). Each encoder gives the last feature map at each stride, shallowest first.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import keras
from keras import layers

from nets.vgg16 import apply_vgg16_encoder

# keras.applications.ResNet50's BatchNormalization epsilon (Keras 2.2's ResNet50 used Keras' default, 1e-3).
KERAS_BN_EPSILON = 1.001e-5
# The largest batch-normalisation momentum an encoder keeps (Keras' default; ResNet50's): see momentum_edits.
BN_MOMENTUM = 0.99


@dataclass(frozen=True)
class Encoder:
    """What the networks and the weights code need to know of an encoder."""

    preprocess: str  # the input its ImageNet weights expect: caffe | tf | torch (nets/preprocess.py PREPROCESSING)
    strides: tuple  # the stride of each feature map it gives, shallowest first
    first_conv: str  # its first convolution: adapted to other band counts, trainable while the rest is frozen
    prefixes: tuple  # every one of its layer names starts with one of these (what freezing freezes)
    decoder_filters: tuple  # the UNet decoder's widths on it, from the deepest stage up
    application: Callable | None = None  # the keras.applications constructor; None: VGG16, nets/vgg16.py
    taps: tuple = ()  # keras.applications: the layers whose outputs are the feature maps
    upsampling: str = "bilinear"  # the UNet decoder's x2 upsampling
    options: dict = field(default_factory=dict)  # keras.applications: constructor arguments beyond the defaults


ENCODERS = {
    "vgg": Encoder("caffe", (1, 2, 4, 8, 16), "block1_conv1", ("block",), (512, 256, 128, 64)),
    "resnet50": Encoder(
        "caffe",
        (2, 4, 8, 16, 32),
        "conv1_conv",
        ("conv", "pool"),
        (512, 256, 128, 64, 64),
        keras.applications.ResNet50,
        ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
    ),
    # The light encoders end at their last block (MobileNetV2's 320 channels, as TensorFlow's segmentation tutorial
    # and DeepLab take it; the final 1x1 expansion to 1280 feeds a classifier) and get a light decoder: with the wide
    # one of VGG16 the decoder alone would cost 10 times the MobileNetV2 encoder's arithmetic. Their decoder upsamples
    # nearest (as Keras' UpSampling2D and bubbliiiing's UNets do): bilinear resizing takes a fifth of the light UNet's
    # time in bf16 on a CPU.
    "mobilenetv2": Encoder(
        "tf",
        (2, 4, 8, 16, 32),
        "Conv1",
        ("Conv", "bn_Conv", "expanded_conv", "block_"),
        (128, 64, 32, 16, 16),
        keras.applications.MobileNetV2,
        (
            "block_1_expand_relu",
            "block_3_expand_relu",
            "block_6_expand_relu",
            "block_13_expand_relu",
            "block_16_project_BN",
        ),
        "nearest",
        {"alpha": 1.0},
    ),
    "efficientnetv2b0": Encoder(
        "torch",
        (2, 4, 8, 16, 32),
        "stem_conv",
        ("stem_", "block"),
        (128, 64, 32, 16, 16),
        keras.applications.EfficientNetV2B0,
        (
            "block1a_project_activation",
            "block2b_add",
            "block4a_expand_activation",
            "block6a_expand_activation",
            "block6h_add",
        ),
        "nearest",
        {"include_preprocessing": False},  # the Preprocess layer does it, for any band count
    ),
}
BACKBONES = tuple(ENCODERS)
# Every encoder's layer-name prefixes and first convolution: what freezing freezes, and what it leaves trainable
# for other than 3 bands.
ENCODER_PREFIXES = tuple(dict.fromkeys(p for encoder in ENCODERS.values() for p in encoder.prefixes))
FIRST_CONVS = tuple(encoder.first_conv for encoder in ENCODERS.values())


def encoder_named(backbone: str) -> Encoder:
    """ENCODERS[backbone], or a ValueError listing the backbones."""
    if backbone not in ENCODERS:
        raise ValueError(f"backbone={backbone!r} is not supported; expected one of {', '.join(ENCODERS)}.")
    return ENCODERS[backbone]


PROBE_SIZE = 256  # px: the probe a dynamic-size encoder reads its strides from


def apply_encoder(backbone: str, x, output_stride: int = 32) -> list:
    """Runs the encoder on preprocessed images x (B, H, W, C).

    Args:
        output_stride: 32, or 16 for DeepLabV3+: the stages past it keep their resolution and dilate their
            convolutions instead (atrous_edits), with the same weights.

    Returns:
        Its feature maps, [(B, H / s, W / s, C_s) for s in strides], the deepest at stride min(32, output_stride).
    """
    encoder = encoder_named(backbone)
    if encoder.application is None:
        return apply_vgg16_encoder(x)  # strides 1 ... 16: within any output stride
    base = encoder.application(include_top=False, weights=None, input_shape=tuple(x.shape[1:]), **encoder.options)
    # A network of any input size (None, None: export.py's dynamic ONNX) reads its strides off a probe of a known
    # size: the layers, and their names, are the same.
    dynamic = None in x.shape[1:3]
    probe = (
        encoder.application(
            include_top=False, weights=None, input_shape=(PROBE_SIZE, PROBE_SIZE, x.shape[-1]), **encoder.options
        )
        if dynamic
        else base
    )
    edits = {**momentum_edits(base), **atrous_edits(probe, output_stride)}
    # The clone is built on x, so its layers join the calling network under keras.applications' names.
    clone = keras.models.clone_model(base, input_tensors=x, clone_function=lambda layer: edited(layer, edits))
    return [clone.get_layer(name).output for name in encoder.taps]


def momentum_edits(base: keras.Model) -> dict:
    """{layer name: config changes} that bring batch normalisation's moving-average momentum down to BN_MOMENTUM.

    keras.applications' MobileNetV2 uses 0.999, which suits ImageNet's million steps: over the few hundred steps of
    a small dataset its moving statistics stay near their start (those of ImageNet, or 0 and 1 from random), so
    the network evaluates on statistics its features no longer have (on membrane, from random: everything
    background, while training mode had learned the membranes)."""
    return {
        layer.name: {"momentum": BN_MOMENTUM}
        for layer in base.layers
        if isinstance(layer, layers.BatchNormalization) and layer.momentum > BN_MOMENTUM
    }


def atrous_edits(base: keras.Model, output_stride: int) -> dict:
    """{layer name: config changes} that keep base's resolution at output_stride: a strided convolution past it
    gets stride 1, and every later convolution of kernel > 1 a dilation of (its input's stride) / output_stride,
    as DeepLab's atrous encoders do. A stride-2 convolution on an explicit ZeroPadding2D (MobileNetV2's) pads
    "same" instead, and the padding layer is emptied.

    The strides are read from base's shapes, so base must be built for a known input size.
    """
    size, edits = base.input.shape[1], {}
    for layer in base.layers:
        if not isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            continue
        out_stride = 2 ** round(math.log2(size / layer.output.shape[1]))
        in_stride = out_stride // layer.strides[0]
        if out_stride <= output_stride or layer.kernel_size == (1, 1) and layer.strides == (1, 1):
            continue
        change = {"strides": (1, 1)}
        rate = in_stride // output_stride
        if layer.kernel_size != (1, 1) and rate > 1:
            change["dilation_rate"] = (rate, rate)
        if layer.padding == "valid" and layer.kernel_size != (1, 1):
            change["padding"] = "same"
            source = layer.input._keras_history.operation
            if isinstance(source, layers.ZeroPadding2D):
                edits[source.name] = {"padding": ((0, 0), (0, 0))}
        edits[layer.name] = change
    return edits


def edited(layer, edits: dict):
    """A new layer like `layer`, with its config changes from edits."""
    return layer.__class__.from_config({**layer.get_config(), **edits.get(layer.name, {})})
