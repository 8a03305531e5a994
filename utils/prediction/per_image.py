"""get_miou.py's per-image figures: IoU, Dice and HD95 per image and class with each image's confusion rows, the
worst images first, and a picture of them (image | label | prediction), so that the images a model fails on can be
found and looked at."""

import csv
import io
import os
from dataclasses import dataclass

import numpy as np

from utils.files.atomic import write_atomically, write_text
from utils.files.bands import display_image, read_input, survey
from utils.files.images import IGNORE_LABEL, load_label
from utils.metrics import class_iou, confusion_matrix, hausdorff95, labelwise, nan_mean, per_class_dice
from utils.multilabel import label_matrices, label_values, set_names, unpack
from utils.visualize import contact_sheet, tile_picture

TILE = 256  # px, the longer side of each tile in worst_images.png


@dataclass(frozen=True)
class ImageScore:
    """One image's figures: its confusion matrix (C, C) (rows: label, columns: prediction) and HD95 per class, in
    pixels of the label (NaN where the label has none of the class; inf where only the prediction has none). With
    multilabel (that many overlapping classes), the matrix counts their packed sets (2**C), and the figures are
    each class's."""

    image_id: str
    matrix: np.ndarray
    hd95: np.ndarray
    multilabel: int = 0

    @property
    def miou(self) -> float:
        """The image's mIoU over the classes in its label or its prediction."""
        return nan_mean(class_iou(self.matrix, self.multilabel))


def score_image(image_id: str, label: np.ndarray, prediction: np.ndarray, num_classes: int, multilabel=0):
    """The ImageScore of one image from its label and prediction (H, W), ignored label pixels left out of both."""
    valid = label != IGNORE_LABEL
    if multilabel:
        truth, predicted = unpack(label, multilabel), unpack(prediction, multilabel)
        hd95 = [hausdorff95(truth[..., c], predicted[..., c] & valid) for c in range(multilabel)]
        num_classes = label_values(multilabel)
    else:
        hd95 = [hausdorff95(label == c, (prediction == c) & valid) for c in range(num_classes)]
    return ImageScore(image_id, confusion_matrix(label, prediction, num_classes), np.array(hd95), multilabel)


def worst_first(scores: list) -> list:
    """The scores sorted by the image's mIoU, lowest first; images without a defined mIoU last."""
    return sorted(scores, key=lambda score: (np.isnan(score.miou), score.miou, score.image_id))


def cell(value: float) -> str:
    """A figure as the CSV shows it: 4 decimals, empty where undefined, inf as inf."""
    return "" if np.isnan(value) else "inf" if np.isinf(value) else f"{value:.4f}"


def per_image_rows(scores: list, names) -> list:
    """The CSV's rows, a header first, then one per image and class, the worst images first. Each row holds its
    image's confusion row of the class (`as_<name>`: the class's label pixels predicted as each class), so the rows
    pooled are the dataset's confusion matrix."""
    multilabel = scores[0].multilabel if scores else 0  # then each class's yes/no matrix: no confusion row
    header = ["image", "image_mIoU", "class", "label_pixels", "predicted_pixels", "TP", "FP", "FN"]
    rows = [header + ["IoU", "Dice", "HD95_px"] + [f"as_{name}" for name in names if not multilabel]]
    for score in worst_first(scores):
        matrix, iou = score.matrix, class_iou(score.matrix, multilabel)
        dice = labelwise(per_class_dice, matrix, multilabel)
        binary = label_matrices(matrix, multilabel) if multilabel else None
        for c, name in enumerate(names):
            true_positive, label, predicted = (
                (binary[c, 1, 1], binary[c, 1].sum(), binary[c, :, 1].sum())
                if multilabel
                else (matrix[c, c], matrix[c].sum(), matrix[:, c].sum())
            )
            counts = [int(label), int(predicted), int(true_positive)]
            counts += [counts[1] - counts[2], counts[0] - counts[2]]
            figures = [cell(100 * iou[c]), cell(100 * dice[c]), cell(score.hd95[c])]
            confusion = [] if multilabel else list(map(int, matrix[c]))
            rows.append([score.image_id, cell(100 * score.miou), name, *counts, *figures, *confusion])
    return rows


