"""Why trained weights do not fit the model: the file's kernels tell which network and num_classes it was
trained as, and the message names the setting to change."""

from nets.deeplab import LOW_LEVEL_FILTERS
from nets.encoders import ENCODER_PREFIXES
from utils.files.paths import check_file
from utils.weights.formats import kernel_shapes
from utils.weights.matching import Loading, abbreviate


def guess_model(path: str):
    """(model, backbone) that a weights file was most likely saved from, told by its kernels' shapes;
    (None, None) when they tell none of them."""
    shapes = kernel_shapes(path)
    if any(shape[:3] == (7, 7, 512) for shape in shapes):
        return "fcn8", "vgg"  # conv6 on pool5
    if (3, 3, 3, 16) in shapes:
        return "unet_small", "vgg"
    if (7, 7, 3, 64) in shapes:
        backbone = "resnet50"  # ResNet50's stem
    elif (3, 3, 32, 1) in shapes:
        backbone = "mobilenetv2"  # its first depthwise convolution
    elif (3, 3, 3, 32) in shapes:
        backbone = "efficientnetv2b0"  # a 32-filter stem without MobileNetV2's depthwise one
    elif (3, 3, 3, 64) in shapes:
        if any(shape[:2] == (2, 2) for shape in shapes):
            return "unet_classic", "vgg"  # its up-convolutions
        backbone = "vgg"
    else:
        return None, None
    deeplab = any(shape[:2] == (1, 1) and shape[3] == LOW_LEVEL_FILTERS for shape in shapes)  # its decoder_low
    return ("deeplabv3plus" if deeplab else "unet"), backbone


def describe(model: str, backbone: str) -> str:
    if model in ("unet", "deeplabv3plus"):
        return f"a {backbone} {'UNet' if model == 'unet' else 'DeepLabV3+'}"
    return f"a {model} model"


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
    check_file(
        model_path,
        "model_path",
        "a weights file (.weights.h5)",
        (".h5",),
        "Train first (python train.py writes logs/best_epoch_weights.weights.h5), or set model_path to a weights "
        "file from logs/.",
    )


def check_loading(model, path: str, loading: Loading, model_name: str, backbone: str, complete: bool) -> None:
    """A trained network (complete) must fill every layer; a starting point for training at least one, else it
    is another network's file. Otherwise a ValueError names the setting to change."""
    if complete and loading.skipped:
        raise ValueError(mismatch_message(path, model, loading, model_name, backbone, model.output_shape[-1]))
    if not loading.loaded:
        raise ValueError(
            mismatch_message(path, model, loading, model_name, backbone, model.output_shape[-1])
            + " (No layer loaded: training would start from random weights.)"
        )
