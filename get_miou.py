r"""mIoU, mPA, precision and per-class tables and charts of a trained UNet over the val split.

The model settings default to UnetConfig in unet.py; the rest to MiouConfig below. Any can be a flag:

    $ python get_miou.py                                   # predict the val split, then compute the figures
    $ python get_miou.py --model_path logs/best_epoch_weights.weights.h5 \
          --vocdevkit_path ../shared/datasets/membrane --name_classes background membrane
    $ python get_miou.py --miou_mode 2                     # figures again from the saved predictions
    $ python get_miou.py --thresholds 0.3 0.4 0.5 0.6 0.7  # 2 classes: which threshold scores best on the split
    $ python get_miou.py --postprocess choose              # choose post-processing on the split, record it
    $ python get_miou.py -h                                # every setting with its default

Outputs in miou_out_path (miou_out/): detection-results/<id>.png (class ids, palette colours), mIoU.png, Dice.png,
mPA.png, Recall.png, Precision.png, confusion_matrix.csv, confusion_matrix.png (rows sum to 1) and summary.json;
the table has Dice (= F1) per class, mDice and the frequency-weighted IoU too. Per image: per_image.csv (IoU, Dice
and HD95 per image and class, the images with the lowest mIoU first, each row with its image's confusion row) and
worst_images.png (image | label | prediction of the worst_images lowest).

A 2-class network (a sigmoid head, or a 2-way softmax) draws class 1 where its probability is above `threshold`;
`thresholds` scores each of a list on the split (precision against recall) and reports the best, which predict.py
then takes as --threshold. The predictions and figures above stay those of `threshold`.
"""

import os
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log (e.g. no CUDA on a CPU machine)

import numpy as np
from tqdm import tqdm

from nets.heads import label_value_count, multilabel_count
from unet import Unet, UnetConfig, recorded_settings, resolve_settings, unet_settings
from utils.config import run_main
from utils.dataset.check import checked_split_file, refuse, survey_pairs
from utils.dataset.fingerprint import train_fingerprint
from utils.files.atomic import check_writable, write_atomically
from utils.files.images import IGNORE_LABEL, check_num_classes, load_label, read_split, split_samples
from utils.metrics import confusion_matrix, mean_iou, per_class_iou
from utils.prediction.per_image import format_per_image, score_image, write_per_image
from utils.prediction.postprocess import choose_and_record, sidecar_path
from utils.prediction.report import format_summary, percent, shown, write_report
from utils.visualize import class_names, value_colours


@dataclass
class MiouConfig(UnetConfig):
    miou_mode: int = 0  # 0 = predict and compute, 1 = predict only, 2 = compute only (from saved predictions)
    name_classes: list[str] = field(default_factory=list)  # class names, background first; empty = as recorded
    vocdevkit_path: str = "VOCdevkit"  # dataset root holding VOC2007/
    split: str = "val"  # which ImageSets/Segmentation/<split>.txt to evaluate
    miou_out_path: str = "miou_out"  # where predictions, charts and tables go
    batch_size: int = 4  # images per model call
    thresholds: list[float] = field(default_factory=list)  # 2 classes: threshold sweep, e.g. 0.3 0.4 0.5 0.6 0.7
    worst_images: int = 4  # how many of the images with the lowest mIoU worst_images.png shows


def predict_split(unet: Unet, ids, samples, prediction_dir: str, batch_size: int) -> None:
    """Unet.write_masks over the whole split, with a progress bar."""
    written = unet.write_masks(ids, [image for image, _ in samples], prediction_dir, batch_size)
    for _ in tqdm(written, total=len(ids), desc="Predicting", unit="image"):
        pass


def read_prediction(path: str, label: np.ndarray, num_classes: int) -> np.ndarray:
    """A saved prediction, checked against its label; ValueError if it is missing or does not fit."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no prediction for this id. Run with --miou_mode 0 or 1 to predict the split first.")
    prediction = load_label(path)
    if prediction.shape != label.shape:
        raise ValueError(
            f"{path}: size {prediction.shape} differs from its label's {label.shape}. The predictions are from "
            "another dataset: predict again with --miou_mode 0."
        )
    if prediction.max() >= num_classes:
        raise ValueError(
            f"{path}: class {prediction.max()} but num_classes={num_classes}. The predictions are from a model with "
            "more classes: predict again with --miou_mode 0."
        )
    return prediction


def score_split(ids, samples, prediction_dir: str, num_classes: int, head: str) -> list:
    """Each image's figures (per_image.ImageScore) from the saved predictions and the labels, at original resolution."""
    scores, values = [], label_value_count(num_classes, head)
    for sample_id, (_, label_path) in tqdm(zip(ids, samples), total=len(ids), desc="Computing", unit="image"):
        label = load_label(label_path)  # values checked by check_labels in main
        prediction = read_prediction(os.path.join(prediction_dir, f"{sample_id}.png"), label, values)
        scores.append(score_image(sample_id, label, prediction, values, multilabel_count(num_classes, head)))
    return scores


