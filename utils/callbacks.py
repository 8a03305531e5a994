"""Training callbacks: validation mIoU, loss/mIoU curves and history, checkpoints."""

import csv
import datetime
import io
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from PIL import Image

from utils.atomic import deferred_interrupt, write_atomically, write_json, write_text
from utils.bands import Bands, display_image
from utils.checkpoint import RunState, copy_weights, recorded_epoch, save_resumable, save_weights
from utils.images import IGNORE_LABEL
from utils.metrics import evaluate_confusion, mean_iou, per_class_iou
from utils.prediction.path import segment_function
from utils.scale import Scale
from utils.stopping import is_better


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
    write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=100), ".png")


class ValImages:
    """The first `count` val images of each evaluation, written to TensorBoard (its Images tab) as one strip each:
    image | label | prediction, the two in class colours (ignored label pixels grey), the longer side TILE px.

    It takes the batches the evaluation has already predicted: no prediction of its own.
    """

    TILE = 256

    def __init__(self, count: int, log_dir: str, bands: Bands, colours: np.ndarray):
        self.count, self.bands, self.colours = count, bands, colours
        self.writer = tf.summary.create_file_writer(log_dir) if count else None
        self.strips, self.seconds = [], 0.0

    def collect(self, canvases, labels, boxes, sizes, masks) -> None:
        """Keeps strips of a predicted batch until `count` are held (evaluate_confusion's on_batch)."""
        started = time.perf_counter()
        for canvas, label, box, (height, width), mask in zip(canvases, labels, boxes, sizes, masks):
            if len(self.strips) >= self.count:
                break
            top, left, box_height, box_width = box
            image = display_image(canvas[top : top + box_height, left : left + box_width], self.bands)
            image = np.asarray(Image.fromarray(image).resize((int(width), int(height)), Image.BILINEAR))
            label = label[:height, :width]
            label_colours = np.where(
                (label == IGNORE_LABEL)[..., None], 128, self.colours[np.minimum(label, len(self.colours) - 1)]
            )
            strip = np.concatenate([image, label_colours.astype(np.uint8), self.colours[mask[:height, :width]]], axis=1)
            scale = self.TILE / max(height, width)
            size = (max(1, round(strip.shape[1] * scale)), max(1, round(strip.shape[0] * scale)))
            self.strips.append(np.asarray(Image.fromarray(strip).resize(size, Image.NEAREST)))
        self.seconds += time.perf_counter() - started

    def write(self, epoch: int) -> float:
        """Writes the held strips at step `epoch` and forgets them; returns the seconds they took (collecting too)."""
        started = time.perf_counter()
        with self.writer.as_default():
            for index, strip in enumerate(self.strips):
                tf.summary.image(f"val_image_{index}", strip[None], step=epoch)
        self.writer.flush()
        seconds, self.strips, self.seconds = self.seconds + time.perf_counter() - started, [], 0.0
        return seconds


class EvalCallback(keras.callbacks.Callback):
    """Every `eval_period` epochs (and at the last), val mIoU at original resolution as get_miou.py computes it,
    and (with `images`) the first val images to TensorBoard (ValImages).

    Puts `val_miou` (percent) into the epoch logs for the callbacks after it.
    """

    def __init__(self, eval_dataset, num_batches: int, num_classes: int, periods: tuple, scale: Scale, images=None):
        """periods: (eval_period, total epochs); scale: the prediction path's scale mode; images: a ValImages."""
        super().__init__()
        self.eval_dataset, self.num_batches, self.num_classes = eval_dataset, num_batches, num_classes
        self.eval_period, self.total_epochs = periods
        self.scale, self.segment, self.images = scale, None, images

    def set_model(self, model):
        super().set_model(model)
        self.segment = segment_function(model, self.scale)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.eval_period and epoch + 1 != self.total_epochs:
            return
        collect = self.images.collect if self.images and self.images.count else None
        matrix = evaluate_confusion(
            self.segment, self.eval_dataset, self.num_classes, self.num_batches, on_batch=collect
        )
        logs["val_miou"] = 100 * mean_iou(matrix)
        per_class = " ".join(f"{100 * iou:.1f}" for iou in per_class_iou(matrix))
        drawn = ""
        if collect:
            count, seconds = len(self.images.strips), self.images.write(epoch + 1)
            share = seconds / (time.perf_counter() - self.epoch_started)
            drawn = f"; {count} val images to TensorBoard in {seconds:.2f} s ({share:.1%} of the epoch)"
        print(f"Epoch {epoch + 1}: val mIoU {logs['val_miou']:.2f} (per class: {per_class}){drawn}")


