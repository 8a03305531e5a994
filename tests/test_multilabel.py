"""The multilabel head (utils/multilabel.py): packing, the linear decision, the loss and the figures by hand, the
masks' checks, and the scripts end to end on a tiny tree of overlapping classes."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from tests.helpers import MULTILABEL_CLASSES, run_script, write_multilabel_voc
from utils.labels.packing import pack_labels
from utils.losses import build_loss
from utils.metrics import class_iou, confusion_matrix
from utils.multilabel import label_matrices, pack, set_bits, set_names, unpack
from utils.prediction.scores import ClassScores


def test_packing_round_trips_and_keeps_255_as_ignore():
    rng = np.random.default_rng(0)
    masks = rng.random((3, 6, 5)) > 0.5
    ignore = np.zeros((6, 5), bool)
    ignore[0, 0] = True
    packed = pack(masks, ignore)
    assert packed[0, 0] == 255 and packed.max() == 255 and np.sort(np.unique(packed))[-2] <= 7
    unpacked = unpack(packed, 3)
    assert not unpacked[0, 0].any()
    assert (unpacked[1:] == masks.transpose(1, 2, 0)[1:]).all()
    assert set_names(["a", "b"]) == ["none", "a", "b", "a+b"]


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.8])
def test_the_argmax_of_the_set_scores_is_each_class_above_the_threshold(threshold):
    """ClassScores' multilabel scores sum_{c in S} (p_c - t): their argmax over the 2**C sets is the packed set of
    classes with p_c > t, so every path's argmax (after linear resizing and blending) decides as a threshold does."""
    probabilities = np.random.default_rng(1).random((2, 8, 8, 3)).astype(np.float32)
    images = keras.Input((8, 8, 3))
    identity = keras.Model(images, keras.layers.Activation("linear")(images))  # "probabilities" as given
    scores = ClassScores(identity, threshold, head="multilabel")
    assert scores.output_shape[-1] == 8 and scores.probability_channels == 3
    decided = np.argmax(np.asarray(scores(probabilities)), axis=-1)
    expected = ((probabilities > threshold) * [1, 2, 4]).sum(-1)
    assert (decided == expected).all()
    assert set_bits(2).tolist() == [[0, 1, 0, 1], [0, 0, 1, 1]]


def test_the_multilabel_loss_by_hand():
    """Two pixels, two classes: pixel 0 holds both (packed 3), pixel 1 is ignored (255). Binary cross-entropy is
    the mean over the valid pixel's two classes; Dice per class, then their mean; the ignored pixel changes none."""
    y_true = np.array([[[3, 255]]], np.uint8)
    y_pred = np.array([[[[0.8, 0.6], [0.1, 0.9]]]], np.float32)
    bce = -(np.log(0.8) + np.log(0.6)) / 2
    value = float(build_loss([1.0, 1.0], head="multilabel")(y_true, y_pred))
    assert value == pytest.approx(bce, rel=1e-5)
    dice = 1 - ((2 * 0.8 / (2 * 0.8 + 0.2)) + (2 * 0.6 / (2 * 0.6 + 0.4))) / 2
    with_dice = float(build_loss([1.0, 1.0], dice_loss=True, head="multilabel")(y_true, y_pred))
    assert with_dice == pytest.approx(bce + dice, rel=1e-4)


def test_each_class_is_scored_on_its_own_yes_no_matrix():
    """Label: pixel sets {a}, {a, b}, {}, {b}; prediction: {a}, {a}, {b}, {b}. Class a: TP 2, FP 0, FN 0 -> IoU 1;
    class b: TP 1 (pixel 3), FP 1 (pixel 2), FN 1 (pixel 1) -> IoU 1/3."""
    label, prediction = np.array([1, 3, 0, 2]), np.array([1, 1, 2, 2])
    matrix = confusion_matrix(label, prediction, 4)
    assert label_matrices(matrix, 2)[1].tolist() == [[1, 1], [1, 1]]
    assert class_iou(matrix, 2) == pytest.approx([1.0, 1 / 3])


