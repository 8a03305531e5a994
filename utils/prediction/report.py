"""The figures of a confusion matrix as a table, bar charts, a CSV and summary.json (get_miou.py's outputs)."""

import csv
import io
import json
import math
import os

import numpy as np
from matplotlib.figure import Figure

from utils.files.atomic import write_atomically, write_text
from utils.metrics import (
    frequency_weighted_iou,
    labelwise,
    nan_mean,
    normalised_confusion,
    per_class_dice,
    per_class_iou,
    per_class_precision,
    per_class_recall,
    pixel_accuracy,
)
from utils.multilabel import label_matrices, set_names


def percent(value):
    """A fraction as a percentage rounded for reports; None for NaN (a class absent from labels and predictions)."""
    return None if math.isnan(value) else round(100 * float(value), 4)


def shown(value) -> str:
    """A percentage for a table or title: two decimals, '-' when undefined."""
    return "-" if value is None else f"{value:.2f}"


def summarize(matrix: np.ndarray, names, multilabel: int = 0) -> dict:
    """Per-class IoU, Dice (= F1), recall (PA) and precision, their means over the classes where they are defined,
    the frequency-weighted IoU and the pixel accuracy, all in percent. With multilabel (that many overlapping
    classes, the matrix counting their packed sets), each class's figures are of its own yes/no matrix, and the
    accuracy is the share of pixels whose whole set of classes is right."""
    iou, recall, precision, dice = (
        labelwise(figure, matrix, multilabel)
        for figure in (per_class_iou, per_class_recall, per_class_precision, per_class_dice)
    )
    if multilabel:  # each class's yes row and column: its label and predicted pixels
        binary = label_matrices(matrix, multilabel)
        label_pixels, predicted = binary[:, 1, :].sum(-1), binary[:, :, 1].sum(-1)
    else:
        label_pixels, predicted = matrix.sum(1), matrix.sum(0)
    frequency = label_pixels / max(label_pixels.sum(), 1)
    classes = [
        {
            "name": name,
            "IoU": percent(iou[c]),
            "Dice": percent(dice[c]),
            "recall": percent(recall[c]),
            "precision": percent(precision[c]),
            "label_pixels": int(label_pixels[c]),
            "predicted_pixels": int(predicted[c]),
        }
        for c, name in enumerate(names)
    ]
    return {
        "mIoU": percent(nan_mean(iou)),
        "mDice": percent(nan_mean(dice)),
        "fwIoU": percent(float(np.nansum(frequency * iou)) if multilabel else frequency_weighted_iou(matrix)),
        "mPA": percent(nan_mean(recall)),
        "mPrecision": percent(nan_mean(precision)),
        "accuracy": percent(pixel_accuracy(matrix)),
        "classes": classes,
    }


def format_summary(summary: dict) -> str:
    """The summary as a text table; '-' where a figure is undefined (the class is absent)."""
    width = max(10, *(len(c["name"]) for c in summary["classes"]))
    columns = ["IoU", "Dice", "recall", "precision"]

    def cell(value):
        return f"{shown(value):>10}"

    lines = [f"{'class':<{width}}{''.join(f'{c:>10}' for c in columns)}{'label pixels':>14}"]
    lines.append("-" * len(lines[0]))
    for c in summary["classes"]:
        lines.append(f"{c['name']:<{width}}{''.join(cell(c[k]) for k in columns)}{c['label_pixels']:>14d}")
    lines.append("-" * len(lines[0]))
    means = [summary["mIoU"], summary["mDice"], summary["mPA"], summary["mPrecision"]]
    lines.append(f"{'mean':<{width}}{''.join(cell(v) for v in means)}")
    lines.append(
        f"mIoU {shown(summary['mIoU'])}  mDice {shown(summary['mDice'])}  fwIoU {shown(summary['fwIoU'])}  "
        f"mPA {shown(summary['mPA'])}  accuracy {shown(summary['accuracy'])}"
    )
    return "\n".join(lines)


