import os

import numpy as np
from PIL import Image

from utils.dataset.check import check_dataset
from utils.dataset.demo import DEMO_CLASSES, make_demo_dataset
from utils.files.images import split_samples


def read_all(root):
    voc = os.path.join(root, "VOC2007")
    return [
        np.asarray(Image.open(os.path.join(voc, "SegmentationClass", n)))
        for n in sorted(os.listdir(voc + "/SegmentationClass"))
    ]


def test_demo_dataset_is_a_valid_voc_tree_and_deterministic(tmp_path):
    make_demo_dataset(str(tmp_path / "a"), num_images=10, size=64, seed=3)
    make_demo_dataset(str(tmp_path / "b"), num_images=10, size=64, seed=3)
    check_dataset(str(tmp_path / "a"), num_classes=len(DEMO_CLASSES), min_train=8, min_val=2)
    assert len(split_samples(str(tmp_path / "a"), "train")) == 8
    labels = read_all(tmp_path / "a")
    for label_a, label_b in zip(labels, read_all(tmp_path / "b")):
        np.testing.assert_array_equal(label_a, label_b)
    assert set(np.unique(np.concatenate([label.ravel() for label in labels]))) == {0, 1, 2, 3}
    with Image.open(tmp_path / "a" / "VOC2007" / "SegmentationClass" / "demo_0000.png") as label:
        assert label.mode == "P" and label.size == (64, 64)


def test_the_defects_variant_adds_a_rare_small_class(tmp_path):
    make_demo_dataset(str(tmp_path), num_images=40, size=64, seed=0, defects=0.5)
    labels = read_all(tmp_path)
    with_defect = [label for label in labels if (label == 4).any()]
    assert 10 <= len(with_defect) <= 30  # about half the images
    assert all((label == 4).sum() <= 2 * np.pi * 4.5**2 + 8 for label in with_defect)  # one or two small spots
    check_dataset(str(tmp_path), num_classes=5, min_train=30, min_val=2)
    assert open(tmp_path / "demo_classes.txt").read().split() == [*DEMO_CLASSES, "defect"]
