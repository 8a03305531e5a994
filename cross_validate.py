r"""Cross-validation: train.py on every fold, get_miou.py on each fold's val split with its best weights, then the
cross-validated figures: the folds' confusion matrices pooled (every trainval image scored once, by the model that
did not train on it), and each fold's mIoU.

    $ python voc_annotation.py --num_folds 5                    # the folds: fold0_train.txt, fold0_val.txt, ...
    $ python cross_validate.py --train_flags "--num_classes 2 --time_budget 20"
    $ python cross_validate.py --folds 0 1 --train_flags "..."  # some folds only (the others later: run it again)
    $ python cross_validate.py --postprocess true ...           # and choose post-processing on all folds' predictions

Each fold trains into save_dir/fold_i (train.py --fold i) and is scored into save_dir/fold_i/miou_out. Run again
after an interruption: a finished fold is kept, an interrupted one resumed (train.py --resume), so nothing is lost.
The folds' models are an ensemble for prediction: predict.py --model_path save_dir/fold_0/best_epoch_weights.weights.h5
--ensemble save_dir/fold_1/best_epoch_weights.weights.h5 ... Outputs: save_dir/cross_validation.json and
cross_validation_confusion.csv.
"""

import csv
import glob
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np

from utils.config import run_main
from utils.dataset.check import checked_split_file
from utils.files.atomic import check_writable, write_json
from utils.files.images import Splits, dataset_class_names, load_label, read_split, split_samples
from utils.prediction.postprocess import choose_and_record
from utils.prediction.report import format_summary, summarize, write_confusion_csv

BEST = "best_epoch_weights.weights.h5"


@dataclass
class CrossValidateConfig:
    vocdevkit_path: str = "VOCdevkit"  # dataset root holding VOC2007/ with the folds (voc_annotation.py --num_folds)
    folds: list[int] = field(default_factory=list)  # the folds to run; empty = every fold the split files have
    save_dir: str = "logs"  # each fold trains into save_dir/fold_i
    train_flags: str = ""  # train.py's flags for every fold, e.g. "--num_classes 2 --time_budget 20"
    postprocess: bool = False  # choose post-processing on all folds' val predictions, recorded beside each model


def found_folds(vocdevkit_path: str) -> list:
    """The fold indices whose split files exist (fold{i}_train.txt and fold{i}_val.txt), from 0 up."""
    folder = os.path.join(vocdevkit_path, "VOC2007", "ImageSets", "Segmentation")
    folds = []
    while all(
        os.path.isfile(os.path.join(folder, f"{name}.txt")) for name in vars(Splits.of_fold(len(folds))).values()
    ):
        folds.append(len(folds))
    return folds


def check_settings(config: CrossValidateConfig) -> list:
    """The folds to run, checked before anything trains; ValueError naming what is missing."""
    available = found_folds(config.vocdevkit_path)
    if not available:
        checked_split_file(config.vocdevkit_path, "fold0_train")  # raises, saying how to write the folds
    missing = sorted(set(config.folds) - set(available))
    if missing:
        raise ValueError(
            f"folds {missing}: not among the folds of {config.vocdevkit_path} (0-{available[-1]}). Write more with "
            f"python voc_annotation.py --num_folds {max(missing) + 1}."
        )
    for word in ("--fold", "--save_dir", "--vocdevkit_path", "--resume"):
        if word in shlex.split(config.train_flags):
            raise ValueError(f"train_flags: {word} is cross_validate.py's to set; give it as its own setting.")
    check_writable(config.save_dir, "save_dir", "logs_cv")
    return config.folds or available


def run(script: str, *args) -> None:
    """A script as a user runs it, its output shown as it comes; ValueError naming the command when it fails."""
    command = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), script), *map(str, args)]
    print(f"\n$ {shlex.join(command[1:])}", flush=True)
    if subprocess.run(command).returncode != 0:
        raise ValueError(f"{shlex.join(command[1:])} failed (its messages are above). Fix that, then run again.")


