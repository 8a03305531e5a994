"""Training callbacks: validation mIoU, loss/mIoU curves and history, checkpoints."""

import csv
import datetime
import json
import math
import os

import keras
import numpy as np
from matplotlib.figure import Figure

from utils.checkpoint import save_weights_atomically
from utils.metrics import evaluate_confusion, mean_iou, per_class_iou
from utils.prediction import segment_function


def smooth(values, window: int = 5) -> np.ndarray:
    """Centred moving average with edge padding, the same length as `values`."""
    values = np.asarray(values, dtype=float)
    window = min(window, len(values)) // 2 * 2 + 1
    padded = np.pad(values, window // 2, mode="edge")
    return np.convolve(padded, np.ones(window) / window, mode="valid")


def plot_curves(path: str, epochs, curves: dict, ylabel: str) -> None:
    """Saves a PNG with each curve raw and, from 3 points on, smoothed beside it."""
    figure = Figure(figsize=(7, 4.5))  # no pyplot: no display, no global state
    axis = figure.subplots()
    for (name, values), colour in zip(curves.items(), ["tab:red", "tab:blue", "tab:green"]):
        axis.plot(epochs, values, color=colour, linewidth=2, label=name)
        if len(values) >= 3:
            axis.plot(epochs, smooth(values), "--", color=colour, linewidth=1.5, label=f"smoothed {name}")
    axis.set(xlabel="epoch", ylabel=ylabel)
    axis.grid(True, alpha=0.4)
    axis.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


class EvalCallback(keras.callbacks.Callback):
    """Every `eval_period` epochs (and at the last), val mIoU at original resolution as get_miou.py computes it.

    Puts `val_miou` (percent) into the epoch logs for the callbacks after it.
    """

    def __init__(self, eval_dataset, num_batches: int, num_classes: int, eval_period: int, total_epochs: int):
        super().__init__()
        self.eval_dataset, self.num_batches, self.num_classes = eval_dataset, num_batches, num_classes
        self.eval_period, self.total_epochs = eval_period, total_epochs
        self.segment = None

    def set_model(self, model):
        super().set_model(model)
        self.segment = segment_function(model)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.eval_period and epoch + 1 != self.total_epochs:
            return
        matrix = evaluate_confusion(self.segment, self.eval_dataset, self.num_classes, self.num_batches)
        logs["val_miou"] = 100 * mean_iou(matrix)
        per_class = " ".join(f"{100 * iou:.1f}" for iou in per_class_iou(matrix))
        print(f"Epoch {epoch + 1}: val mIoU {logs['val_miou']:.2f} (per class: {per_class})")


class LossHistory(keras.callbacks.Callback):
    """Writes epoch_loss.txt, epoch_val_loss.txt, epoch_miou.txt, history.csv and the curves to a run folder."""

    def __init__(self, save_dir: str):
        super().__init__()
        stamp = datetime.datetime.now().strftime("%Y_%m_%d_%H_%M_%S")
        self.run_dir = os.path.join(save_dir, f"loss_{stamp}")
        os.makedirs(self.run_dir, exist_ok=True)
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": epoch + 1, "loss": logs.get("loss"), "val_loss": logs.get("val_loss")}
        row.update({"val_miou": logs.get("val_miou"), "learning_rate": learning_rate})
        self.rows.append(row)
        for key, file_name in [("loss", "epoch_loss"), ("val_loss", "epoch_val_loss"), ("val_miou", "epoch_miou")]:
            if row[key] is not None:
                with open(os.path.join(self.run_dir, f"{file_name}.txt"), "a") as f:
                    f.write(f"{row[key]}\n")
        with open(os.path.join(self.run_dir, "history.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
            writer.writerows(self.rows)
        self.plot()

    def plot(self):
        epochs = [row["epoch"] for row in self.rows]
        losses = {key: [row[key] for row in self.rows] for key in ("loss", "val_loss") if self.rows[0][key] is not None}
        plot_curves(os.path.join(self.run_dir, "epoch_loss.png"), epochs, losses, "loss")
        evaluated = [row for row in self.rows if row["val_miou"] is not None]
        if evaluated:
            miou = {"val mIoU": [row["val_miou"] for row in evaluated]}
            plot_curves(os.path.join(self.run_dir, "epoch_miou.png"), [r["epoch"] for r in evaluated], miou, "mIoU (%)")


class CheckpointSaver(keras.callbacks.Callback):
    """Saves last_epoch_weights every epoch, best_epoch_weights on improvement and a named file every save_period.

    The best value is kept in best_epoch_weights.json, so that a resumed run only replaces the best
    weights with better ones.
    """

    def __init__(self, save_dir: str, save_period: int, monitor: str, resume: bool):
        super().__init__()
        self.save_dir, self.save_period, self.monitor = save_dir, save_period, monitor
        self.sign = 1.0 if monitor == "val_miou" else -1.0  # higher mIoU, lower loss is better
        self.best = -math.inf
        self.best_record = os.path.join(save_dir, "best_epoch_weights.json")
        if resume and os.path.isfile(self.best_record):
            with open(self.best_record) as f:
                record = json.load(f)
            if record.get("monitor") == monitor:
                self.best = self.sign * record["value"]

    def path(self, name: str) -> str:
        return os.path.join(self.save_dir, f"{name}.weights.h5")

    def on_epoch_end(self, epoch, logs=None):
        save_weights_atomically(self.model, self.path("last_epoch_weights"))
        value = logs.get(self.monitor)
        if value is not None and self.sign * value > self.best:
            self.best = self.sign * value
            save_weights_atomically(self.model, self.path("best_epoch_weights"))
            with open(self.best_record, "w") as f:
                json.dump({"epoch": epoch + 1, "monitor": self.monitor, "value": value}, f)
            print(f"Epoch {epoch + 1}: {self.monitor} improved to {value:.4f}, saved best_epoch_weights")
        if (epoch + 1) % self.save_period == 0:
            name = f"ep{epoch + 1:03d}-loss{logs['loss']:.3f}-val_loss{logs.get('val_loss', math.nan):.3f}"
            save_weights_atomically(self.model, self.path(name))
