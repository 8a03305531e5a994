"""Label Studio's JSON export as ImageRecords: brush masks in its RLE, polygons and rectangles in percent of the image,
each task's latest annotation that was not cancelled. Image names as Label Studio stores them ("/data/upload/3/
8f2e1a4b-cat.jpg") are matched to the user's files by convert_labels.py (image_candidates)."""

import os
import re
from collections import Counter
from urllib.parse import unquote, urlparse

import numpy as np

from utils.converters.coco import read_json
from utils.converters.shapes import ImageRecord, Problem, Shape, polygon_problem

UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")  # what Label Studio puts before an uploaded file's name


def decode_brush(rle: list, width: int, height: int) -> np.ndarray:
    """bool (height, width) of a brush result's rle: thi.ng's rle-pack of the RGBA canvas (a 32-bit count of words,
    a 5-bit word size, four 4-bit run-length sizes, then runs: a repeat bit, a 2-bit size index, the run length, and
    one word repeated or that many words), the mask the alpha channel's painted pixels (>= 128)."""
    bits = np.unpackbits(np.asarray(rle, np.uint8))
    position = 0

    def read(size: int) -> int:
        nonlocal position
        value = int("".join(map(str, bits[position : position + size])) or "0", 2)
        position += size
        return value

    count, word_size = read(32), read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    if count != width * height * 4:
        raise ValueError(
            f"its rle holds {count} values, but an RGBA image of {width}x{height} has {width * height * 4}"
        )
    out, index = np.zeros(count, np.uint8), 0
    while index < count:
        repeat = read(1)
        end = index + 1 + read(sizes[read(2)])
        if repeat:
            out[index:end] = read(word_size)
            index = end
        else:
            for i in range(index, end):
                out[i] = read(word_size)
            index = end
    return out.reshape(height, width, 4)[..., 3] >= 128


def result_shape(result: dict, record: ImageRecord, where: str):
    """(Shape or None, Problem or None) of one result of an annotation; (None, None) for one that draws nothing."""
    value, kind = result.get("value", {}), result.get("type", "")
    names = value.get(kind) or value.get("labels") or []
    if kind not in ("brushlabels", "polygonlabels", "rectanglelabels") or not names:
        return None, None
    where = f"{where}, {kind} {names[0]!r}"
    width, height = int(result.get("original_width", record.width)), int(result.get("original_height", record.height))
    if (width, height) != (record.width, record.height):
        message = (
            f"drawn on an image of {width}x{height}, but the task's other results are on {record.width}x{record.height}"
        )
        return None, Problem(where, f"{message}: export it again.")
    if kind == "brushlabels":
        try:
            return Shape(
                "mask", names[0], mask=decode_brush(value.get("rle") or result.get("rle"), width, height)
            ), None
        except ValueError as error:
            return None, Problem(where, f"{error}: the mask does not fit its image; export it again.")
    if kind == "rectanglelabels":
        x, y = value["x"] * width / 100, value["y"] * height / 100
        w, h = value["width"] * width / 100, value["height"] * height / 100
        return Shape("polygon", names[0], points=(rotated_box(x, y, w, h, value.get("rotation", 0)),)), None
    points = tuple(v for x, y in value.get("points", []) for v in (x * width / 100, y * height / 100))
    why = polygon_problem(points)
    if why:
        return None, Problem(where, f"{why}: redraw it in Label Studio.", drop=True)
    return Shape("polygon", names[0], points=(points,)), None


def rotated_box(x: float, y: float, width: float, height: float, degrees: float) -> tuple:
    """A rectangle's corners (x0, y0, ...) px, rotated about its top-left corner as Label Studio rotates it."""
    turn = np.radians(degrees)
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    return tuple((corners @ rotation.T + [x, y]).ravel())


def task_image(task: dict) -> str:
    """The file name a task's image has in Label Studio (the URL's last part, unquoted)."""
    data = task.get("data", {})
    url = data.get("image") or next((v for v in data.values() if isinstance(v, str)), "")
    return unquote(os.path.basename(urlparse(url).path))


def read_labelstudio(path: str) -> tuple:
    """(records, label names in their first appearance's order, problems) of a Label Studio JSON export."""
    tasks = read_json(path)
    if not isinstance(tasks, list) or any(not isinstance(t, dict) or "data" not in t for t in tasks):
        raise ValueError(f"{path}: not a Label Studio JSON export (expected a list of tasks, each with data).")
    records, names, problems = [], [], []
    for task in tasks:
        annotations = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
        if not annotations:
            continue
        results = max(annotations, key=lambda a: a.get("id", 0)).get("result", [])
        sizes = Counter((int(r["original_width"]), int(r["original_height"])) for r in results if "original_width" in r)
        width, height = sizes.most_common(1)[0][0] if sizes else (0, 0)  # a result of another size is named
        record = ImageRecord(task_image(task), width, height)
        for result in results:
            shape, problem = result_shape(result, record, f"{path}: task {task.get('id')} ({record.name})")
            if shape:
                record.shapes.append(shape)
                names += [] if shape.label in names else [shape.label]
            problems += [problem] if problem else []
        records.append(record)
    return records, names, problems
