"""UNets with their own encoder, trained from scratch: the original (Ronneberger, Fischer & Brox 2015) with
valid convolutions and centre-cropped skips, and a small one for CPU-scale experiments."""

import keras
from keras import layers

from nets.heads import apply_probabilities
from nets.preprocess import Preprocess

CLASSIC_FILTERS = (64, 128, 256, 512, 1024)  # per level, the last at the bottom, as in the paper
SMALL_FILTERS = (16, 32, 64, 128, 256)
# The classic UNet loses 2 pixels per valid 3x3 convolution: 184 over the whole network (572 in, 388 out).
CLASSIC_MARGIN = 92
STRIDE = 2 ** (len(CLASSIC_FILTERS) - 1)  # four 2x2 poolings


def classic_output_size(size: int) -> int:
    """The classic UNet's output side for an input side: size - 184, or 0 if size is not a valid input."""
    valid = size >= 2 * CLASSIC_MARGIN + 4 and (size - 2 * CLASSIC_MARGIN - 4) % STRIDE == 0
    return size - 2 * CLASSIC_MARGIN if valid else 0


def valid_classic_sizes(near: int, count: int = 3) -> list:
    """Valid classic UNet input sides nearest to `near` (188, 204, ..., 572, ...)."""
    first = 2 * CLASSIC_MARGIN + 4
    below = max(first, first + (near - first) // STRIDE * STRIDE)
    return [below + STRIDE * k for k in range(-(count // 2), count - count // 2) if below + STRIDE * k >= first]


def check_classic_input_shape(input_shape) -> None:
    """Raises ValueError unless each side of input_shape (height, width) is a valid classic UNet input."""
    wrong = [side for side in input_shape if side is not None and not classic_output_size(side)]  # None: any size
    if wrong:
        raise ValueError(
            f"input_shape={list(input_shape)}: model='unet_classic' (valid convolutions) needs each side = "
            f"188 + 16k, e.g. {valid_classic_sizes(wrong[0])}; the output is 184 smaller (572 -> 388)."
        )


def apply_conv_pair(x, filters: int, padding: str, batch_norm: bool, name: str):
    """Two 3x3 ReLU convolutions named `{name}_conv{j}`, each with batch normalisation when asked."""
    for j in range(2):
        x = layers.Conv2D(
            filters,
            3,
            padding=padding,
            use_bias=not batch_norm,
            kernel_initializer="he_normal",  # the paper's N(0, sqrt(2 / fan_in))
            name=f"{name}_conv{j + 1}",
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{j + 1}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{j + 1}")(x)
    return x


def skip_crops(levels: int) -> list:
    """Pixels each skip loses to its centre crop with valid convolutions, the top level's first: the same for every
    valid input size (worked out at the paper's 572), so a network of any input size (None) crops them too."""
    size, skips = 572, []
    for _ in range(levels):
        skips.append(size - 4)  # two valid 3x3 convolutions
        size = (size - 4) // 2
    size -= 4  # the bottom's
    crops = []
    for skip in reversed(skips):
        size *= 2  # the up-convolution
        crops.insert(0, skip - size)
        size -= 4
    return crops


def centre_crop(skip, crop: int, name: str):
    """Crops `crop` pixels off a skip (B, h, w, C) around its centre, to the upsampled map's size (the paper's
    copy-and-crop)."""
    return layers.Cropping2D(((crop // 2, crop - crop // 2), (crop // 2, crop - crop // 2)), name=name)(skip)


def build_plain_unet(
    input_shape, num_classes: int, filters, padding: str, batch_norm: bool, name: str, ranges=(), head="softmax"
):
    """A UNet with its own encoder: per level two 3x3 convolutions and a 2x2 max-pooling down; per level up a
    2x2 up-convolution halving the channels, the skip (centre-cropped when the convolutions are valid)
    concatenated, two 3x3 convolutions; a 1x1 convolution to the classes.

    Returns:
        keras.Model: images (B, H, W, C) in [0, 255] (or stretched from `ranges`: Preprocess) -> probabilities
        (B, H', W', num_classes), float32 softmax;
        H' = H with "same" padding, H - 184 with "valid".
    """
    images = keras.Input(input_shape, name="images")
    x = Preprocess("unit", ranges, name="preprocess")(images)
    skips = []
    for i, level_filters in enumerate(filters[:-1]):
        x = apply_conv_pair(x, level_filters, padding, batch_norm, name=f"down{i + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{i + 1}_pool")(x)
    x = apply_conv_pair(x, filters[-1], padding, batch_norm, name="bottom")
    x = layers.Dropout(0.5, name="bottom_dropout")(x)  # the paper's drop-out at the end of the contracting path
    crops = skip_crops(len(skips)) if padding == "valid" else [0] * len(skips)
    for i, (skip, level_filters) in enumerate(zip(reversed(skips), reversed(filters[:-1]))):
        level = len(skips) - i
        x = layers.Conv2DTranspose(level_filters, 2, strides=2, name=f"up{level}_upconv")(x)
        if crops[level - 1]:
            skip = centre_crop(skip, crops[level - 1], name=f"up{level}_crop")
        x = layers.Concatenate(name=f"up{level}_concat")([skip, x])
        x = apply_conv_pair(x, level_filters, padding, batch_norm, name=f"up{level}")
    x = layers.Conv2D(num_classes, 1, name="head")(x)
    probabilities = apply_probabilities(x, head)
    return keras.Model(images, probabilities, name=name)


def build_unet_classic(input_shape=(572, 572, 3), num_classes: int = 2, ranges=(), head="softmax") -> keras.Model:
    """The original UNet: valid 3x3 convolutions, 64 to 1024 filters, centre-cropped skips.

    Args:
        input_shape: (H, W, C), each side 188 + 16k (classic_output_size says which fit); C bands.
        ranges: per band (low, high) stretched to [0, 255] before the network (Preprocess); () for 8-bit.

    Returns:
        keras.Model: images (B, H, W, C) -> probabilities (B, H - 184, W - 184, num_classes): 572 -> 388.
    """
    check_classic_input_shape(input_shape[:2])
    return build_plain_unet(input_shape, num_classes, CLASSIC_FILTERS, "valid", False, "unet_classic", ranges, head)


def build_unet_small(input_shape=(256, 256, 3), num_classes: int = 2, ranges=(), head="softmax") -> keras.Model:
    """A small UNet for quick experiments: 16 to 256 filters, "same" padding, batch normalisation.

    Args:
        input_shape: (H, W, C), H and W multiples of 16; C bands.
        ranges: as for build_unet_classic.
    """
    return build_plain_unet(input_shape, num_classes, SMALL_FILTERS, "same", True, "unet_small", ranges, head)
