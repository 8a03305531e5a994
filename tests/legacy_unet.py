"""Writes a weights file as bubbliiiing's unet-keras / unet-tf2 would, for the tests (run it as a fresh process).

Their network (written here from its description, not their code): the 13 VGG16 convolutions named as in
keras.applications, or Keras 2.2's ResNet50 (res2a_branch2a, bn2a_branch2a, ...), tapped before each pooling;
a decoder of nearest-neighbour x2 upsampling, concatenation [skip, upsampled] and two 3x3 ReLU convolutions
(512, 256, 128, 64 channels; ResNet50 has one more 64-channel stage without a skip); a 1x1 softmax convolution.
The decoder layers have no names, so Keras numbers them (conv2d, conv2d_1, ...) in a fresh process. It takes
x / 127.5 - 1 of RGB pixels.

    $ python tests/legacy_unet.py --backbone vgg --num_classes 21 --layout full --image in.png --out dir

writes dir/unet.h5 (full model, model.save; or `--layout weights`: weights only, Keras 2's save_weights
layout), dir/weights.npz ({layer name}/{index} -> every array) and dir/probabilities.npy (the network on the image).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py
import keras
import numpy as np
from keras import layers
from PIL import Image

VGG16_BLOCKS = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]
# (blocks, bottleneck filters) per ResNet50 stage 2..5
RESNET50_STAGES = [(3, 64), (4, 128), (6, 256), (3, 512)]


def vgg16_features(x) -> list:
    features = []
    for i, (num_convs, filters) in enumerate(VGG16_BLOCKS, 1):
        if i > 1:
            x = layers.MaxPooling2D(2, name=f"block{i - 1}_pool")(x)
        for j in range(1, num_convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{i}_conv{j}")(x)
        features.append(x)
    return features


def bottleneck(x, filters: int, stage: int, block: str, strides: int):
    """Keras 2.2's conv_block (block "a", with a projection) or identity_block, with its layer names."""
    conv, bn = f"res{stage}{block}_branch", f"bn{stage}{block}_branch"
    shortcut = x
    y = layers.Conv2D(filters, 1, strides=strides, name=conv + "2a")(x)
    y = layers.Activation("relu")(layers.BatchNormalization(name=bn + "2a")(y))
    y = layers.Conv2D(filters, 3, padding="same", name=conv + "2b")(y)
    y = layers.Activation("relu")(layers.BatchNormalization(name=bn + "2b")(y))
    y = layers.BatchNormalization(name=bn + "2c")(layers.Conv2D(4 * filters, 1, name=conv + "2c")(y))
    if block == "a":
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, name=conv + "1")(x)
        shortcut = layers.BatchNormalization(name=bn + "1")(shortcut)
    return layers.Activation("relu")(layers.add([y, shortcut]))


def resnet50_features(x) -> list:
    x = layers.Conv2D(64, 7, strides=2, name="conv1")(layers.ZeroPadding2D(3)(x))
    x = layers.Activation("relu")(layers.BatchNormalization(name="bn_conv1")(x))
    features = [x]
    x = layers.MaxPooling2D(3, strides=2)(layers.ZeroPadding2D(1)(x))
    for stage, (blocks, filters) in enumerate(RESNET50_STAGES, 2):
        for b in range(blocks):
            x = bottleneck(x, filters, stage, "abcdef"[b], strides=2 if b == 0 and stage > 2 else 1)
        features.append(x)
    return features


def decoder_stage(x, filters: int, skip=None):
    x = layers.UpSampling2D(2)(x)  # nearest, Keras' default
    if skip is not None:
        x = layers.Concatenate(axis=3)([skip, x])
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    return x


def build_legacy_unet(size: int, num_classes: int, backbone: str) -> keras.Model:
    inputs = keras.Input((size, size, 3))
    features = vgg16_features(inputs) if backbone == "vgg" else resnet50_features(inputs)
    x = features[-1]
    for skip, filters in zip(reversed(features[:-1]), [512, 256, 128, 64]):
        x = decoder_stage(x, filters, skip)
    if backbone == "resnet50":
        x = decoder_stage(x, 64)
    return keras.Model(inputs, layers.Conv2D(num_classes, 1, activation="softmax")(x))


def randomise(model: keras.Model, image: np.ndarray, rng) -> None:
    """Weights that make every tensor distinct and the output far from saturated. Kernels are He-scaled; those
    followed by BatchNormalization (ResNet50's) a tenth of that, and the BN variances about 0.01, so that the
    activations keep their scale and the BN epsilon (1e-3 here) matters. The head is scaled to logits with a
    standard deviation of about 2."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            gamma, beta, mean = (
                rng.uniform(0.5, 1.5, channels),
                rng.normal(0, 0.1, channels),
                rng.normal(0, 0.01, channels),
            )
            layer.set_weights([gamma, beta, mean, rng.uniform(0.005, 0.02, channels)])
        elif layer.weights:
            kernel, bias = layer.get_weights()
            scale = 0.1 if layer.name.startswith("res") or layer.name == "conv1" else 1.0
            std = scale * np.sqrt(2 / np.prod(kernel.shape[:-1]))
            layer.set_weights([rng.normal(0, std, kernel.shape), rng.normal(0, 0.01, bias.shape)])
    head = model.layers[-1]
    features = keras.Model(model.inputs, head.input).predict(image, verbose=0)
    kernel, bias = head.get_weights()
    head.set_weights([rng.normal(0, 2 / (features.std() * np.sqrt(kernel.shape[2])), kernel.shape), bias])


def write_keras2_weights(path: str, model: keras.Model, rename=str) -> None:
    """Keras 2's `save_weights("x.h5")` layout: layer_names on the root, a group per layer with weight_names;
    rename(layer name) gives the name stored."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [rename(layer.name).encode() for layer in model.layers]
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.10.0"
        for layer in model.layers:
            group = f.create_group(rename(layer.name))
            names = [f"{rename(layer.name)}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = names
            for name, weight in zip(names, layer.get_weights()):
                group.create_dataset(name.decode(), data=weight)


def main(argv) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", choices=["vgg", "resnet50"], default="vgg")
    parser.add_argument("--num_classes", type=int, default=21)
    parser.add_argument("--layout", choices=["full", "weights"], default="full")
    parser.add_argument("--image", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    pixels = np.asarray(Image.open(args.image).convert("RGB"), np.float32)
    image = (pixels / 127.5 - 1.0)[None]  # their preprocess_input
    model = build_legacy_unet(pixels.shape[0], args.num_classes, args.backbone)
    randomise(model, image, np.random.default_rng(0))
    path = os.path.join(args.out, "unet.h5")
    model.save(path) if args.layout == "full" else write_keras2_weights(path, model)
    arrays = {f"{layer.name}/{i}": w for layer in model.layers for i, w in enumerate(layer.get_weights())}
    np.savez(os.path.join(args.out, "weights.npz"), **arrays)
    np.save(os.path.join(args.out, "probabilities.npy"), model.predict(image, verbose=0)[0])


if __name__ == "__main__":
    main(sys.argv[1:])