def choose_on_split(config: MiouConfig, ids, samples, unet: Unet, split_file: str) -> None:
    """--postprocess choose: the post-processing that raises the split's IoU (utils/prediction/postprocess.py), from
    the predictions just written, recorded beside model_path; the predictions are rewritten post-processed."""
    prediction_dir = os.path.join(config.miou_out_path, "detection-results")
    masks = [load_label(os.path.join(prediction_dir, f"{sample_id}.png")) for sample_id in ids]
    pairs = list(zip((load_label(label) for _, label in samples), masks))
    classes = train_fingerprint(config.vocdevkit_path).classes
    details = {"split_file": split_file, "ensemble": list(config.ensemble), "tta": list(config.tta)}
    chosen, before, after, _ = choose_and_record(pairs, config.num_classes, classes, [config.model_path], details)
    names = class_names(unet.class_names, config.num_classes)[0]
    for sample_id, mask in zip(ids, masks if chosen.steps else []):
        processed = unet.mask_image(chosen.apply(mask))
        path = os.path.join(prediction_dir, f"{sample_id}.png")
        write_atomically(path, lambda temporary, image=processed: image.save(temporary, format="PNG"), ".png")
    changes = [
        f"{names[c]} {shown(percent(b))} -> {shown(percent(a))}"
        for c, (b, a) in enumerate(zip(before, after))
        if percent(b) != percent(a)
    ]
    print(
        f"Post-processing chosen on {config.split} ({len(ids)} images): {chosen.describe(names)}"
        + (f"; IoU {', '.join(changes)}" if changes else "")
        + f"\nRecorded in {sidecar_path(config.model_path)}: predict.py and get_miou.py apply it from now on "
        "(--postprocess none: without)."
    )


def sweep_thresholds(unet: Unet, samples, thresholds, batch_size: int) -> list:
    """mIoU and class 1's IoU at each threshold (2-class networks), one pass over the split per threshold.

    Returns:
        [{"threshold", "mIoU", "IoU_1"} (percent)], in the order given.
    """
    rows = []
    for threshold in thresholds:
        unet.set_threshold(threshold)
        matrix = np.zeros((2, 2), np.int64)
        masks = unet.segment_files([image for image, _ in samples], batch_size)
        for (_, label_path), (_, _, mask, _) in tqdm(zip(samples, masks), total=len(samples), desc=f"t={threshold}"):
            matrix += confusion_matrix(load_label(label_path), mask, 2)
        rows.append({"threshold": threshold, "mIoU": 100 * mean_iou(matrix), "IoU_1": 100 * per_class_iou(matrix)[1]})
    return rows


def format_sweep(rows: list, names) -> str:
    """The sweep as a table, with the best threshold by mIoU named."""
    best = max(rows, key=lambda row: row["mIoU"])
    lines = [f"{'threshold':>9}  {'mIoU':>6}  {f'IoU {names[1]}':>12}"]
    lines += [f"{r['threshold']:>9.3g}  {r['mIoU']:>6.2f}  {r['IoU_1']:>12.2f}" for r in rows]
    return "\n".join(
        lines + [f"Best threshold: {best['threshold']:g} (mIoU {best['mIoU']:.2f}): predict.py --threshold"]
    )


def check_labels(samples, config: MiouConfig, split_file: str, from_weights: bool, head: str) -> None:
    """The split's pairs checked as train.py checks them; labels with more classes than the model (or --num_classes)
    get the fix that applies: another model or dataset, not another setting the weights would refuse."""
    survey = survey_pairs(samples, desc=f"Checking {config.split}")
    refuse(survey, split_file, len(samples))
    total = sum(survey.judgement.histograms.values())
    largest = max((int(v) for v in np.flatnonzero(total) if v != IGNORE_LABEL), default=0)
    if largest >= label_value_count(config.num_classes, head):
        whose = (
            f"the model {config.model_path} was trained with num_classes={config.num_classes}. Evaluate it on the "
            "dataset it was trained on (--vocdevkit_path), or train a model on these classes"
            if from_weights
            else f"num_classes={config.num_classes}: set --num_classes {largest + 1}"
        )
        raise ValueError(f"{split_file}: its labels have class values up to {largest}, but {whose}.")