def write_per_image_csv(path: str, scores: list, names) -> None:
    """per_image.csv: IoU and Dice (%) and HD95 (px) per image and class, the worst images first."""
    text = io.StringIO()
    csv.writer(text).writerows(per_image_rows(scores, names))
    write_text(path, text.getvalue())


def draw_worst(path: str, scores: list, paths: dict, prediction_dir: str, names, colours: np.ndarray) -> None:
    """A PNG of the given images, each as three tiles: image | label | prediction, the classes in their colours.

    Args:
        scores: the images to draw, in order (worst_first's first few).
        paths: image id -> (image path, label path); the predictions are prediction_dir/<id>.png.
    """
    bands = survey([paths[score.image_id][0] for score in scores])  # a picture's stretch, for any bit depth
    tiles = []
    for score in scores:
        image_path, label_path = paths[score.image_id]
        picture = display_image(read_input(image_path, bands), bands)
        label = load_label(label_path)
        prediction = load_label(os.path.join(prediction_dir, f"{score.image_id}.png"))
        tiles += [(score.image_id, tile_picture(picture, np.zeros_like(label), colours, TILE))]
        tiles += [("label", tile_picture(picture, label, colours, TILE))]
        tiles += [(f"prediction: mIoU {score.miou:.1%}", tile_picture(picture, prediction, colours, TILE))]
    title = f"The {len(scores)} images with the lowest mIoU: image | label | prediction"
    write_atomically(path, lambda temporary: contact_sheet(temporary, tiles, names, colours, title, 3), ".png")


def hd95_summary(values: np.ndarray) -> dict:
    """One class's HD95 over the images (NaN: the class is not in the image's label): on how many images it was
    found, their mean (px) over those the prediction found it in, and on how many the prediction missed it."""
    labelled = values[~np.isnan(values)]
    found = labelled[np.isfinite(labelled)]
    mean = round(float(found.mean()), 2) if found.size else None
    return {"images": int(labelled.size), "mean": mean, "missed": int(np.isinf(labelled).sum())}


def write_per_image(out_dir: str, scores: list, samples, names, count: int, colours: np.ndarray) -> dict:
    """per_image.csv and worst_images.png (the `count` lowest) in out_dir; returns summary.json's entries for them.

    Args:
        samples: (image path, label path) of each score's image, in the same order.
        colours: of each value a mask takes (visualize.value_colours).
    """
    write_per_image_csv(os.path.join(out_dir, "per_image.csv"), scores, names)
    worst = worst_first(scores)[:count]
    if worst:
        paths = {score.image_id: sample for score, sample in zip(scores, samples)}
        predictions = os.path.join(out_dir, "detection-results")
        legend = set_names(names) if worst[0].multilabel else names  # a multilabel mask's values: sets of classes
        draw_worst(os.path.join(out_dir, "worst_images.png"), worst, paths, predictions, legend, colours)
    hd95 = np.array([score.hd95 for score in scores]).reshape(len(scores), len(names))
    return {
        "worst_images": [{"image": score.image_id, "mIoU": round(100 * score.miou, 2)} for score in worst],
        "HD95_px": {name: hd95_summary(hd95[:, c]) for c, name in enumerate(names)},
    }


def format_per_image(summary: dict) -> str:
    """The worst images and each class's HD95, as get_miou.py prints them after the table."""
    worst = ", ".join(f"{entry['image']} ({entry['mIoU']:.2f})" for entry in summary["worst_images"])
    lines = [f"Lowest mIoU: {worst}"] if worst else []
    for name, hd95 in summary["HD95_px"].items():
        if hd95["images"]:
            mean = "-" if hd95["mean"] is None else f"{hd95['mean']:.2f} px"
            missed = f", missed on {hd95['missed']}" if hd95["missed"] else ""
            lines.append(f"HD95 {name}: {mean} (mean over {hd95['images']} images with it{missed})")
    return "\n".join(lines)
