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
