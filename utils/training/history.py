"""A run's history as files in its run folder: epoch_loss.txt, epoch_val_loss.txt, epoch_miou.txt, history.csv
and the loss and mIoU curves, written anew from the rows of every epoch so far (LossHistory in utils/callbacks.py
keeps the rows; the CheckpointSaver has them written after each epoch's weights)."""

import csv
import datetime
import io
import os

import numpy as np
from matplotlib.figure import Figure

from utils.files.atomic import write_atomically, write_text


def smooth(values, window: int = 5) -> np.ndarray:
    """Centred moving average with edge padding, the same length as `values`."""
    values = np.asarray(values, dtype=float)
    window = min(window, len(values)) // 2 * 2 + 1
    padded = np.pad(values, window // 2, mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def plot_curves(path: str, curves: dict, ylabel: str) -> None:
    """Saves a PNG with each curve ({name: (epochs, values)}) raw and, from 3 points on, smoothed beside it."""
    figure = Figure(figsize=(7, 4.5))  # no pyplot: no display, no global state
    axis = figure.subplots()
    for (name, (epochs, values)), colour in zip(curves.items(), ["tab:red", "tab:blue", "tab:green"]):
        axis.plot(epochs, values, color=colour, linewidth=2, label=name)
        if len(values) >= 3:
            axis.plot(epochs, smooth(values), "--", color=colour, linewidth=1.5, label=f"smoothed {name}")
    axis.set(xlabel="epoch", ylabel=ylabel)
    axis.grid(True, alpha=0.4)
    axis.legend(loc="best")
    figure.tight_layout()
    write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=100), ".png")


def new_run_dir(save_dir: str) -> str:
    """A new run folder in save_dir, named by the time: loss_<date>."""
    return os.path.join(save_dir, f"loss_{datetime.datetime.now().strftime('%Y_%m_%d_%H_%M_%S')}")


def write_history(run_dir: str, rows: list) -> None:
    """Writes every file of the run folder anew from the rows ({"epoch", "loss", "val_loss", "val_miou",
    "learning_rate"} each)."""
    for key, file_name in [("loss", "epoch_loss"), ("val_loss", "epoch_val_loss"), ("val_miou", "epoch_miou")]:
        values = [row[key] for row in rows if row[key] is not None]
        if values:
            write_text(os.path.join(run_dir, f"{file_name}.txt"), "".join(f"{v}\n" for v in values))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(os.path.join(run_dir, "history.csv"), table.getvalue())
    plot_history(run_dir, rows)


def curve_of(rows: list, key: str) -> tuple:
    """(epochs, values) of the rows that have a value for key: the val passes run every eval_period epochs."""
    kept = [row for row in rows if row[key] is not None]
    return [row["epoch"] for row in kept], [row[key] for row in kept]


def plot_history(run_dir: str, rows: list) -> None:
    """epoch_loss.png, and epoch_miou.png when some epoch was evaluated."""
    losses = {key: curve_of(rows, key) for key in ("loss", "val_loss")}
    plot_curves(os.path.join(run_dir, "epoch_loss.png"), {k: c for k, c in losses.items() if c[0]}, "loss")
    epochs, miou = curve_of(rows, "val_miou")
    if epochs:
        plot_curves(os.path.join(run_dir, "epoch_miou.png"), {"val mIoU": (epochs, miou)}, "mIoU (%)")
