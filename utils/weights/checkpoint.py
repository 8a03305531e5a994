"""Weights files: the one module that writes train.py's weights files and reads what they record.

Two kinds of checkpoint, both HDF5 `.weights.h5` files written atomically (utils/files/atomic.py):
- weights files (best_epoch_weights, last_epoch_weights, ep...), here: the network's weights and, as an
  attribute, the ModelSettings that describe it, so that prediction needs no settings typed in again;
- resumable checkpoints (resume_epoch012.weights.h5), in utils/training/resumable.py: a weights file plus the
  optimizer's state and the run's state, all that `train.py --resume` needs to continue exactly.
"""

import json
import os
import shutil
from dataclasses import asdict, dataclass

import h5py
import keras

from nets.models import Network
from nets.unet import UnetVariant
from utils.files.atomic import check_free_space, variables_bytes, write_atomically, write_json
from utils.files.bands import Bands
from utils.scale import Scale, resolve_scale_mode

SETTINGS_ATTR = "unet_settings"  # ModelSettings, JSON
EPOCH_ATTR = "epoch"  # the epoch a weights file holds the end of
VARIANT_ATTR = "unet_variant"  # files of this repo written before SETTINGS_ATTR recorded the variant alone


def beside_weights(weights_path: str, suffix: str) -> str:
    """A record about a weights file, beside it: its name without .weights.h5, + suffix (post-processing, speeds)."""
    stem = weights_path[: -len(".weights.h5")] if weights_path.endswith(".weights.h5") else weights_path
    return stem + suffix


@dataclass(frozen=True)
class ModelSettings:
    """What a weights file was trained as: enough to build its network and name its classes."""

    model: str
    backbone: str
    num_classes: int
    input_shape: tuple  # (height, width) of the training input
    variant: UnetVariant = UnetVariant()
    class_names: tuple = ()  # background first; () when the dataset named none
    scale_mode: str = "fit"  # how images meet the network (utils/scale.py): fit | slide
    image_scale: float = 1.0  # slide: the scale images are seen at
    bands: Bands = Bands()  # the images' band count, sample type and ranges (utils/files/bands.py)
    head: str = "softmax"  # softmax | sigmoid (one output for 2 classes) | multilabel (nets/heads.py)

    def to_json(self) -> str:
        fields = {**asdict(self), "input_shape": list(self.input_shape), "class_names": list(self.class_names)}
        return json.dumps({**fields, "bands": self.bands.to_dict()})

    @classmethod
    def from_json(cls, text: str) -> "ModelSettings":
        fields = json.loads(text)
        # Files from before the encoder's own preprocessing was recorded as "" name it (caffe).
        fields["variant"] = UnetVariant(**fields.get("variant", {})).relative_to(fields["backbone"])
        fields["input_shape"] = tuple(fields["input_shape"])
        fields["class_names"] = tuple(fields.get("class_names", ()))
        fields["bands"] = Bands.from_dict(fields.get("bands", {}))  # files from before: 8-bit RGB
        # Files written before scale modes were recorded: as those versions predicted (the classic UNet by tiles).
        fields.setdefault("scale_mode", resolve_scale_mode("auto", fields["model"]))
        return cls(**fields)


def save_weights(model, path: str, settings: ModelSettings, epoch: int) -> None:
    """Writes the network's weights (no optimizer state) with its settings and the epoch they are from,
    atomically."""

    check_free_space(os.path.dirname(os.path.abspath(path)), variables_bytes(model.weights), path)

    def write(temporary):
        # A functional view over the same layers has no optimizer: Keras 3 would otherwise store the
        # compiled model's optimizer state too, tripling the file (the group names stay the same).
        keras.Model(model.inputs, model.outputs, name=model.name).save_weights(temporary, overwrite=True)
        with h5py.File(temporary, "a") as h5:
            h5.attrs[SETTINGS_ATTR] = settings.to_json()
            h5.attrs[EPOCH_ATTR] = epoch

    write_atomically(path, write, ".weights.h5")


def copy_weights(source: str, path: str) -> None:
    """A copy of a weights file (the same weights, settings and epoch), atomically: a file copy, where writing the
    weights anew goes through Keras' serialisation layer by layer (about 0.2 s against under 0.1 s for the
    VGG16-UNet's 100 MB)."""
    check_free_space(os.path.dirname(os.path.abspath(path)), os.path.getsize(source), path)
    write_atomically(path, lambda temporary: shutil.copyfile(source, temporary), ".weights.h5")


