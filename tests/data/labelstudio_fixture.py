"""Writes labelstudio_export.json, the Label Studio export tests/test_convert_labels.py converts, with Label Studio's
own brush encoder (label_studio_sdk.converter.brush.mask2rle), so the test reads the format as the tool writes it:

    $ pip install label-studio-sdk numpy && python tests/data/labelstudio_fixture.py

The image is 40 x 32 (cat.jpg, uploaded as 8f2e1a4b-cat.jpg): road the bottom 12 rows (brush), building a polygon,
tree a rectangle (percent of the image, as Label Studio stores them); a second task's cancelled annotation is ignored.
"""

import json
import os

import numpy as np
from label_studio_sdk.converter.brush import mask2rle

WIDTH, HEIGHT = 40, 32


def result(kind: str, label: str, value: dict) -> dict:
    return {"id": f"{kind[:4]}{label}", "type": kind, "from_name": "tag", "to_name": "image", "origin": "manual",
            "original_width": WIDTH, "original_height": HEIGHT, "image_rotation": 0,
            "value": {**value, kind: [label]}}  # fmt: skip


def brush(mask: np.ndarray) -> dict:
    return {"format": "rle", "rle": mask2rle(mask)}


road = np.zeros((HEIGHT, WIDTH), np.uint8)
road[20:, :] = 255
speck = np.zeros((HEIGHT, WIDTH), np.uint8)
speck[2:6, 30:36] = 255  # a building painted with the brush on the second image
results = [
    result("brushlabels", "road", brush(road)),
    result("polygonlabels", "building", {"points": [[10, 10], [50, 10], [50, 50], [10, 50]], "closed": True}),
    result("rectanglelabels", "tree", {"x": 75, "y": 12.5, "width": 12.5, "height": 25, "rotation": 0}),
]
tasks = [
    {"id": 1, "data": {"image": "/data/upload/1/8f2e1a4b-cat.jpg"}, "annotations": [
        {"id": 11, "completed_by": 1, "was_cancelled": False, "result": results}]},
    {"id": 2, "data": {"image": "/data/upload/1/0a1b2c3d-dog%20one.png"}, "annotations": [
        {"id": 21, "was_cancelled": True, "result": [result("brushlabels", "road", brush(road))]},
        {"id": 22, "was_cancelled": False, "result": [result("brushlabels", "building", brush(speck))]}]},
]  # fmt: skip
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "labelstudio_export.json"), "w") as f:
    json.dump(tasks, f)