def test_a_bad_mask_is_named_and_user_labels_are_not_overwritten(tmp_path):
    voc_root = write_multilabel_voc(tmp_path)
    voc = os.path.join(voc_root, "VOC2007")
    smooth = np.zeros((48, 40), np.uint8)
    smooth[10:20, 10:20], smooth[10, 10:20] = 255, 128  # an anti-aliased edge
    bad = os.path.join(voc, "SegmentationLabels", "stain", "m03.png")
    Image.fromarray(smooth).save(bad)
    with pytest.raises(ValueError, match="m03.png: values \\[0, 128, 255\\]"):
        pack_labels(voc, voc_root)
    assert not os.path.exists(os.path.join(voc, "SegmentationClass"))  # nothing written before every mask passed
    os.makedirs(os.path.join(voc, "SegmentationClass"))
    Image.fromarray(np.zeros((48, 40), np.uint8)).save(os.path.join(voc, "SegmentationClass", "mine.png"))
    with pytest.raises(ValueError, match="SegmentationClass holds labels"):
        pack_labels(voc, voc_root)


def test_multilabel_end_to_end(tmp_path):
    """voc_annotation.py packs the masks; train.py trains the multilabel head; get_miou.py scores each class; its
    per-image rows pool to its figures; predict.py writes the packed mask and each class's mask."""
    voc = write_multilabel_voc(tmp_path)
    packed = run_script("voc_annotation.py", "--vocdevkit_path", voc, "--train_percent", "0.7")
    assert packed.returncode == 0, packed.stdout[-2000:] + packed.stderr[-2000:]
    assert "Train with: python train.py --head multilabel --num_classes 2" in packed.stdout
    label = np.asarray(Image.open(os.path.join(voc, "VOC2007", "SegmentationClass", "m05.png")))
    assert label[0].tolist() == [255] * 40 and label[25, 20] == 3 and label[25, 36] == 2  # both; the stain alone
    assert open(os.path.join(voc, "classes.txt")).read().split() == MULTILABEL_CLASSES

    logs = str(tmp_path / "logs")
    forgot = run_script("train.py", "--vocdevkit_path", voc, "--save_dir", logs)  # the defaults: softmax, 4 classes
    assert forgot.returncode == 2 and "Train them with --head multilabel --num_classes 2" in forgot.stderr
    args = ["--vocdevkit_path", voc, "--num_classes", "2", "--head", "multilabel", "--model", "unet_small"]
    args += ["--input_shape", "32", "32", "--model_path", "", "--freeze_train", "false", "--unfreeze_epoch", "6"]
    args += ["--unfreeze_batch_size", "2", "--init_lr", "8e-3", "--plan", "false", "--dice_loss", "true"]
    trained = run_script("train.py", *args, "--precision", "fp32", "--save_dir", logs)
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-3000:]
    weights = os.path.join(logs, "best_epoch_weights.weights.h5")

    out = str(tmp_path / "miou")
    scored = run_script("get_miou.py", "--model_path", weights, "--vocdevkit_path", voc, "--miou_out_path", out)
    assert scored.returncode == 0, scored.stderr[-3000:]
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert [c["name"] for c in summary["classes"]] == MULTILABEL_CLASSES
    assert summary["mIoU"] > 50  # both classes found (chance is far below)
    rows = open(os.path.join(out, "per_image.csv")).read().splitlines()[1:]
    for c, entry in enumerate(summary["classes"]):
        pooled = sum(int(row.split(",")[3]) for row in rows if row.split(",")[2] == entry["name"])
        assert pooled == entry["label_pixels"]

    save = str(tmp_path / "out")
    images = os.path.join(voc, "VOC2007", "JPEGImages")
    flags = ["--mode", "dir_predict", "--dir_origin_path", images, "--dir_save_path", save, "--save_mask"]
    predicted = run_script("predict.py", "--model_path", weights, *flags)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    mask = np.asarray(Image.open(os.path.join(save, "masks", "m05.png")))
    stain = np.asarray(Image.open(os.path.join(save, "masks", "stain", "m05.png")))
    assert mask.max() <= 3 and ((mask & 2 > 0) == (stain == 255)).all()
