"""k-fold splits (voc_annotation.py --num_folds), train.py --fold and cross_validate.py end to end."""

import json
import os
import shlex

import numpy as np
import pytest

from tests.helpers import TINY_MODEL, make_tiny_voc, run_inline, run_script
from utils.dataset.folds import group_of, make_folds
from utils.files.images import load_label, read_split, split_samples
from utils.metrics import confusion_matrix

IDS = [f"patient{p}_slice{s}" for p in range(7) for s in range(p % 3 + 1)]  # 7 patients of 1-3 slices


@pytest.mark.parametrize("num_folds, pattern", [(2, ""), (5, ""), (3, r"^(\w+?)_"), (7, r"^patient\d+")])
def test_folds_are_disjoint_cover_trainval_and_keep_groups_together(num_folds, pattern):
    folds = make_folds(IDS, num_folds, seed=0, pattern=pattern)
    vals = [set(folds[f"fold{i}_val"]) for i in range(num_folds)]
    assert sorted(i for val in vals for i in val) == sorted(IDS)  # every id validated exactly once
    for i, val in enumerate(vals):
        assert val and not val & set(folds[f"fold{i}_train"]) and val | set(folds[f"fold{i}_train"]) == set(IDS)
        if pattern:  # a patient's slices in one fold
            groups = {group_of(image_id, pattern) for image_id in val}
            assert all(group_of(image_id, pattern) not in groups for image_id in folds[f"fold{i}_train"])
    sizes = [len(val) for val in vals]
    assert max(sizes) - min(sizes) <= (3 if pattern else 1)  # as even as the groups allow
    assert folds == make_folds(IDS, num_folds, seed=0, pattern=pattern)  # seeded


def test_group_keys_and_too_few_groups():
    assert group_of("patient12_slice3", r"^(\w+?)_") == "patient12"
    assert group_of("scan.png", r"^(\w+?)_") == "scan.png"  # no match: its own group
    with pytest.raises(ValueError, match=r"num_folds=8, but the 13 images form 7 groups"):
        make_folds(IDS, 8, seed=0, pattern=r"^(\w+?)_")


def test_cross_validate_trains_every_fold_pools_their_val_and_resumes(tmp_path):
    voc = make_tiny_voc(tmp_path)
    result = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--num_folds", "2", "--preview_count", "0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "fold0_train 7, fold0_val 7, fold1_train 7, fold1_val 7" in result.stdout
    missing = run_inline("train.py", "--vocdevkit_path", voc, "--fold", "2", "--save_dir", tmp_path / "x")
    assert missing.returncode == 2 and "no such fold" in missing.stderr and "--num_folds" in missing.stderr

    logs = tmp_path / "logs"
    flags = [*TINY_MODEL, "--model", "unet_small", "--model_path", "", "--plan", "false", "--unfreeze_epoch", "1"]
    flags += ["--freeze_train", "false", "--unfreeze_batch_size", "4", "--tensorboard_images", "0"]
    args = ["--vocdevkit_path", voc, "--save_dir", logs, "--train_flags", shlex.join(flags)]
    result = run_script("cross_validate.py", *args, "--postprocess", "true")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert os.path.isfile(logs / "fold_0" / "best_epoch_weights.weights.h5")
    assert os.path.isfile(logs / "fold_1" / "best_epoch_weights.postprocessing.json")
    with open(logs / "cross_validation.json") as f:
        report = json.load(f)
    # The pooled matrix is every trainval image scored by the model that did not train on it.
    pooled = np.zeros((3, 3), np.int64)
    for fold in (0, 1):
        out = logs / f"fold_{fold}" / "miou_out" / "detection-results"
        for image_id, (_, label) in zip(read_split(os.path.join(voc, "VOC2007", "ImageSets", "Segmentation",
                                                                f"fold{fold}_val.txt")),
                                        split_samples(voc, f"fold{fold}_val")):  # fmt: skip
            pooled += confusion_matrix(load_label(label), load_label(str(out / f"{image_id}.png")), 3)
    assert pooled.sum() == 14 * 47 * 40  # 14 images of 48 x 40, the ignored top row left out
    assert [c["label_pixels"] for c in report["pooled"]["classes"]] == list(pooled.sum(1))
    assert report["pooled"]["mIoU"] == pytest.approx(report["pooled"]["mIoU"])
    assert (
        "Cross-validated over folds [0, 1]" in result.stdout
        and "Post-processing chosen on the 2 folds" in result.stdout
    )

    again = run_script("cross_validate.py", *args, "--folds", "1")  # a finished fold is kept, not trained again
    assert again.returncode == 0 and "Fold 1: trained in" in again.stdout and "train.py" not in again.stdout
