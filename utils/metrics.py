"""Segmentation metrics from one confusion matrix (rows = ground truth, columns = prediction)."""

import cv2
import numpy as np
from tqdm import tqdm

from utils.files.images import IGNORE_LABEL
from utils.multilabel import label_matrices


def confusion_matrix(label: np.ndarray, prediction: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (true class, predicted class) pairs; pixels labelled IGNORE_LABEL are left out.

    Args:
        label: int array of ground-truth ids, any shape.
        prediction: int array of predicted ids, same shape.
        num_classes: C.

    Returns:
        int64 (C, C): entry [t, p] counts pixels of class t predicted as p.
    """
    label, prediction = np.asarray(label).ravel(), np.asarray(prediction).ravel()
    valid = label != IGNORE_LABEL
    pairs = label[valid].astype(np.int64) * num_classes + prediction[valid]
    return np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


def _ratio(numerator, denominator):
    """numerator / denominator, NaN where the denominator is 0 (a class absent from both)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def per_class_iou(matrix: np.ndarray) -> np.ndarray:
    """IoU_c = TP / (TP + FP + FN); NaN for a class that is neither labelled nor predicted."""
    true_positive = np.diag(matrix)
    return _ratio(true_positive, matrix.sum(0) + matrix.sum(1) - true_positive)


def per_class_recall(matrix: np.ndarray) -> np.ndarray:
    """Recall (per-class pixel accuracy, PA) = TP / (TP + FN); NaN for an unlabelled class."""
    return _ratio(np.diag(matrix), matrix.sum(1))


def per_class_precision(matrix: np.ndarray) -> np.ndarray:
    """Precision = TP / (TP + FP); NaN for a class never predicted."""
    return _ratio(np.diag(matrix), matrix.sum(0))


def per_class_dice(matrix: np.ndarray) -> np.ndarray:
    """Dice = F1 = 2 TP / (2 TP + FP + FN) = 2 IoU / (1 + IoU); NaN for a class neither labelled nor predicted."""
    true_positive = np.diag(matrix)
    return _ratio(2 * true_positive, matrix.sum(0) + matrix.sum(1))


def frequency_weighted_iou(matrix: np.ndarray) -> float:
    """fwIoU = sum_c (label pixels of c / all label pixels) * IoU_c (Long et al. 2015): classes weigh by their area."""
    frequency = matrix.sum(1) / max(matrix.sum(), 1)
    return float(np.nansum(frequency * per_class_iou(matrix)))


def normalised_confusion(matrix: np.ndarray) -> np.ndarray:
    """float (C, C): each true class's row divided by its label pixels (rows sum to 1; 0 for an unlabelled class)."""
    rows = matrix.sum(1, keepdims=True)
    return np.where(rows > 0, matrix / np.maximum(rows, 1), 0.0)


def pixel_accuracy(matrix: np.ndarray) -> float:
    """Share of counted pixels whose class is right."""
    return float(np.diag(matrix).sum() / max(matrix.sum(), 1))


def nan_mean(values) -> float:
    """Mean over the defined (non-NaN) values; NaN when there are none."""
    values = np.asarray(values, dtype=float)
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def mean_iou(matrix: np.ndarray) -> float:
    """mIoU: the mean of per-class IoU over the classes present in labels or predictions."""
    return nan_mean(per_class_iou(matrix))


def labelwise(figure, matrix: np.ndarray, multilabel: int = 0) -> np.ndarray:
    """A per-class figure (per_class_iou, ...) of the matrix; with multilabel > 0 (that many overlapping classes,
    the matrix counting their packed sets: utils/multilabel.py), each class's figure of its own yes/no matrix."""
    if not multilabel:
        return figure(matrix)
    return np.array([figure(binary)[1] for binary in label_matrices(matrix, multilabel)])


def class_iou(matrix: np.ndarray, multilabel: int = 0) -> np.ndarray:
    """Per-class IoU (labelwise); its nan_mean is the mIoU."""
    return labelwise(per_class_iou, matrix, multilabel)


def surface(mask: np.ndarray) -> np.ndarray:
    """bool (H, W): the mask's pixels with a 4-neighbour outside it (the image's edge counts as outside)."""
    mask = mask.astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return (mask > 0) & (cv2.erode(mask, cross, borderType=cv2.BORDER_CONSTANT, borderValue=0) == 0)


def hausdorff95(truth: np.ndarray, predicted: np.ndarray) -> float:
    """HD95 in pixels between two masks, as MONAI and MetricsReloaded compute it: the 95th percentile of the
    distances from each surface pixel of one mask to the other's surface, the larger of the two directions.

    Args:
        truth, predicted: bool (H, W), one class's pixels in the label and in the prediction.

    Returns:
        NaN when the label has none of the class (nothing to find), inf when only the prediction has none.
    """
    if not truth.any():
        return float("nan")
    if not predicted.any():
        return float("inf")
    truth_surface, predicted_surface = surface(truth), surface(predicted)
    directed = []
    for source, target in ((truth_surface, predicted_surface), (predicted_surface, truth_surface)):
        # Distance of every pixel to the target's surface (distanceTransform: to the nearest zero pixel).
        distance = cv2.distanceTransform((~target).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        directed.append(np.percentile(distance[source], 95))
    return float(max(directed))


def evaluate_confusion(
    segment, eval_dataset, num_classes: int, num_batches=None, desc="mIoU", on_batch=None
) -> np.ndarray:
    """Confusion matrix (C, C) over a dataset from prediction/inputs.build_eval_dataset.

    Args:
        segment: a prediction path's masks (utils/prediction/path.py).
        on_batch: called with each batch as numpy arrays (images, labels, boxes, sizes, masks), or None.
    """
    matrix = np.zeros((num_classes, num_classes), np.int64)
    for images, labels, boxes, sizes in tqdm(eval_dataset, total=num_batches, desc=desc, unit="batch", leave=False):
        masks = np.asarray(segment(images, boxes, sizes))
        labels, sizes = labels.numpy(), sizes.numpy()
        for mask, label, (height, width) in zip(masks, labels, sizes):
            matrix += confusion_matrix(label[:height, :width], mask[:height, :width], num_classes)
        if on_batch:
            on_batch(images.numpy(), labels, boxes.numpy(), sizes, masks)
    return matrix
