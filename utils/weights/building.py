"""The one build-then-load sequence, for train.py's starting weights and the predictor's trained weights: the
network is built as the weights file was trained (its UnetVariant), then filled from the file and checked."""

import contextlib

from nets.models import Network, build_model
from nets.unet import UnetVariant
from utils.files.bands import Bands
from utils.weights.checkpoint import read_settings
from utils.weights.formats import weights_variant
from utils.weights.matching import Loading, load_weights, report_loading
from utils.weights.mismatch import check_loading, check_trained_weights_file


def build_with_weights(
    network: Network,
    path: str | None,
    source: str = "",
    complete: bool = True,
    scope=None,
    bands: Bands = Bands(),
):
    """The `network` for images of `bands`, holding path's weights (a pretrained first convolution adapted to the
    band count: matching.adapt_first_conv).

    complete=True (prediction): every layer must load; complete=False (training's starting point): at least
    one must, the rest stays initialised and is reported. path=None: initialised weights only.
    scope: the distribution strategy's scope, so that the variables are mirrored on every replica.
    """
    variant, known = weights_variant(path) if path else (UnetVariant(), "")
    with scope or contextlib.nullcontext():
        model = build_model(
            network.model, network.input_shape, network.num_classes, network.backbone, variant, bands, network.head
        )
        loading = load_weights(model, path) if path else Loading()
    print(report_loading(source or path, loading))
    if path:
        check_loading(model, path, loading, network.model, network.backbone, complete)
    if variant != UnetVariant():
        print(f"  trained as: {variant.describe()} ({known})")
    return model


MEMBER_SETTINGS = ("model", "backbone", "num_classes", "head", "scale_mode", "image_scale")


def build_member(path: str, first: str, recorded, network: Network):
    """The `network` holding an ensemble's weights file at path, checked to be the network of `first` (the
    ensemble's first file, whose ModelSettings are `recorded`): the same MEMBER_SETTINGS and bands (16-bit ranges
    may differ: each network stretches its input itself).

    Raises:
        ValueError: naming the file and the setting that differs.
    """
    check_trained_weights_file(path)
    member = read_settings(path)
    if recorded is None or member is None:
        raise ValueError(
            f"{path if member is None else first}: records no settings, so an ensemble cannot check that its "
            "networks are the same. Use weights files written by train.py."
        )
    for name in MEMBER_SETTINGS:
        if getattr(member, name) != getattr(recorded, name):
            raise ValueError(
                f"{path}: {name}={getattr(member, name)!r}, but {first} has {name}={getattr(recorded, name)!r}. An "
                "ensemble averages one network trained again (folds, seeds): give weights files of one network."
            )
    if (member.bands.channels, member.bands.dtype) != (recorded.bands.channels, recorded.bands.dtype):
        raise ValueError(f"{path}: images of {member.bands.describe()}, but {first} takes {recorded.bands.describe()}.")
    return build_with_weights(network, path, bands=member.bands)