def plot_bars(path: str, names, values, title: str, xlabel: str) -> None:
    """A horizontal bar per class with its value written beside it ('-' for an absent class)."""
    figure = Figure(figsize=(8, 1.2 + 0.4 * len(names)))  # no pyplot: no display, no global state
    axis = figure.subplots()
    widths = [0 if v is None else v for v in values]
    bars = axis.barh(range(len(names)), widths, color="royalblue")
    for bar, value in zip(bars, values):
        axis.text(bar.get_width() + 0.5, bar.get_y() + bar.get_height() / 2, shown(value), va="center", fontsize=9)
    axis.set_yticks(range(len(names)), names)
    axis.invert_yaxis()  # first class on top
    axis.set(xlim=(0, 110), xlabel=xlabel, title=title)
    figure.tight_layout()
    write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"), ".png")


def plot_confusion(path: str, matrix: np.ndarray, names) -> None:
    """The row-normalised confusion matrix as a picture: true class down, predicted across, class names on both
    axes, each cell's share written in it up to 30 classes (the font shrinks with the classes)."""
    shares = normalised_confusion(matrix)
    count = len(names)
    side = min(4 + 0.45 * count, 24)
    figure = Figure(figsize=(side + 1.5, side))
    axis = figure.subplots()
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="share of the true class's pixels")
    font = max(5, min(10, 200 // max(count, 1)))
    axis.set_xticks(range(count), names, rotation=90, fontsize=font)
    axis.set_yticks(range(count), names, fontsize=font)
    axis.set(xlabel="predicted class", ylabel="true class", title="Confusion matrix (each row sums to 1)")
    if count <= 30:
        for (row, column), share in np.ndenumerate(shares):
            colour = "white" if share > 0.5 else "black"
            axis.text(column, row, f"{share:.2f}", ha="center", va="center", fontsize=font - 1, color=colour)
    figure.tight_layout()
    write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"), ".png")


def write_confusion_csv(path: str, matrix: np.ndarray, names) -> None:
    """Rows are the true classes, columns the predicted ones; the first row and column hold the names (atomic)."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["true \\ predicted", *names])
    for name, row in zip(names, matrix):
        writer.writerow([name, *map(int, row)])
    write_text(path, text.getvalue())


def write_report(out_dir: str, matrix: np.ndarray, names, details: dict, multilabel: int = 0) -> dict:
    """Writes mIoU.png, Dice.png, mPA.png, Recall.png, Precision.png, confusion_matrix.csv, confusion_matrix.png
    (row-normalised) and summary.json.

    Args:
        details: extra entries for summary.json (model, dataset, number of images).
        multilabel: that many overlapping classes (names), the matrix counting their sets (summarize).

    Returns:
        The summary written to summary.json.
    """
    os.makedirs(out_dir, exist_ok=True)
    summary = {**summarize(matrix, names, multilabel), **details}
    charts = [
        ("mIoU.png", "IoU", f"mIoU = {shown(summary['mIoU'])}%", "Intersection over Union (%)"),
        ("Dice.png", "Dice", f"mDice = {shown(summary['mDice'])}%", "Dice = F1 (%)"),
        ("mPA.png", "recall", f"mPA = {shown(summary['mPA'])}%", "Pixel accuracy per class (%)"),
        ("Recall.png", "recall", f"mRecall = {shown(summary['mPA'])}%", "Recall (%)"),
        ("Precision.png", "precision", f"mPrecision = {shown(summary['mPrecision'])}%", "Precision (%)"),
    ]
    for file_name, key, title, xlabel in charts:
        values = [c[key] for c in summary["classes"]]
        plot_bars(os.path.join(out_dir, file_name), names, values, title, xlabel)
    values = set_names(names) if multilabel else names  # a multilabel matrix's rows are sets of classes
    write_confusion_csv(os.path.join(out_dir, "confusion_matrix.csv"), matrix, values)
    plot_confusion(os.path.join(out_dir, "confusion_matrix.png"), matrix, values)
    write_text(os.path.join(out_dir, "summary.json"), json.dumps(summary, indent=2))
    return summary
