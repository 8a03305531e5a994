"""A run's folder and its continuation: what train.py checks before it writes into save_dir, and the settings a
resumed run takes from its checkpoint."""

import contextlib
import dataclasses
import json
import os
import socket
import time

from utils.files.atomic import check_writable, remove_stray_temporaries
from utils.training.resumable import resumable_checkpoints

# Settings that may change when a run is resumed: they change neither the network nor what an epoch computes.
# unfreeze_epoch extends (or shortens) the run, and with it the learning-rate schedule's end.
# early_stop_patience lets a run that early stopping ended train on.
RESUME_CHANGEABLE = ("unfreeze_epoch", "num_workers", "eval_period", "save_period", "train_gpu", "early_stop_patience")
# Files whose presence means that save_dir holds an earlier run.
RUN_FILES = ("best_epoch_weights.weights.h5", "last_epoch_weights.weights.h5")


LOCK_FILE = ".train.lock"  # in save_dir while a run writes there: its pid, host and start


@contextlib.contextmanager
def save_dir_lock(save_dir: str):
    """Holds save_dir for one run: a second train.py into the same folder at the same time is refused (its best
    weights and resume checkpoints would interleave with this run's, and its cleanup delete them). The lock file
    is created exclusively, removed when the run ends; one whose process has ended (a killed run) is taken over."""
    check_writable(save_dir, "save_dir", "logs/run2")  # the folder exists, and the lock can be written
    path = os.path.join(save_dir, LOCK_FILE)
    host = socket.gethostname()
    for _ in range(2):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            holder = read_lock(path)
            if holder.get("host") == host and not process_alive(holder.get("pid", 0)):
                os.remove(path)
                print(f"Took over {path}: its run (pid {holder.get('pid')}) has ended without removing it.")
                continue
            raise ValueError(
                f"save_dir={save_dir!r} is in use by another train.py run (pid {holder.get('pid')} on "
                f"{holder.get('host')}, started {holder.get('started')}): two runs in one folder would overwrite each "
                "other's weights and checkpoints. Train into another folder "
                f"(--save_dir {os.path.join(save_dir, 'run2')}), or wait for that run to end. If no such run exists, "
                f"remove {path}."
            ) from None
    else:
        raise ValueError(f"{path}: cannot take the run lock; remove it if no run is using {save_dir}.")
    with os.fdopen(descriptor, "w") as f:
        json.dump({"pid": os.getpid(), "host": host, "started": time.strftime("%Y-%m-%d %H:%M:%S")}, f)
    try:
        yield
    finally:
        if os.path.isfile(path) and read_lock(path).get("pid") == os.getpid():
            os.remove(path)


def read_lock(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}  # being written, or not ours: treated as held


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def prepare_save_dir(save_dir: str, continuing: bool) -> None:
    """Checks save_dir before the first epoch: it can be written, and a new run does not replace an earlier run's
    weights. Temporary files left by a killed write are removed (and named)."""
    check_writable(save_dir, "save_dir", "logs/run2")
    strays = remove_stray_temporaries(save_dir)
    if strays:
        print(f"Removed {len(strays)} temporary files left by an interrupted write: {', '.join(strays)}")
    earlier = resumable_checkpoints(save_dir)[:1] + [
        os.path.join(save_dir, name) for name in RUN_FILES if os.path.isfile(os.path.join(save_dir, name))
    ]
    if earlier and not continuing:
        raise ValueError(
            f"save_dir={save_dir!r} holds an earlier run ({os.path.basename(earlier[0])}), whose weights a new run "
            f"would replace. Resume it: python train.py --resume {save_dir}; or train anew into another folder: "
            f"--save_dir {os.path.join(save_dir, 'run2')} (or move the earlier run's files away first)."
        )


def resumed_config(config, state, given: set, save_dir: str):
    """The run's own settings (from its checkpoint's state) with the flags that may change on a resume.

    Args:
        config: the settings of this invocation (train.py's TrainConfig); given: the flags set explicitly.
        save_dir: where the checkpoint is: the run's folder, wherever it has moved to.

    Raises:
        ValueError: a flag that contradicts the run's settings and may not change, naming both values.
    """
    known = {f.name for f in dataclasses.fields(config)}
    run = type(config)(**{name: value for name, value in state.config.items() if name in known})
    run = dataclasses.replace(run, resume=config.resume, save_dir=save_dir, init_epoch=0)
    refused = [
        f"--{name} {getattr(config, name)} (the run has {getattr(run, name)})"
        for name in sorted(given - {"resume", "save_dir", "init_epoch", *RESUME_CHANGEABLE})
        if getattr(config, name) != getattr(run, name)
    ]
    if refused:
        raise ValueError(
            f"A resumed run keeps its settings, but {'; '.join(refused)}. Only {', '.join(RESUME_CHANGEABLE)} may "
            "change on --resume. To train with other settings, start a new run into another save_dir (with "
            "--model_path pointing at these weights to start from them)."
        )
    run = dataclasses.replace(run, **{name: getattr(config, name) for name in given & set(RESUME_CHANGEABLE)})
    check_not_stopped(run, state, save_dir)
    if state.epoch >= run.unfreeze_epoch:
        raise ValueError(
            f"The run in {save_dir} has completed its {state.epoch} epochs (unfreeze_epoch={run.unfreeze_epoch}). "
            f"To train it longer, resume with --unfreeze_epoch N, N > {state.epoch}."
        )
    return run


def check_not_stopped(run, state, save_dir: str) -> None:
    """Raises ValueError when early stopping ended the run and the patience given now is not larger (nor 0)."""
    stopped, stopped_with = state.watch.get("stopped", 0), state.config.get("early_stop_patience", 0)
    if stopped and run.early_stop_patience and run.early_stop_patience <= stopped_with:
        raise ValueError(
            f"The run in {save_dir} was ended by early stopping after epoch {stopped} (early_stop_patience="
            f"{stopped_with}; best value at epoch {state.watch.get('best_epoch')}). To train it on, resume with a "
            f"larger --early_stop_patience (> {stopped_with}), or 0 to switch early stopping off."
        )
    state.watch["stopped"] = 0  # the run goes on


def run_dir_of(state, save_dir: str) -> str:
    """The run folder the state names, inside save_dir wherever the run has moved to."""
    return os.path.join(save_dir, os.path.basename(os.path.normpath(state.run_dir)))