def recorded_epoch(path: str):
    """The epoch a weights file holds the end of, or None (no file, an unreadable one, or one that does not say)."""
    try:
        with h5py.File(path, "r") as h5:
            return int(h5.attrs[EPOCH_ATTR]) if EPOCH_ATTR in h5.attrs else None
    except OSError:
        return None


def read_settings(path: str):
    """The ModelSettings a weights file records, or None (a file from another repo, or from before they were
    recorded)."""
    try:
        with h5py.File(path, "r") as h5:
            return ModelSettings.from_json(h5.attrs[SETTINGS_ATTR]) if SETTINGS_ATTR in h5.attrs else None
    except OSError as error:
        if path.lower().endswith(".onnx"):
            raise ValueError(
                f"{path}: an ONNX model (from export.py), which backend keras does not read: add --backend onnx."
            ) from None
        raise ValueError(
            f"{path}: not a readable HDF5 weights file ({error}). Expected a Keras .h5 or .weights.h5 file; the "
            "file may be truncated or of another format. Download or copy it again."
        ) from None


def check_recorded(path: str, recorded: ModelSettings, given: dict) -> None:
    """Raises ValueError for a network setting given explicitly ({name: value}) that contradicts what the weights
    file at path records, naming both values."""
    for name, value in given.items():
        if value != getattr(recorded, name):
            found = getattr(recorded, name)
            raise ValueError(
                f"{name}={value!r}, but {path} was trained with {name}={found!r}. Leave {name} unset (it is read "
                f"from the file), or set it to {found!r}."
            )


def recorded_variant(h5: h5py.File):
    """The UnetVariant an open weights file records, or None for a file that records none (another repo's)."""
    if SETTINGS_ATTR in h5.attrs:
        return ModelSettings.from_json(h5.attrs[SETTINGS_ATTR]).variant
    if VARIANT_ATTR not in h5.attrs:
        return None
    return UnetVariant(**json.loads(h5.attrs[VARIANT_ATTR])).relative_to("vgg")  # caffe, as VGG16's and ResNet50's


def settings_for(network: Network, variant: UnetVariant, class_names, bands: Bands, scale: Scale) -> ModelSettings:
    """The ModelSettings of `network` built as `variant`, for images of `bands` met at `scale`."""
    return ModelSettings(
        model=network.model,
        backbone=network.backbone,
        num_classes=network.num_classes,
        input_shape=tuple(network.input_shape),
        variant=variant,
        class_names=tuple(class_names),
        scale_mode=scale.mode,
        image_scale=scale.image_scale,
        bands=bands,
        head=network.head,
    )


@dataclass(frozen=True)
class EpochFiles:
    """The weights files a run writes in save_dir at each epoch's end: last_epoch_weights; best_epoch_weights and
    best_epoch_weights.json when the epoch is the best so far; every save_period epochs a copy named by the epoch
    and its losses. The last file is written once and copied."""

    save_dir: str
    settings: ModelSettings
    save_period: int

    def path(self, name: str) -> str:
        return os.path.join(self.save_dir, f"{name}.weights.h5")

    def write(self, model, epoch: int, best: dict | None, row: dict) -> None:
        """Epoch `epoch`'s files; best: its {"monitor", "value", "epoch"} when it is the best, else None; row: its
        history row (loss, val_loss)."""
        last = self.path("last_epoch_weights")
        save_weights(model, last, self.settings, epoch)
        if best is not None:
            copy_weights(last, self.path("best_epoch_weights"))
            write_json(os.path.join(self.save_dir, "best_epoch_weights.json"), best)
        if epoch % self.save_period == 0:
            validated = f"-val_loss{row['val_loss']:.3f}" if row["val_loss"] else ""  # none between val passes
            name = f"ep{epoch:03d}-loss{row['loss']:.3f}{validated}"
            copy_weights(last, self.path(name))

    def unwritten(self, epoch: int, best_epoch) -> tuple:
        """(last missing, best missing): whether a kill stopped epoch `epoch`'s last_epoch_weights (and its
        best_epoch_weights, when best_epoch is that epoch) from being written."""
        missing_last = recorded_epoch(self.path("last_epoch_weights")) != epoch
        return missing_last, best_epoch == epoch and recorded_epoch(self.path("best_epoch_weights")) != epoch
