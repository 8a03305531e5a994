"""The train split's fingerprint: objects counted and measured by hand, the cache and when it is made again."""

import json
import os
import stat

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_script, write_voc
from utils.dataset import fingerprint as fingerprints
from utils.dataset.fingerprint import CACHE_NAME, Spread, train_fingerprint
from utils.labels.objects import label_objects


def shapes_label() -> np.ndarray:
    """A 100 x 100 label: a 80 x 5 strip of class 1, a 10 x 10 square of class 2, a 1 px line of class 3 along
    row 95, and 255 in column 99 (ignored)."""
    label = np.zeros((100, 100), np.uint8)
    label[10:90, 20:25] = 1
    label[50:60, 50:60] = 2
    label[95, :99] = 3
    label[:, 99] = 255
    return label


def test_objects_are_counted_and_measured_as_by_hand():
    objects = label_objects(shapes_label())
    assert objects.pixels[1] == 400 and objects.pixels[255] == 100 and objects.pixels[3] == 99
    assert objects.areas[1] == [400] and objects.areas[2] == [100] and objects.areas[3] == [99]
    # the strip's width: 2 x 400 / 166 outline pixels (its 80-pixel sides twice, its ends' 3 inner pixels twice)
    assert objects.thicknesses[1] == pytest.approx([2 * 400 / 166])
    assert objects.thicknesses[3] == [1.0]  # a line 1 px wide
    assert objects.thicknesses[2] == pytest.approx([2 * 100 / 36])  # a square: a little over half its side
    assert sorted(objects.areas[0]) == [4 * 99, 95 * 99 - 400 - 100]  # the line cuts the background in two


def test_background_split_by_a_line_is_two_objects():
    label = np.zeros((20, 30), np.uint8)
    label[:, 10] = 1  # a line from the top to the bottom splits class 0 in two
    objects = label_objects(label)
    assert sorted(objects.areas[0]) == [200, 380] and objects.areas[1] == [20]


def test_spread_weighted_by_pixels_ignores_specks():
    areas = [1] * 99 + [10000]  # 99 specks and one large object
    assert Spread.of(areas).median == 1 and Spread.of(areas).p5 == 1
    weighted = Spread.of(areas, areas)  # 99 % of the pixels are in the large object
    assert weighted.p5 == 10000 and weighted.median == 10000 and weighted.low == 1 and weighted.high == 10000
    assert Spread.of([]) == Spread()


def tiny_tree(root) -> str:
    """Four train images: two hold class 1 (the strip), all hold class 2 (the square)."""
    samples = {}
    for i in range(4):
        label = shapes_label()[:, :99]
        label[label == 3] = 0
        if i >= 2:
            label[label == 1] = 0
        image = np.stack([label * 80] * 3, axis=-1).astype(np.uint8)
        samples[f"s{i}"] = (image, label)
    return write_voc(root, samples, {"train": list(samples), "val": ["s0"]})


def test_fingerprint_of_a_split_and_its_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    voc = tiny_tree(tmp_path)
    found = train_fingerprint(voc)
    assert found.images == 4 and found.height == Spread(100, 100, 100, 100) and found.width.median == 99
    assert found.bands == 3 and found.dtype == "uint8" and found.ignored_share == 0
    assert set(found.classes) == {0, 1, 2}
    labelled = 4 * 100 * 99
    assert found.classes[1].pixel_share == pytest.approx(2 * 400 / labelled)
    assert found.classes[2].pixel_share == pytest.approx(4 * 100 / labelled)
    assert found.classes[1].image_share == 0.5 and found.classes[2].image_share == 1.0
    assert found.classes[1].objects == 2 and found.classes[1].area.median == 400
    cache = os.path.join(voc, "VOC2007", "ImageSets", "Segmentation", CACHE_NAME)
    assert json.load(open(cache))["fingerprint"]["images"] == 4

    def computed_again(samples):
        raise AssertionError("the fingerprint was computed again")

    monkeypatch.setattr(fingerprints, "fingerprint_of", computed_again)
    assert train_fingerprint(voc) == found  # from the cache
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    label = os.path.join(voc, "VOC2007", "SegmentationClass", "s3.png")
    Image.fromarray(np.full((100, 99), 2, np.uint8)).save(label)
    assert train_fingerprint(voc).classes[2].pixel_share > found.classes[2].pixel_share


def test_a_read_only_dataset_is_cached_in_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    voc = tiny_tree(tmp_path)
    splits = os.path.join(voc, "VOC2007", "ImageSets", "Segmentation")
    os.chmod(splits, stat.S_IRUSR | stat.S_IXUSR)
    try:
        train_fingerprint(voc)
        assert not os.path.exists(os.path.join(splits, CACHE_NAME))
        assert len(os.listdir(tmp_path / "cache" / "unet-keras" / "fingerprints")) == 1
    finally:
        os.chmod(splits, stat.S_IRWXU)


def test_voc_annotation_prints_the_fingerprint(tmp_path):
    voc = tiny_tree(tmp_path)
    result = run_script("voc_annotation.py", "--vocdevkit_path", voc, "--num_classes", "3", "--preview_count", "0")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "The train split's fingerprint" in result.stdout and "band(s) of uint8" in result.stdout