class LossHistory(keras.callbacks.Callback):
    """One row per epoch (loss, val_loss, val_mIoU, learning rate), and the run folder's files made from them:
    epoch_loss.txt, epoch_val_loss.txt, epoch_miou.txt, history.csv and the curves.

    on_epoch_end only records the row; the CheckpointSaver writes the files after the epoch's checkpoint, so
    the history never runs ahead of the weights. A resumed run starts from the checkpoint's rows.
    """

    def __init__(self, run_dir: str, rows=()):
        super().__init__()
        self.run_dir, self.rows = run_dir, list(rows)
        os.makedirs(self.run_dir, exist_ok=True)

    @staticmethod
    def new_run_dir(save_dir: str) -> str:
        return os.path.join(save_dir, f"loss_{datetime.datetime.now().strftime('%Y_%m_%d_%H_%M_%S')}")

    def on_epoch_end(self, epoch, logs=None):
        learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": epoch + 1, "loss": logs.get("loss"), "val_loss": logs.get("val_loss")}
        row.update({"val_miou": logs.get("val_miou"), "learning_rate": learning_rate})
        self.rows.append(row)

    def write(self) -> None:
        """Writes every file of the run folder anew from the rows."""
        for key, file_name in [("loss", "epoch_loss"), ("val_loss", "epoch_val_loss"), ("val_miou", "epoch_miou")]:
            values = [row[key] for row in self.rows if row[key] is not None]
            if values:
                write_text(os.path.join(self.run_dir, f"{file_name}.txt"), "".join(f"{v}\n" for v in values))
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=list(self.rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(os.path.join(self.run_dir, "history.csv"), table.getvalue())
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
    """At each epoch's end, in this order: the resumable checkpoint (the commit point: a run resumes from the newest
    one), last_epoch_weights, best_epoch_weights on improvement (its value in best_epoch_weights.json), a named
    file every save_period epochs, then the history files. Every file is written atomically, and Ctrl-C waits for
    the whole sequence. A kill in the middle leaves the resumable checkpoint whole; the files after it that it did
    not reach are written when the run resumes (repair), from the same weights.

    Args:
        run: (TrainConfig of the run as a dict, its ModelSettings).
        history: the LossHistory whose rows the checkpoint carries and whose files it writes.
        best: {"monitor", "value", "epoch"} so far ({} for a new run).
        resumed_epoch: the epoch a resumed run starts after (0 for a new run): its files are repaired first.
        watch: the run's utils.stopping.Watch, whose state the checkpoint carries (it acts before this callback).
    """

    def __init__(
        self, save_dir: str, save_period: int, monitor: str, run, history, best: dict, resumed_epoch=0, watch=None
    ):
        super().__init__()
        self.watch = watch
        self.save_dir, self.save_period, self.monitor = save_dir, save_period, monitor
        self.config, self.settings = run
        self.history, self.best = history, dict(best) if best.get("monitor") == monitor else {}
        self.resumed_epoch = resumed_epoch

    def path(self, name: str) -> str:
        return os.path.join(self.save_dir, f"{name}.weights.h5")

    def improved(self, value) -> bool:
        return value is not None and is_better(self.monitor, value, self.best.get("value"))

    def on_train_begin(self, logs=None):
        if self.resumed_epoch:  # once, at the first phase of a resumed run: the model holds the checkpoint's weights
            self.repair(self.resumed_epoch)
            self.resumed_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        with deferred_interrupt():  # Ctrl-C lands after the epoch's files are all written, never between them
            value = logs.get(self.monitor)
            improved = self.improved(value)
            if improved:
                self.best = {"monitor": self.monitor, "value": float(value), "epoch": epoch + 1}
                print(f"Epoch {epoch + 1}: {self.monitor} improved to {value:.4f}, saving best_epoch_weights")
            state = RunState(epoch + 1, self.config, self.history.run_dir, self.history.rows, self.best)
            state.watch = self.watch.state_dict() if self.watch else {}
            writing = time.perf_counter()
            save_resumable(self.model, self.save_dir, self.settings, state)
            seconds = time.perf_counter() - writing
            share = seconds / (time.perf_counter() - self.epoch_started)
            print(f"Epoch {epoch + 1}: resumable checkpoint written in {seconds:.2f} s ({share:.1%} of the epoch)")
            self.write_weights(epoch + 1, improved)
            self.history.write()

    def write_weights(self, epoch: int, best: bool) -> None:
        """last_epoch_weights, best_epoch_weights (when best) and the save_period file of `epoch`."""
        last = self.path("last_epoch_weights")
        save_weights(self.model, last, self.settings, epoch)
        if best:  # the same file's contents: copied
            copy_weights(last, self.path("best_epoch_weights"))
            write_json(os.path.join(self.save_dir, "best_epoch_weights.json"), self.best)
        if epoch % self.save_period == 0:
            row = self.history.rows[-1]  # this epoch's (a run started with init_epoch has no earlier rows)
            name = f"ep{epoch:03d}-loss{row['loss']:.3f}-val_loss{row['val_loss'] or math.nan:.3f}"
            copy_weights(last, self.path(name))

    def repair(self, epoch: int) -> None:
        """Writes the weights files of the checkpoint's epoch that a kill stopped before they were written."""
        missing_last = recorded_epoch(self.path("last_epoch_weights")) != epoch
        missing_best = self.best.get("epoch") == epoch and recorded_epoch(self.path("best_epoch_weights")) != epoch
        if missing_last or missing_best:
            print(f"Writing the weights files of epoch {epoch} that the interrupted run did not finish.")
            self.write_weights(epoch, missing_best)
