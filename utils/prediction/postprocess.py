"""Post-processing of predicted masks, chosen on validation as nnU-Net chooses it: per class, keep the largest region,
remove regions under an area, or fill the holes, each kept only where the class's IoU over the split rises and no
class's IoU falls. The choice is a small JSON file beside the weights file (`<weights>.postprocessing.json`), which
predict.py and get_miou.py apply, saying so.
"""

import json
import os
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from utils.files.atomic import write_json
from utils.metrics import confusion_matrix, per_class_iou
from utils.prediction.report import percent
from utils.weights.checkpoint import beside_weights

KINDS = ("largest", "min_area", "fill_holes")
AREA_FRACTIONS = (0.25, 0.5, 1.0)  # min_area's candidates: these times the 5th percentile of the class's train objects
SUFFIX = ".postprocessing.json"


@dataclass(frozen=True)
class Step:
    """One operation on one class: `largest` keeps its largest 8-connected region, `min_area` removes its regions
    of fewer than `area` pixels, `fill_holes` gives it the background regions it encloses. Removed pixels become
    background (class 0), as in nnU-Net."""

    kind: str
    class_id: int
    area: int = 0

    def describe(self, names) -> str:
        name = f"{self.class_id} ({names[self.class_id]})" if self.class_id < len(names) else str(self.class_id)
        return {
            "largest": f"keep the largest region of class {name}",
            "min_area": f"remove regions of class {name} under {self.area} px",
            "fill_holes": f"fill the holes in class {name}",
        }[self.kind]


def regions_of(mask: np.ndarray, connectivity: int = 8) -> tuple:
    """(count, labels (H, W) int32, areas (count,)) of the connected regions of a bool mask; region 0 is the rest."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=connectivity)
    return count, labels, stats[:, cv2.CC_STAT_AREA]


def apply_step(mask: np.ndarray, step: Step) -> np.ndarray:
    """The mask (H, W) class ids after one step (a new array)."""
    out = mask.copy()
    chosen = mask == step.class_id
    if step.kind == "fill_holes":
        # The regions of the rest (4-connected: the class's 8-connected outline closes them) that do not touch the
        # border are enclosed by the class; their background pixels become the class.
        _, labels, _ = regions_of(~chosen, connectivity=4)
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        out[(labels > 0) & ~np.isin(labels, border) & (mask == 0)] = step.class_id
        return out
    count, labels, areas = regions_of(chosen)
    if count <= 1:
        return out
    if step.kind == "largest":
        drop = np.arange(count) != 1 + int(np.argmax(areas[1:]))
    else:
        drop = areas < step.area
    drop[0] = False  # not a region of the class
    out[drop[labels]] = 0
    return out


@dataclass(frozen=True)
class PostProcessing:
    """The steps chosen, applied in order; none: the masks as predicted."""

    steps: tuple = ()

    def apply(self, mask: np.ndarray) -> np.ndarray:
        for step in self.steps:
            mask = apply_step(mask, step)
        return mask

    def describe(self, names) -> str:
        return "; ".join(step.describe(names) for step in self.steps) or "none (no step raised the IoU)"


def sidecar_path(weights_path: str) -> str:
    """Where a weights file's post-processing is recorded: beside it, its name + SUFFIX."""
    return beside_weights(weights_path, SUFFIX)


def read_postprocessing(weights_path: str):
    """(PostProcessing, the record's details) recorded beside the weights file, or None where there is none."""
    path = sidecar_path(weights_path)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
        steps = tuple(Step(s["kind"], int(s["class_id"]), int(s.get("area", 0))) for s in record["steps"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path}: not a post-processing record ({type(error).__name__}: {error}). Remove it, or choose again with "
            "get_miou.py --postprocess choose."
        ) from None
    if any(step.kind not in KINDS for step in steps):
        raise ValueError(
            f"{path}: unknown steps; expected {', '.join(KINDS)}. Choose again: get_miou.py --postprocess choose."
        )
    return PostProcessing(steps), record


def write_postprocessing(weights_path: str, chosen: PostProcessing, details: dict) -> str:
    """Records the choice beside the weights file (atomically); returns its path."""
    path = sidecar_path(weights_path)
    write_json(path, {"steps": [asdict(step) for step in chosen.steps], **details})
    return path


def split_iou(pairs, chosen: PostProcessing, num_classes: int) -> np.ndarray:
    """Per-class IoU (C,) over (label, mask) pairs, the masks post-processed by `chosen`."""
    matrix = sum(confusion_matrix(label, chosen.apply(mask), num_classes) for label, mask in pairs)
    return per_class_iou(matrix)


def candidates(class_id: int, object_area_p5: float) -> list:
    """The steps tried for a class, in two rounds of alternatives: removal (the largest region alone, or min_area at
    AREA_FRACTIONS of its train objects' 5th percentile area, 2 px or more), then the holes filled."""
    areas = sorted({int(round(object_area_p5 * f)) for f in AREA_FRACTIONS} - {0, 1})
    removal = [Step("largest", class_id)] + [Step("min_area", class_id, area) for area in areas]
    return [removal, [Step("fill_holes", class_id)]]


def better(trial: np.ndarray, current: np.ndarray, class_id: int) -> bool:
    """Whether the class's IoU rose and no class's fell (NaN, a class neither labelled nor predicted, is no fall)."""
    defined = ~np.isnan(current)
    if np.any(np.nan_to_num(trial[defined], nan=-1.0) < current[defined] - 1e-12):
        return False
    return bool(np.nan_to_num(trial[class_id], nan=-1.0) > np.nan_to_num(current[class_id], nan=-1.0) + 1e-12)


def choose_postprocessing(pairs: list, num_classes: int, object_areas: dict) -> tuple:
    """(PostProcessing, IoU before (C,), IoU after (C,)): greedily, for each class but the background and each round
    of its candidates, the step that raises its IoU most over the pairs without lowering any class's, on top of the
    steps chosen before; a round where none does adds nothing.

    Args:
        pairs: (label (H, W), predicted mask (H, W)) of the split's images; object_areas: {class id: its train
            objects' 5th-percentile area in px} (the fingerprint's; a class missing gets the largest-region and
            hole candidates only).
    """
    chosen = PostProcessing()
    before = current = split_iou(pairs, chosen, num_classes)
    for class_id in range(1, num_classes):
        for alternatives in candidates(class_id, object_areas.get(class_id, 0.0)):
            best = None
            for step in alternatives:
                trial = split_iou(pairs, PostProcessing((*chosen.steps, step)), num_classes)
                if better(trial, current, class_id) and (best is None or trial[class_id] > best[1][class_id]):
                    best = (step, trial)
            if best:
                chosen, current = PostProcessing((*chosen.steps, best[0])), best[1]
    return chosen, before, current


def choose_and_record(pairs: list, num_classes: int, class_facts: dict, weights_paths: list, details: dict) -> tuple:
    """choose_postprocessing over the pairs, with the min_area candidates from the train split's fingerprint
    (`class_facts`: its classes), recorded beside each weights file with the IoU before and after (%).

    Returns:
        (PostProcessing, IoU before (C,), IoU after (C,), the record written).
    """
    areas = {class_id: facts.area.p5 for class_id, facts in class_facts.items()}
    chosen, before, after = choose_postprocessing(pairs, num_classes, areas)
    record = {**details, "IoU_before": [percent(v) for v in before], "IoU_after": [percent(v) for v in after]}
    for path in weights_paths:
        write_postprocessing(path, chosen, record)
    return chosen, before, after, record
