"""convert_labels.py on exports written in each tool's own format: COCO (pycocotools' RLE), CVAT for images 1.1 XML,
CVAT's Segmentation mask 1.1 folder and Label Studio's JSON (its own brush encoder: tests/data/labelstudio_fixture.py),
each converted to the labels drawn by hand, and each broken export named with its file."""

import json
import os

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as coco_mask

from tests.helpers import run_inline
from utils.files.images import load_label

WIDTH, HEIGHT = 40, 32
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def write_image(folder, name: str) -> None:
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8)).save(folder / name)


def converted(tmp_path, *args):
    out = tmp_path / "VOCdevkit"
    result = run_inline("convert_labels.py", *args, "--vocdevkit_path", out)
    return result, out


def label_of(out, stem: str) -> np.ndarray:
    return load_label(str(out / "VOC2007" / "SegmentationClass" / f"{stem}.png"))


def classes_of(out) -> list:
    return (out / "classes.txt").read_text().split()


def compressed(mask: np.ndarray) -> dict:
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode()}


def uncompressed(mask: np.ndarray) -> dict:
    flat = mask.astype(np.uint8).ravel(order="F")  # COCO runs go down the columns
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [2]])))
    return {"size": [HEIGHT, WIDTH], "counts": np.diff(np.concatenate([[0], changes])).tolist()[: len(changes)]}


def coco_export(annotations: list) -> dict:
    return {
        "info": {"description": "test", "version": "1.0"}, "licenses": [],
        "images": [{"id": 1, "file_name": "a.png", "width": WIDTH, "height": HEIGHT, "license": 0}],
        "categories": [{"id": 7, "name": "car", "supercategory": ""}, {"id": 3, "name": "road", "supercategory": ""}],
        "annotations": [{"id": i + 1, "image_id": 1, "area": 0, "bbox": [0, 0, 1, 1], "iscrowd": 0, **a}
                        for i, a in enumerate(annotations)],
    }  # fmt: skip


ROAD = np.zeros((HEIGHT, WIDTH), bool)
ROAD[20:, :] = True
CROWD = np.zeros((HEIGHT, WIDTH), bool)
CROWD[0:6, 0:10] = True
CAR = [[10.0, 14.0, 30.0, 14.0, 30.0, 26.0, 10.0, 26.0]]  # a rectangle over the road's edge


def test_coco_polygons_rle_and_crowd_by_the_overlap_rule(tmp_path):
    write_image(tmp_path / "images", "a.png")
    export = coco_export([
        {"category_id": 3, "segmentation": compressed(ROAD)},
        {"category_id": 7, "segmentation": CAR},
        {"category_id": 7, "segmentation": uncompressed(CROWD), "iscrowd": 1},
    ])  # fmt: skip
    (tmp_path / "instances.json").write_text(json.dumps(export))
    result, out = converted(tmp_path, "--format", "coco", "--annotations", tmp_path / "instances.json",
                            "--images_dir", tmp_path / "images")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert classes_of(out) == ["background", "road", "car"]  # category ids 3 then 7
    assert "0: background, 1: road, 2: car" in result.stdout
    label = label_of(out, "a")
    expected = np.zeros((HEIGHT, WIDTH), np.uint8)
    expected[ROAD], expected[CROWD] = 1, 2
    car = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(CAR, HEIGHT, WIDTH))).astype(bool)
    expected[car] = 2  # the car, smaller, drawn over the road
    assert (label == expected).mean() == 1.0
    assert car.sum() >= 20 * 12 * 0.9 and (label[14:26, 10:30] == 2).mean() > 0.9  # the polygon where it was drawn
    assert (out / "VOC2007" / "JPEGImages" / "a.png").read_bytes() == (tmp_path / "images" / "a.png").read_bytes()