def check_choosing(config: MiouConfig, head: str) -> None:
    """--postprocess choose needs fresh predictions (miou_mode 0) and a weights file in a folder it can write to,
    of one class a pixel (its steps keep or drop a class's regions)."""
    if head == "multilabel":
        raise ValueError(
            "postprocess choose with a multilabel head: its steps act on one class a pixel, and a multilabel pixel "
            "may hold several. Leave --postprocess at auto."
        )
    if config.miou_mode != 0 or config.backend not in ("auto", "keras"):
        raise ValueError(
            f"postprocess choose with miou_mode={config.miou_mode}, backend={config.backend}: the choice is made from "
            "fresh predictions of the weights file: use --miou_mode 0 and the keras backend."
        )
    folder = os.path.dirname(os.path.abspath(config.model_path))
    if not os.access(folder, os.W_OK):
        raise ValueError(
            f"{folder}: not writable, so the post-processing cannot be recorded beside {config.model_path}. Copy the "
            "weights file to a folder you can write to."
        )


def main(config: MiouConfig) -> None:
    if config.miou_mode not in (0, 1, 2):
        raise ValueError(f"miou_mode={config.miou_mode}: expected 0 (predict and compute), 1 (predict) or 2 (compute).")
    # The network's settings come from the weights file (computing from saved predictions needs only num_classes).
    recorded = None if config.miou_mode == 2 and config.num_classes else recorded_settings(config)
    config = resolve_settings(config, recorded) if config.num_classes is None or recorded else config
    head = recorded.head if recorded else "softmax"
    check_num_classes(config.num_classes, allow_one=head == "multilabel")
    split_file = checked_split_file(config.vocdevkit_path, config.split)
    ids, samples = read_split(split_file), split_samples(config.vocdevkit_path, config.split)
    check_labels(samples, config, split_file, recorded is not None, head)
    prediction_dir = os.path.join(config.miou_out_path, "detection-results")
    if config.miou_mode in (0, 1):
        check_writable(config.miou_out_path, "miou_out_path", "miou_out2")
    elif not os.path.isdir(prediction_dir):
        raise ValueError(
            f"{prediction_dir}: no such folder, so no predictions to compute mIoU from (miou_mode 2). Predict the "
            "split first: --miou_mode 0 (or 1), or point --miou_out_path at the folder of an earlier run."
        )
    if config.thresholds and (config.miou_mode == 2 or config.num_classes != 2 or head == "multilabel"):
        raise ValueError(
            f"thresholds={config.thresholds}: a threshold sweep predicts the split again, for a 2-class network "
            f"(this one: num_classes={config.num_classes}); use miou_mode 0 or 1, or leave thresholds empty."
        )
    if config.postprocess == "choose":
        check_choosing(config, head)
    sweep = []
    if config.miou_mode in (0, 1):
        choosing = {"backend": "keras"} if config.postprocess == "choose" else {}  # from the weights file itself
        unet = Unet(**{**unet_settings(config), **choosing})
        predict_split(unet, ids, samples, prediction_dir, config.batch_size)
        print(f"Predictions of {len(ids)} images in {prediction_dir}/ (threshold {config.threshold:g})")
        if config.postprocess == "choose":
            choose_on_split(config, ids, samples, unet, split_file)
        if config.thresholds:
            sweep = sweep_thresholds(unet, samples, config.thresholds, config.batch_size)
            print(format_sweep(sweep, class_names(unet.class_names, 2)[0]))
    if config.miou_mode in (0, 2):
        names, note = class_names(config.name_classes or (recorded.class_names if recorded else []), config.num_classes)
        if note:
            print(note)
        scores = score_split(ids, samples, prediction_dir, config.num_classes, head)
        matrix = sum(score.matrix for score in scores)
        details = {"images": len(ids), "split_file": split_file, "model_path": config.model_path}
        details["ensemble"] = list(config.ensemble)
        details.update(threshold=config.threshold, threshold_sweep=sweep)
        colours = value_colours(config.num_classes, head)
        details.update(write_per_image(config.miou_out_path, scores, samples, names, config.worst_images, colours))
        summary = write_report(config.miou_out_path, matrix, names, details, multilabel_count(config.num_classes, head))
        print(format_summary(summary))
        print(format_per_image(summary))
        print(
            f"Charts, confusion_matrix.csv, per_image.csv, worst_images.png and summary.json in {config.miou_out_path}/"
        )


if __name__ == "__main__":
    run_main(main, MiouConfig, __doc__)
