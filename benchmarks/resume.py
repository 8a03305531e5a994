r"""Exact resume, measured: a straight train.py run against the same run killed with SIGKILL at chosen moments,
resumed with --resume after each kill, and finished. Prints the largest weight difference, whether the history
rows match, the final val mIoU of both, and the time and size of a resumable checkpoint.

    $ python benchmarks/resume.py --vocdevkit_path ../shared/datasets/membrane --num_classes 2 \
          --input_shape 256 256 --freeze_train false --unfreeze_epoch 10 --unfreeze_batch_size 2 \
          --moments epoch:3 val:5 write:7
    $ python benchmarks/resume.py --moments epoch:1 epoch:2 val:2 write:2 epoch:3 val:3 write:3 epoch:4 val:4 write:4

Moments: epoch:E kills after epoch E's first step (batch level), val:E while epoch E's val mIoU is computed,
write:E while a checkpoint file of epoch E is being written (a temporary file exists). After each kill, the run
resumes with --resume (or starts again when no epoch was complete). Exit status 1 when the runs differ.
"""

import csv
import glob
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils.config import run_main  # noqa: E402 (after the path to the repository is set)


@dataclass
class ResumeConfig:
    vocdevkit_path: str = "VOCdevkit"  # dataset root (the demo's when it is there)
    num_classes: int = 4  # as train.py
    model: str = "unet"  # as train.py
    model_path: str = "auto"  # as train.py
    input_shape: list[int] = field(default_factory=lambda: [64, 64])  # as train.py
    freeze_train: bool = True  # as train.py
    freeze_epoch: int = 2  # as train.py
    unfreeze_epoch: int = 4  # as train.py
    freeze_batch_size: int = 4  # as train.py
    unfreeze_batch_size: int = 4  # as train.py
    precision: str = "fp32"  # fp32: deterministic kernels, so the runs can match bit for bit
    moments: list[str] = field(default_factory=lambda: ["epoch:2", "write:2", "val:3"])  # kills (module docstring)
    work_dir: str = "resume_check"  # where the two runs write their save_dirs
    tolerance: float = 1e-5  # largest weight difference accepted


def train_flags(config: ResumeConfig) -> list:
    names = ["vocdevkit_path", "num_classes", "model", "model_path", "freeze_train", "freeze_epoch"]
    names += ["unfreeze_epoch", "freeze_batch_size", "unfreeze_batch_size", "precision"]
    flags = [item for name in names for item in (f"--{name}", str(getattr(config, name)))]
    return flags + ["--input_shape", *map(str, config.input_shape), "--save_period", "1000"]


def run_until(command: list, save_dir: str, moment: str):
    """Runs train.py; with a moment, SIGKILLs it there. Returns (exit status, output)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(process.stdout.fileno(), 65536), b"")))
    reader.start()
    kind, _, epoch = moment.partition(":")
    header, result = f"Epoch {epoch}/".encode(), f"Epoch {epoch}: val mIoU".encode()
    seen, temporaries = b"", os.path.join(glob.escape(save_dir), ".tmp-*")
    while moment and process.poll() is None:
        if kind == "write" and result in seen:  # epoch E's checkpoints come next: watch for their temporary files
            if glob.glob(temporaries):
                break
            continue
        seen = b"".join(chunks)
        if kind == "epoch" and header in seen and b"/step" in seen[seen.index(header) :]:
            break  # a step of the epoch is done: mid-epoch
        if kind == "val" and header in seen and b"mIoU:" in seen[seen.index(header) :]:
            break
        time.sleep(0.005)
    if moment and process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait()
    reader.join()
    return process.returncode, b"".join(chunks).decode(errors="replace")


def weights_of(path: str) -> dict:
    arrays = {}
    with h5py.File(path) as h5:
        h5["layers"].visititems(
            lambda name, item: arrays.setdefault(name, item[()]) if isinstance(item, h5py.Dataset) else None
        )
    return arrays


def history_of(save_dir: str) -> list:
    (path,) = glob.glob(os.path.join(glob.escape(save_dir), "loss_*", "history.csv"))
    with open(path) as f:
        return list(csv.DictReader(f))


def main(config: ResumeConfig) -> None:
    flags, python = train_flags(config), [sys.executable, "-u", os.path.join(ROOT, "train.py")]
    straight_dir, killed_dir = (os.path.abspath(os.path.join(config.work_dir, n)) for n in ("straight", "killed"))
    for folder in (straight_dir, killed_dir):
        if os.path.exists(folder):
            raise ValueError(f"{folder} exists: remove it, or set --work_dir to a new folder.")
    started = time.time()
    status, straight_output = run_until([*python, *flags, "--save_dir", straight_dir], straight_dir, "")
    if status:
        raise ValueError(f"the straight run failed:\n{straight_output[-3000:]}")
    straight_seconds = time.time() - started
    for moment in [*config.moments, ""]:
        resumable = glob.glob(os.path.join(glob.escape(killed_dir), "resume_epoch*.weights.h5"))
        how = ["--resume", killed_dir] if resumable else [*flags, "--save_dir", killed_dir]
        status, output = run_until([*python, *how], killed_dir, moment)
        said = [line for line in output.splitlines() if line.startswith(("Resuming", "Done:"))]
        start = "resumed" if resumable else "started anew (no complete epoch yet)"
        print(
            f"{moment or 'to the end':>12}: {start}, exit {status}{' (killed)' if status == -9 else ''}; "
            + "; ".join(said)
        )
        if not moment and status:
            raise ValueError(f"the resumed run failed:\n{output[-3000:]}")
    a, b = (
        weights_of(os.path.join(straight_dir, "last_epoch_weights.weights.h5")),
        weights_of(os.path.join(killed_dir, "last_epoch_weights.weights.h5")),
    )
    largest = max(float(np.abs(a[name] - b[name]).max()) for name in a)
    rows_a, rows_b = history_of(straight_dir), history_of(killed_dir)
    strays = glob.glob(os.path.join(glob.escape(killed_dir), ".tmp-*"))
    checkpoint = max(glob.glob(os.path.join(glob.escape(straight_dir), "resume_epoch*.weights.h5")))
    writes = [line.split(": ", 1)[1] for line in straight_output.splitlines() if "resumable checkpoint written" in line]
    print(f"largest weight difference: {largest:.3g} (tolerance {config.tolerance:g})")
    print(f"history rows: {'identical' if rows_a == rows_b else 'DIFFERENT'} ({len(rows_a)} and {len(rows_b)} epochs)")
    print(f"final val mIoU: straight {rows_a[-1]['val_miou']}, killed and resumed {rows_b[-1]['val_miou']}")
    print(f"temporary files left: {len(strays)}; straight run {straight_seconds / 60:.1f} min")
    size = os.path.getsize(checkpoint) / 2**20
    weights_size = os.path.getsize(os.path.join(straight_dir, "last_epoch_weights.weights.h5")) / 2**20
    print(f"resumable checkpoint {size:.1f} MiB, weights-only file {weights_size:.1f} MiB")
    print("straight run, each epoch's " + "; ".join(writes))
    if largest > config.tolerance or rows_a != rows_b or strays:
        sys.exit(1)


if __name__ == "__main__":
    run_main(main, ResumeConfig, __doc__)
