"""Checkpoint files: the one module that writes train.py's weights files and reads what they record.

Two kinds, both HDF5 `.weights.h5` files written atomically (utils/atomic.py):
- weights files (best_epoch_weights, last_epoch_weights, ep...): the network's weights and, as an attribute,
  the ModelSettings that describe it, so that prediction needs no settings typed in again;
- resumable checkpoints (resume_epoch012.weights.h5): the weights, the optimizer's state and, as attributes,
  the settings and the run's state (epoch, config, best value, history, dropout's RNG): all that
  `train.py --resume` needs to continue exactly as an uninterrupted run would.
"""

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field

import h5py
import keras
import numpy as np

from nets.unet import UnetVariant, model_variant
from utils.atomic import check_free_space, variables_bytes, write_atomically
from utils.bands import Bands
from utils.scale import resolve_scale_mode

SETTINGS_ATTR = "unet_settings"  # ModelSettings, JSON
STATE_ATTR = "train_state"  # a resumable checkpoint's run state, JSON
OPTIMIZER_GROUP = "optimizer_state"  # a resumable checkpoint's optimizer variables, by index
EPOCH_ATTR = "epoch"  # the epoch a weights file holds the end of
VARIANT_ATTR = "unet_variant"  # files of this repo written before SETTINGS_ATTR recorded the variant alone
RESUMABLE = re.compile(r"^resume_epoch(\d+)\.weights\.h5$")
KEEP_RESUMABLE = 2  # the latest resumable checkpoint and the one before it, as a fallback


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
    bands: Bands = Bands()  # the images' band count, sample type and ranges (utils/bands.py)
    head: str = "softmax"  # softmax | sigmoid (one output for 2 classes: nets/heads.py)

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


@dataclass
class RunState:
    """Where a run is, as a resumable checkpoint records it."""

    epoch: int  # epochs completed
    config: dict  # train.py's TrainConfig of the run, as a dict
    run_dir: str  # the run folder (history, curves, TensorBoard)
    history: list = field(default_factory=list)  # one row per completed epoch
    best: dict = field(default_factory=dict)  # {"monitor", "value", "epoch"} of best_epoch_weights
    seed_generators: list = field(default_factory=list)  # dropout's RNG states, in the model's order
    watch: dict = field(default_factory=dict)  # early stopping's and the plateau's state (utils/stopping.py)


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


