"""json_to_dataset.py on hand-written labelme files: shapes, image sources, unknown labels, malformed files."""

import base64
import io
import json
import os

import numpy as np
from PIL import Image

from tests.helpers import run_script


def png_base64(array) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def shape(label, kind, points, **extra):
    return {"label": label, "shape_type": kind, "points": points, "group_id": None, "flags": {}, **extra}


def write_corpus(folder):
    folder.mkdir()
    image = np.full((40, 60, 3), 90, np.uint8)
    mask = np.zeros((4, 5), bool)
    mask[1:3, 1:4] = True
    embedded = {
        "version": "5.5.0",
        "imageData": png_base64(image),
        "imagePath": "gone.png",
        "imageHeight": 40,
        "imageWidth": 60,
        "shapes": [
            shape("cat", "rectangle", [[2, 2], [11, 9]]),
            shape("dog", "polygon", [[30, 5], [50, 5], [50, 25], [30, 25]]),
            shape("cat", "circle", [[15, 30], [19, 30]]),
            shape("dog", "mask", [[50, 30], [54, 33]], mask=png_base64(mask.astype(np.uint8) * 255)),
            shape("cat", "line", [[0, 39], [59, 39]]),
            shape("cat", "point", [[1, 1]]),
        ],
    }
    (folder / "a.json").write_text(json.dumps(embedded))
    sub = folder / "imgs"
    sub.mkdir()
    Image.fromarray(image[:, :30]).save(sub / "b source.jpg", quality=95)
    beside = {  # labelme 3-style: no shape_type; a Windows path relative to the JSON
        "imagePath": "imgs\\b source.jpg",
        "imageData": None,
        "shapes": [
            {"label": "dog", "points": [[0, 0], [10, 0], [10, 10]]},
            {"label": "horse", "points": [[20, 20], [25, 20], [25, 25]]},
        ],
    }
    (folder / "b.json").write_text(json.dumps(beside))
    (folder / "broken.json").write_text('{"shapes": [')
    (folder / "noimage.json").write_text(json.dumps({"imagePath": "nowhere.jpg", "shapes": []}))


def test_converts_shapes_reports_the_rest_and_never_overwrites(tmp_path):
    write_corpus(tmp_path / "json")
    out = tmp_path / "VOCdevkit"
    args = ["--json_dir", tmp_path / "json", "--vocdevkit_path", out, "--classes", "_background_", "cat", "dog"]
    result = run_script("json_to_dataset.py", *args)
    assert result.returncode == 2  # two files were not converted ...
    assert "broken.json: not a labelme JSON file" in result.stderr and "noimage.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Converted 2 of 4 files" in result.stdout  # ... but the others were
    assert "line 'cat' skipped (no area)" in result.stdout and "point 'cat' skipped" in result.stdout
    assert "unknown label 'horse' skipped" in result.stdout
    assert (out / "classes.txt").read_text() == "_background_\ncat\ndog\n"

    voc = out / "VOC2007"
    assert sorted(os.listdir(voc / "JPEGImages")) == ["a.png", "b.jpg"]
    label = np.asarray(Image.open(voc / "SegmentationClass" / "a.png"))
    assert label.shape == (40, 60)
    assert label[5, 5] == 1 and label[10, 40] == 2 and label[30, 15] == 1  # rectangle, polygon, circle
    assert label[31, 52] == 2 and label[30, 50] == 0  # the mask, placed at its box
    assert label[39, 30] == 0  # the line drew nothing
    assert np.asarray(Image.open(voc / "SegmentationClass" / "b.png"))[2, 8] == 2

    again = run_script("json_to_dataset.py", *args)  # same output again: nothing changes, nothing complains
    assert "Converted 2 of 4 files" in again.stdout
    Image.fromarray(np.zeros((40, 60), np.uint8)).save(voc / "SegmentationClass" / "a.png")
    edited = (voc / "SegmentationClass" / "a.png").read_bytes()
    third = run_script("json_to_dataset.py", *args)
    assert "exists with other content; not overwritten" in third.stderr
    assert (voc / "SegmentationClass" / "a.png").read_bytes() == edited

    checked = run_script("voc_annotation.py", "--vocdevkit_path", out, "--num_classes", "3")
    assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]


def test_classes_default_to_every_label_found(tmp_path):
    write_corpus(tmp_path / "json")
    result = run_script("json_to_dataset.py", "--json_dir", tmp_path / "json", "--vocdevkit_path", tmp_path / "V")
    assert "0 _background_, 1 cat, 2 dog, 3 horse" in result.stdout
    assert "unknown label" not in result.stdout
