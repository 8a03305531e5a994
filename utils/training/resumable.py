"""Resumable checkpoints (resume_epoch012.weights.h5): a weights file (utils/weights/checkpoint.py) plus the optimizer's
state and, as attributes, the settings and the run's state (epoch, config, best value, history, dropout's RNG):
all that `train.py --resume` needs to continue exactly as an uninterrupted run would. Written atomically; the
KEEP_RESUMABLE newest are kept.
"""

import json
import os
import re
from dataclasses import asdict, dataclass, field

import h5py
import keras
import numpy as np

from utils.files.atomic import check_free_space, variables_bytes, write_atomically
from utils.weights.checkpoint import SETTINGS_ATTR, ModelSettings

STATE_ATTR = "train_state"  # a resumable checkpoint's run state, JSON
OPTIMIZER_GROUP = "optimizer_state"  # a resumable checkpoint's optimizer variables, by index
RESUMABLE = re.compile(r"^resume_epoch(\d+)\.weights\.h5$")
KEEP_RESUMABLE = 2  # the latest resumable checkpoint and the one before it, as a fallback


@dataclass
class RunState:
    """Where a run is, as a resumable checkpoint records it."""

    epoch: int  # epochs completed
    config: dict  # train.py's TrainConfig of the run, as a dict
    run_dir: str  # the run folder (history, curves, TensorBoard)
    history: list = field(default_factory=list)  # one row per completed epoch
    best: dict = field(default_factory=dict)  # {"monitor", "value", "epoch"} of best_epoch_weights
    seed_generators: list = field(default_factory=list)  # dropout's RNG states, in the model's order
    watch: dict = field(default_factory=dict)  # early stopping's and the plateau's state (utils/training/stopping.py)


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
