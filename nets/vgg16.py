"""VGG16 encoder with `keras.applications.VGG16` layer names, so ImageNet weights load by name."""

import keras
from keras import layers

from nets.preprocess import Preprocess

# (number of 3x3 convs, filters) per block, as in Simonyan & Zisserman 2015, configuration D.
VGG16_BLOCKS = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]


def apply_vgg_block(x, num_convs: int, filters: int, name: str):
    """Applies `num_convs` 3x3 ReLU convolutions named `{name}_conv{j}`."""
    for j in range(num_convs):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{j + 1}")(x)
    return x


def apply_vgg16_encoder(x) -> list:
    """Runs the 13 conv layers of VGG16 on preprocessed images.

    Args:
        x: Tensor (B, H, W, 3), BGR minus the ImageNet mean.

    Returns:
        The last feature map of each block, before its pooling (the UNet's skips):
        [(B, H, W, 64), (B, H/2, W/2, 128), (B, H/4, W/4, 256), (B, H/8, W/8, 512), (B, H/16, W/16, 512)].
    """
    return apply_vgg16_stages(x, pool_last=False)[0]


def apply_vgg16_pools(x) -> list:
    """Runs VGG16's 13 conv layers and 5 poolings (block5_pool too); returns the pooled map of each block
    (FCN's pool1 ... pool5): [(B, H/2, W/2, 64), (B, H/4, W/4, 128), (B, H/8, W/8, 256), (B, H/16, W/16, 512),
    (B, H/32, W/32, 512)]."""
    return apply_vgg16_stages(x, pool_last=True)[1]


def apply_vgg16_stages(x, pool_last: bool):
    """(feature map of each block before its pooling, after it), the pooling layers named as in Keras'
    VGG16: block{i}_pool follows block i."""
    features, pools = [], []
    for i, (num_convs, filters) in enumerate(VGG16_BLOCKS):
        x = apply_vgg_block(x, num_convs, filters, name=f"block{i + 1}")
        features.append(x)
        if pool_last or i + 1 < len(VGG16_BLOCKS):
            x = layers.MaxPooling2D(2, name=f"block{i + 1}_pool")(x)
            pools.append(x)
    return features, pools


def build_vgg16(input_shape=(None, None, 3)) -> keras.Model:
    """VGG16 encoder as a model from raw RGB [0, 255] (or C bands: input_shape (H, W, C)) to its five feature
    maps."""
    images = keras.Input(input_shape, name="images")
    features = apply_vgg16_encoder(Preprocess(name="preprocess")(images))
    return keras.Model(images, features, name="vgg16")
