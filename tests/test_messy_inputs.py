"""Messy but ordinary inputs a newcomer gives the scripts: each gets a correct acceptance or a clear message before
the work starts, never a traceback or a silently wrong result."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import TINY_TRAIN, digest, make_tiny_voc, run_inline
from utils.dataset.check import check_dataset
from utils.training.runs import LOCK_FILE, save_dir_lock
from utils.training.stopping import is_better

TRAIN = [*TINY_TRAIN, "--freeze_train", "false", "--unfreeze_epoch", "1", "--unfreeze_batch_size", "2"]


def voc_folder(voc, *parts):
    return os.path.join(voc, "VOC2007", *parts)


def refused(result, *expected):
    text = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in text, text[-3000:]
    assert all(e in result.stderr for e in expected), result.stderr[-3000:]


def test_a_second_run_into_a_save_dir_in_use_is_refused(tmp_path):
    voc, logs = make_tiny_voc(tmp_path), tmp_path / "logs"
    with save_dir_lock(str(logs)):  # a run holding logs/ (this process, alive)
        result = run_inline("train.py", *TRAIN, "--vocdevkit_path", voc, "--save_dir", logs)
    refused(result, "is in use by another train.py run", "--save_dir")
    assert "Weights:" not in result.stdout and not os.path.exists(logs / LOCK_FILE)


def test_the_lock_of_a_run_that_was_killed_is_taken_over(tmp_path, capsys):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    os.makedirs(tmp_path / "logs")
    (tmp_path / "logs" / LOCK_FILE).write_text(
        json.dumps({"pid": int(ended.stdout), "host": os.uname().nodename, "started": "yesterday"})
    )
    with save_dir_lock(str(tmp_path / "logs")):
        assert json.loads((tmp_path / "logs" / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert "Took over" in capsys.readouterr().out and not os.path.exists(tmp_path / "logs" / LOCK_FILE)


def test_the_users_own_split_files_are_kept(tmp_path):
    voc = make_tiny_voc(tmp_path)
    splits = voc_folder(voc, "ImageSets", "Segmentation")
    own = open(os.path.join(splits, "train.txt")).read()
    result = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--preview_count", "0")
    assert result.returncode == 0 and "Your earlier split files differ" in result.stdout, result.stdout[-2000:]
    (backup,) = [d for d in os.listdir(splits) if d.startswith("previous_")]
    assert open(os.path.join(splits, backup, "train.txt")).read() == own  # nothing lost
    again = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--preview_count", "0")
    assert "differ" not in again.stdout  # the same splits: nothing to keep
    with open(os.path.join(splits, "train.txt"), "w") as f:
        f.write(own)
    kept = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--preview_count", "0", "--keep_splits")
    assert "Kept your split files" in kept.stdout and open(os.path.join(splits, "train.txt")).read() == own


def test_same_id_files_a_square_exif_image_and_a_bom_are_named_or_read(tmp_path):
    voc = make_tiny_voc(tmp_path)
    image = voc_folder(voc, "JPEGImages", "img 01.jpg")
    Image.open(image).save(image.replace(".jpg", ".png"))  # a.jpg and a.png
    square = np.zeros((40, 40), np.uint8)
    square[5:20, 5:30] = 1
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.stack([square * 200] * 3, -1)).save(voc_folder(voc, "JPEGImages", "sq.jpg"), exif=exif)
    Image.fromarray(square).save(voc_folder(voc, "SegmentationClass", "sq.png"))
    result = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--preview_count", "0")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "img 01.jpg and" in result.stdout and "share an id; only" in result.stdout
    assert "sq.jpg: an EXIF orientation (6) that its size cannot confirm (square)" in result.stdout
    train = voc_folder(voc, "ImageSets", "Segmentation", "train.txt")
    ids = open(train, encoding="utf-8").read()
    open(train, "w", encoding="utf-8-sig").write(ids)  # as Windows Notepad saves it
    check_dataset(voc, 3, 2, 1)


def test_upper_case_suffixes_duplicated_ids_and_an_all_ignore_val_split(tmp_path):
    voc = make_tiny_voc(tmp_path)
    label = voc_folder(voc, "SegmentationClass", "img 02.png")
    os.rename(label, label.replace(".png", ".PNG"))
    check_dataset(voc, 3, 2, 1)  # train.py takes the .PNG as voc_annotation.py does
    split = voc_folder(voc, "ImageSets", "Segmentation", "train.txt")
    ids = open(split).read().splitlines()
    with open(split, "a") as f:
        f.write(ids[0] + "\n")
    with pytest.raises(ValueError, match="lists 1 ids more than once"):
        check_dataset(voc, 3, 2, 1)
    with open(split, "w") as f:
        f.write("\n".join(ids) + "\n")
    for sample in open(voc_folder(voc, "ImageSets", "Segmentation", "val.txt")).read().splitlines():
        Image.fromarray(np.full((48, 40), 255, np.uint8)).save(voc_folder(voc, "SegmentationClass", f"{sample}.png"))
    with pytest.raises(ValueError, match="all 'ignore' .* val mIoU has nothing to measure"):
        check_dataset(voc, 3, 2, 1)


def test_a_tiny_image_and_a_read_only_dataset_are_refused_before_the_work(tmp_path, monkeypatch):
    voc = make_tiny_voc(tmp_path)
    Image.new("RGB", (1, 1)).save(voc_folder(voc, "JPEGImages", "dot.jpg"))
    Image.new("L", (1, 1)).save(voc_folder(voc, "SegmentationClass", "dot.png"))
    tiny = run_inline("voc_annotation.py", "--vocdevkit_path", voc)
    refused(tiny, "splits were not written")
    assert "dot.jpg: 1x1 px; expected at least 8 px a side" in tiny.stdout
    os.remove(voc_folder(voc, "JPEGImages", "dot.jpg"))
    before = digest(voc)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: mode != os.W_OK and real_access(path, mode))
    read_only = run_inline("voc_annotation.py", "--vocdevkit_path", voc)
    refused(read_only, "cannot be written (read-only)", "--dry_run")
    assert "Found" not in read_only.stdout and digest(voc) == before  # refused before any file was read


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--init_lr", "-1"], "init_lr=-1.0, min_lr=1e-06: expected 0 < init_lr"),
        (["--num_classes", "300"], "num_classes=300: expected 2 to 255 classes"),
        (["--num_classes", "0"], "num_classes=0: expected 2 to 255 classes"),
    ],
)
def test_train_refuses_impossible_settings_before_any_work(tmp_path, flags, expected):
    voc = make_tiny_voc(tmp_path)
    result = run_inline("train.py", *TRAIN, *flags, "--vocdevkit_path", voc, "--save_dir", tmp_path / "logs")
    refused(result, expected)


def test_voc_annotation_refuses_more_classes_than_labels_can_hold(tmp_path):
    voc = make_tiny_voc(tmp_path)
    refused(run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--num_classes", "300"), "num_classes=300")


def test_get_miou_says_which_model_fits_labels_with_more_classes(trained, tmp_path):
    voc = make_tiny_voc(tmp_path)
    for sample in open(voc_folder(voc, "ImageSets", "Segmentation", "val.txt")).read().splitlines():
        path = voc_folder(voc, "SegmentationClass", f"{sample}.png")
        label = np.asarray(Image.open(path)).copy()
        label[30:40, 10:20] = 3  # a fourth class the 3-class model never learned
        Image.fromarray(label).save(path)
    result = run_inline(
        "get_miou.py", "--model_path", trained["weights"], "--vocdevkit_path", voc,
        "--miou_out_path", tmp_path / "out",
    )  # fmt: skip
    refused(result, "class values up to 3, but the model", "was trained with num_classes=3", "--vocdevkit_path")
    assert "Set num_classes" not in result.stderr  # the advice that went in a circle


def test_a_val_metric_that_is_not_a_number_is_never_an_improvement():
    assert not is_better("val_miou", float("nan"), None) and not is_better("val_loss", float("nan"), 1.0)
    assert is_better("val_miou", 0.5, None) and is_better("val_loss", 0.5, 1.0)