def train_fold(config: CrossValidateConfig, fold: int) -> str:
    """Trains the fold (or resumes it, or keeps it when it finished); returns its folder."""
    folder = os.path.join(config.save_dir, f"fold_{fold}")
    if glob.glob(os.path.join(folder, "loss_*", "timing.json")):  # train.py writes it when a run ends
        print(f"\nFold {fold}: trained in {folder}")
    elif glob.glob(os.path.join(folder, "resume_epoch*.weights.h5")):
        run("train.py", "--resume", folder)
    else:
        run("train.py", *shlex.split(config.train_flags), "--fold", fold, "--vocdevkit_path", config.vocdevkit_path,
            "--save_dir", config.save_dir)  # fmt: skip
    return folder


def read_confusion(path: str) -> np.ndarray:
    """get_miou.py's confusion_matrix.csv as int64 (C, C)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))[1:]  # class names may hold commas: csv quotes them
    return np.array([[int(v) for v in row[1:]] for row in rows], np.int64)


def oof_pairs(config: CrossValidateConfig, folds: list) -> list:
    """(label, prediction) of every fold's val image: the predictions of the model that did not train on it."""
    pairs = []
    for fold in folds:
        split = Splits.of_fold(fold).val
        ids = read_split(os.path.join(config.vocdevkit_path, "VOC2007", "ImageSets", "Segmentation", f"{split}.txt"))
        predictions = os.path.join(config.save_dir, f"fold_{fold}", "miou_out", "detection-results")
        for sample_id, (_, label) in zip(ids, split_samples(config.vocdevkit_path, split)):
            pairs.append((load_label(label), load_label(os.path.join(predictions, f"{sample_id}.png"))))
    return pairs


def choose_for_folds(config: CrossValidateConfig, folds: list, num_classes: int, names) -> dict:
    """Post-processing chosen on the pooled out-of-fold predictions, recorded beside every fold's best weights."""
    from utils.dataset.fingerprint import train_fingerprint  # noqa: PLC0415 (only here)

    classes = train_fingerprint(config.vocdevkit_path, Splits.of_fold(folds[0]).train).classes
    weights = [os.path.join(config.save_dir, f"fold_{fold}", BEST) for fold in folds]
    details = {"chosen_on": f"the val splits of folds {folds}"}
    chosen, before, after, record = choose_and_record(oof_pairs(config, folds), num_classes, classes, weights, details)
    print(f"\nPost-processing chosen on the {len(folds)} folds' val predictions: {chosen.describe(names)}")
    print(f"mIoU {np.nanmean(before) * 100:.2f} -> {np.nanmean(after) * 100:.2f}; recorded beside each fold's {BEST}")
    return {"steps": chosen.describe(names), **record}


def main(config: CrossValidateConfig) -> None:
    folds = check_settings(config)
    matrices = {}
    for fold in folds:
        folder = train_fold(config, fold)
        out = os.path.join(folder, "miou_out")
        run("get_miou.py", "--model_path", os.path.join(folder, BEST), "--vocdevkit_path", config.vocdevkit_path,
            "--split", Splits.of_fold(fold).val, "--miou_out_path", out, "--postprocess", "none")  # fmt: skip
        matrices[fold] = read_confusion(os.path.join(out, "confusion_matrix.csv"))
    pooled = sum(matrices.values())
    names = dataset_class_names(config.vocdevkit_path)
    names = names if len(names) == len(pooled) else [f"class {c}" for c in range(len(pooled))]
    summary = summarize(pooled, names)
    per_fold = {fold: summarize(matrix, names)["mIoU"] for fold, matrix in matrices.items()}
    print(f"\nCross-validated over folds {folds} (their val splits pooled):\n{format_summary(summary)}")
    values = list(per_fold.values())
    print("Per fold mIoU: " + ", ".join(f"{fold}: {v:.2f}" for fold, v in per_fold.items()))
    print(f"Mean over the folds {np.mean(values):.2f}, standard deviation {np.std(values):.2f}")
    report = {"folds": folds, "pooled": summary, "per_fold_mIoU": per_fold, "mean_fold_mIoU": float(np.mean(values))}
    if config.postprocess:
        report["postprocessing"] = choose_for_folds(config, folds, len(pooled), names)
    write_confusion_csv(os.path.join(config.save_dir, "cross_validation_confusion.csv"), pooled, names)
    write_json(os.path.join(config.save_dir, "cross_validation.json"), report)
    print(f"\n{config.save_dir}/cross_validation.json and cross_validation_confusion.csv written")


if __name__ == "__main__":
    run_main(main, CrossValidateConfig, __doc__)