@pytest.mark.parametrize(
    "case, annotation, message",
    [
        ("unknown class", {"category_id": 9, "segmentation": CAR}, "category_id 9 is not among the categories"),
        ("empty polygon", {"category_id": 7, "segmentation": [[1.0, 1.0, 5.0, 5.0]]}, "a polygon of 2 points"),
        ("self-intersecting polygon", {"category_id": 7, "segmentation": [[0.0, 0.0, 10.0, 10.0, 10.0, 0.0, 0.0, 4.0]]},
         "a self-intersecting polygon"),
        ("mask larger than its image", {"category_id": 3, "segmentation": {"size": [64, 64], "counts": [4096]}},
         "an RLE mask of 64x64 on an image of 40x32"),
    ],
)  # fmt: skip
def test_a_broken_coco_export_is_named_and_nothing_is_written(tmp_path, case, annotation, message):
    write_image(tmp_path / "images", "a.png")
    (tmp_path / "instances.json").write_text(json.dumps(coco_export([annotation])))
    args = ["--format", "coco", "--annotations", tmp_path / "instances.json", "--images_dir", tmp_path / "images"]
    result, out = converted(tmp_path, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr, case
    assert f"{tmp_path / 'instances.json'}: annotation 1 (a.png)" in result.stderr and message in result.stderr, case
    assert not os.path.exists(out / "VOC2007" / "SegmentationClass"), case
    if "polygon" in case:  # a bad shape can be left out instead
        result, out = converted(tmp_path, *args, "--drop_bad_shapes", "true")
        assert result.returncode == 0 and "Left out: " in result.stdout and (label_of(out, "a") == 0).all()


def test_a_missing_image_and_an_output_that_holds_files_are_refused(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "instances.json").write_text(json.dumps(coco_export([{"category_id": 7, "segmentation": CAR}])))
    args = ["--format", "coco", "--annotations", tmp_path / "instances.json", "--images_dir", tmp_path / "images"]
    result, _ = converted(tmp_path, *args)
    assert result.returncode == 2 and "a.png: its image is not in" in result.stderr
    labels = tmp_path / "VOCdevkit" / "VOC2007" / "SegmentationClass"
    labels.mkdir(parents=True)
    (labels / "mine.png").write_bytes(b"x")
    result, _ = converted(tmp_path, *args)
    assert (
        result.returncode == 2 and "holds files already" in result.stderr and (labels / "mine.png").read_bytes() == b"x"
    )


def cvat_rle(mask: np.ndarray) -> str:
    """CVAT's XML mask rle of a box's mask: runs alternating background and mask, background first, row by row."""
    flat = mask.astype(np.uint8).ravel()
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]]))
    return ", ".join(map(str, ([0] if flat[0] else []) + runs.tolist()))


def cvat_export(shapes: str) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task><id>4</id><name>streets</name><size>1</size><mode>annotation</mode>
      <labels>
        <label><name>road</name><color>#804080</color><type>any</type><attributes></attributes></label>
        <label><name>car</name><color>#00008e</color><type>any</type><attributes></attributes></label>
      </labels>
    </task>
    <dumped>2026-12-01 10:00:00.000000+00:00</dumped>
  </meta>
  <image id="0" name="frames/a.png" width="{WIDTH}" height="{HEIGHT}">
{shapes}
  </image>
