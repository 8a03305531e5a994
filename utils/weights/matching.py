"""Loading weights into a model: layers matched by name, then the file's unnamed layers by place, each pair's
shapes checked, and a report of what was loaded, left initialised or unused, and why."""

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from nets.encoders import FIRST_CONVS
from nets.fcn import CONVOLUTIONALISED
from nets.preprocess import CAFFE_BGR_MEAN, CAFFE_GREY_MEAN, Preprocess
from utils.weights.formats import AUTO_NAME, read_weights


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
    adapted: list = field(default_factory=list)  # (layer, how): a first convolution adapted to the band count, an fc
    # layer reshaped to a convolution


def adapt_first_conv(arrays: list, channels: int, mode: str) -> tuple:
    """A pretrained first convolution's [kernel (k, k, 3, F), bias (F,)] for `channels` input bands, and how.

    1 band: the RGB kernels summed; N bands: band n gets the kernel of RGB channel n % 3, scaled by 3 / N (timm's and
    segmentation_models' rule), so that the first layer's response keeps its size. In caffe mode the file's kernels
    take BGR minus a mean per channel while the bands take one mean (nets/preprocess.py CAFFE_GREY_MEAN): the bias takes
    the difference, so that a grey image as 1 band (or as 3k equal bands) gives the RGB network's first-layer
    response to it (exactly, but for the zero padding at the image's border).
    """
    kernel, *rest = [np.asarray(a) for a in arrays]
    rgb = kernel[:, :, ::-1] if mode == "caffe" else kernel  # the kernel's input channels in R, G, B order
    if channels == 1:
        adapted, how = rgb.sum(axis=2, keepdims=True), "RGB kernels summed for 1 band"
    else:
        adapted = rgb[:, :, [n % 3 for n in range(channels)]] * (3 / channels)
        how = f"RGB kernels repeated over {channels} bands, scaled by 3/{channels}"
    if rest and mode == "caffe":
        shift = CAFFE_GREY_MEAN - np.asarray(CAFFE_BGR_MEAN)  # (3,) in the kernel's BGR order
        rest[0] = rest[0] + np.einsum("hwcf,c->f", kernel.astype(np.float64), shift).astype(rest[0].dtype)
        how += ", bias adjusted for the bands' one mean"
    return [adapted.astype(kernel.dtype), *rest], how


def adaptable(layer, arrays: list) -> bool:
    """Whether the file's weights for this layer are a pretrained first convolution (FIRST_CONVS: adapted, not
    dropped) for 3 bands where the model takes another number (shapes equal but for the input channels)."""
    wanted = [tuple(w.shape) for w in layer.weights]
    found = [np.shape(a) for a in arrays]
    return (
        layer.name in FIRST_CONVS
        and len(found) == len(wanted)
        and found[0][2] == 3
        and wanted[0][2] != 3
        and found[0][:2] + found[0][3:] == wanted[0][:2] + wanted[0][3:]
        and found[1:] == wanted[1:]
    )


def convolutionalise(stored: dict, model, loading: Loading) -> dict:
    """stored with a classifier's fully connected layers as the model's convolutions (CONVOLUTIONALISED: VGG16's
    fc1 / fc2 as FCN-8s' conv6 / conv7, Long et al.'s "convolutionalization"), where the sizes agree. Dense
    kernels (h * w * C_in, C_out) flatten a (h, w, C_in) map in that order, so they reshape to (h, w, C_in, C_out)."""
    names = {layer.name for layer in model.layers}
    for conv, dense in CONVOLUTIONALISED.items():
        if conv not in names or conv in stored or dense not in stored:
            continue
        kernel, *rest = stored[dense]
        shape = tuple(model.get_layer(conv).kernel.shape)
        if np.ndim(kernel) == 2 and np.size(kernel) == np.prod(shape):
            del stored[dense]
            stored[conv] = [np.reshape(kernel, shape), *rest]
            how = f"{dense} {np.shape(kernel)} reshaped to a {shape[0]}x{shape[1]} convolution {shape}"
            loading.adapted.append((conv, how))
    return stored


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
    loading, taken, unmatched = Loading(), set(), []
    stored = convolutionalise(read_weights(path, model), model, loading)
    classes = model.output_shape[-1]
    mode = next((layer.mode for layer in model.layers if isinstance(layer, Preprocess)), "caffe")
    for layer in (layer for layer in model.layers if layer.weights):
        if layer.name in stored:
            taken.add(layer.name)
            arrays = stored[layer.name]
            if adaptable(layer, arrays):
                arrays, how = adapt_first_conv(arrays, layer.weights[0].shape[2], mode)
                loading.adapted.append((layer.name, how))
            place(layer, arrays, loading, classes)
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
    lines += [f"  {name}: the file's {how} (adapted, not dropped)" for name, how in loading.adapted]
    if loading.unused:
        lines.append(f"  not used from the file ({len(loading.unused)} layers): {abbreviate(loading.unused)}")
    return "\n".join(lines)