def seed_generators(model) -> list:
    """The state variables of the model's RNGs (dropout's), in the model's order (their paths are not unique)."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def restore_seed_generators(model, path: str) -> None:
    """Sets the model's RNGs (dropout's) to the states a resumable checkpoint recorded."""
    with h5py.File(path, "r") as h5:
        states = json.loads(h5.attrs[STATE_ATTR]).get("seed_generators", [])
    for variable, value in zip(seed_generators(model), states):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def resumable_path(save_dir: str, epoch: int) -> str:
    return os.path.join(save_dir, f"resume_epoch{epoch:03d}.weights.h5")


def save_resumable(model, save_dir: str, settings: ModelSettings, state: RunState) -> str:
    """Writes a resumable checkpoint of the compiled model (weights and optimizer state) with the settings and
    the run state, atomically, then removes all but the KEEP_RESUMABLE newest. Returns its path."""
    state.seed_generators = [v.numpy().tolist() for v in seed_generators(model)]
    path = resumable_path(save_dir, state.epoch)
    optimizer_variables = model.optimizer.variables if model.optimizer else []
    check_free_space(save_dir, variables_bytes(model.weights) + variables_bytes(optimizer_variables), path)

    def write(temporary):
        # The weights as a weights file holds them, and the optimizer's variables by their order. Not
        # model.save_weights of the compiled model: it saves the metrics too, whose reading under
        # MultiWorkerMirroredStrategy is a collective that only the chief would join.
        keras.Model(model.inputs, model.outputs, name=model.name).save_weights(temporary, overwrite=True)
        with h5py.File(temporary, "a") as h5:
            group = h5.create_group(OPTIMIZER_GROUP)
            for index, variable in enumerate(model.optimizer.variables):
                group.create_dataset(str(index), data=keras.ops.convert_to_numpy(variable))
            h5.attrs[SETTINGS_ATTR] = settings.to_json()
            h5.attrs[STATE_ATTR] = json.dumps(asdict(state))

    write_atomically(path, write, ".weights.h5")
    for old in resumable_checkpoints(save_dir)[KEEP_RESUMABLE:]:
        os.remove(old)
    return path


def resumable_checkpoints(save_dir: str) -> list:
    """The resumable checkpoints in save_dir, newest (highest epoch) first."""
    names = [n for n in (os.listdir(save_dir) if os.path.isdir(save_dir) else []) if RESUMABLE.match(n)]
    names.sort(key=lambda n: int(RESUMABLE.match(n).group(1)), reverse=True)
    return [os.path.join(save_dir, n) for n in names]


def read_state(path: str) -> RunState:
    """The run state of a resumable checkpoint; ValueError naming the file when it is not one or is damaged."""
    try:
        with h5py.File(path, "r") as h5:
            if STATE_ATTR not in h5.attrs:
                raise ValueError(
                    f"{path}: a weights file, not a resumable checkpoint (it holds no run state). --resume takes a "
                    "save_dir or a resume_epoch*.weights.h5 file; to start from these weights, use --model_path."
                )
            return RunState(**json.loads(h5.attrs[STATE_ATTR]))
    except OSError as error:
        raise ValueError(f"{path}: not a readable checkpoint ({error}); it is damaged or incomplete.") from None


def find_resumable(resume: str):
    """The checkpoint `--resume` means: a file, or the newest readable one in a save_dir (a damaged newest one
    is reported and the one before it used).

    Returns:
        (path, RunState).
    """
    if os.path.isfile(resume):
        return resume, read_state(resume)
    candidates = resumable_checkpoints(resume)
    if not candidates:
        raise ValueError(
            f"resume={resume!r}: no resumable checkpoint there (resume_epoch*.weights.h5). Expected the save_dir of "
            "a run of this version of train.py, or one of those files."
        )
    problems = []
    for path in candidates:
        try:
            return path, read_state(path)
        except ValueError as error:
            problems.append(str(error))
            print(f"Warning: {error} Trying the one before it.")
    raise ValueError(f"No readable resumable checkpoint in {resume}: " + " ".join(problems))


def load_optimizer_state(model, path: str) -> None:
    """Fills the compiled model's optimizer (built here for the phase's trainable variables) from a resumable
    checkpoint of the same phase: Adam's moments and step count, SGD's momentum, the loss scale."""
    if not model.optimizer.built:  # building twice would add a LossScaleOptimizer's variables twice
        model.optimizer.build(model.trainable_variables)
    variables = model.optimizer.variables
    with h5py.File(path, "r") as h5:
        stored = h5[OPTIMIZER_GROUP]
        shapes = [tuple(stored[str(i)].shape) for i in range(len(stored))]
        if shapes != [tuple(v.shape) for v in variables]:
            raise ValueError(
                f"{path}: its optimizer state ({len(shapes)} variables) does not fit this run's optimizer "
                f"({len(variables)}): the checkpoint is from another network or optimizer."
            )
        for index, variable in enumerate(variables):
            variable.assign(stored[str(index)][()])


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


def settings_for(model, config, class_names, bands: Bands) -> ModelSettings:
    """The ModelSettings of a model built from train.py's config for images of `bands`."""
    return ModelSettings(
        model=config.model,
        backbone=config.backbone,
        num_classes=config.num_classes,
        input_shape=tuple(config.input_shape),
        variant=model_variant(model),
        class_names=tuple(class_names),
        scale_mode=config.scale_mode,
        image_scale=config.image_scale,
        bands=bands,
        head=config.head,
    )