</annotations>
"""


def test_cvat_xml_masks_polygons_boxes_and_z_order(tmp_path):
    write_image(tmp_path / "images", "a.png")
    part = ROAD[16:, 4:36]
    shapes = f"""    <mask label="road" source="manual" occluded="0" rle="{cvat_rle(part)}" left="4" top="16" width="32" height="16" z_order="0"></mask>
    <polygon label="car" source="manual" occluded="0" points="10.00,14.00;30.00,14.00;30.00,26.00;10.00,26.00" z_order="1"></polygon>
    <box label="road" source="manual" occluded="0" xtl="0.0" ytl="0.0" xbr="8.0" ybr="8.0" z_order="2"></box>
    <polyline label="road" source="manual" occluded="0" points="1.00,1.00;5.00,5.00" z_order="0"></polyline>"""  # noqa: E501
    (tmp_path / "annotations.xml").write_text(cvat_export(shapes))
    result, out = converted(tmp_path, "--format", "cvat", "--annotations", tmp_path / "annotations.xml",
                            "--images_dir", tmp_path / "images")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert classes_of(out) == ["background", "road", "car"]
    label = label_of(out, "a")
    road = np.zeros((HEIGHT, WIDTH), bool)
    road[16:, 4:36] = part
    assert (label[road & ~(label == 2)] == 1).all() and (label[14:26, 10:30] == 2).mean() > 0.9  # car on top (z 1)
    assert (label[0:8, 0:8] == 1).all()  # the box


@pytest.mark.parametrize(
    "case, shape, message",
    [
        ("mask larger than its image", '<mask label="road" rle="10, 20" left="30" top="20" width="20" height="20"/>',
         "a mask at (30, 20) of 20x20, larger than its image 40x32"),
        ("unknown label", '<polygon label="truck" points="1,1;9,1;9,9" z_order="0"></polygon>',
         "the label 'truck' is not among the task's labels"),
    ],
)  # fmt: skip
def test_a_broken_cvat_export_is_named(tmp_path, case, shape, message):
    write_image(tmp_path / "images", "a.png")
    (tmp_path / "annotations.xml").write_text(cvat_export(shape))
    result, _ = converted(tmp_path, "--format", "cvat", "--annotations", tmp_path / "annotations.xml",
                          "--images_dir", tmp_path / "images")  # fmt: skip
    assert result.returncode == 2 and "image frames/a.png" in result.stderr and message in result.stderr, case


def test_cvat_segmentation_mask_export(tmp_path):
    export = tmp_path / "export"
    write_image(export / "JPEGImages", "a.png")
    (export / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\nroad:128,64,128::\ncar:0,0,142::\n"
    )
    colours = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    colours[ROAD], colours[2:8, 2:9] = (128, 64, 128), (0, 0, 142)
    (export / "SegmentationClass").mkdir()
    Image.fromarray(colours).save(export / "SegmentationClass" / "a.png")
    result, out = converted(tmp_path, "--format", "cvat_masks", "--annotations", export,
                            "--images_dir", export / "JPEGImages")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    expected = np.zeros((HEIGHT, WIDTH), np.uint8)
    expected[ROAD], expected[2:8, 2:9] = 1, 2
    assert classes_of(out) == ["background", "road", "car"] and (label_of(out, "a") == expected).all()


def test_label_studio_brush_polygons_rectangles_and_its_upload_names(tmp_path):
    write_image(tmp_path / "uploads", "cat.jpg")
    write_image(tmp_path / "uploads", "dog one.png")
    export = os.path.join(DATA, "labelstudio_export.json")
    result, out = converted(tmp_path, "--format", "labelstudio", "--annotations", export,
                            "--images_dir", tmp_path / "uploads")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert classes_of(out) == ["background", "road", "building", "tree"]  # as they first appear
    cat = label_of(out, "cat")
    assert (cat[20:, :][cat[20:, :] != 2] == 1).all()  # the brush's road
    assert (cat[4:16, 4:20] == 2).mean() > 0.95  # the polygon, 10-50 % of the image
    assert (cat[4:12, 30:35] == 3).mean() > 0.95  # the rectangle, x 75-87.5 %, y 12.5-37.5 %
    dog = label_of(out, "dog one")  # the later, not cancelled annotation: a building brushed
    assert (dog[2:6, 30:36] == 2).all() and dog.sum() == 2 * 4 * 6


def test_a_label_studio_brush_of_another_size_is_named(tmp_path):
    tasks = json.loads(open(os.path.join(DATA, "labelstudio_export.json")).read())[:1]
    tasks[0]["annotations"][0]["result"][0]["original_width"] = 80
    (tmp_path / "broken.json").write_text(json.dumps(tasks))
    write_image(tmp_path / "uploads", "cat.jpg")
    result, _ = converted(tmp_path, "--format", "labelstudio", "--annotations", tmp_path / "broken.json",
                          "--images_dir", tmp_path / "uploads")  # fmt: skip
    assert result.returncode == 2 and "task 1 (8f2e1a4b-cat.jpg), brushlabels 'road'" in result.stderr
    assert "drawn on an image of 80x32" in result.stderr
