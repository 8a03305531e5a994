"""CVAT's exports as ImageRecords: "CVAT for images 1.1" (annotations.xml: polygons, boxes, masks, with z_order)
and "Segmentation mask 1.1" (labelmap.txt and colour PNGs in SegmentationClass/)."""

import os
import xml.etree.ElementTree as ElementTree

import numpy as np
from PIL import Image

from utils.converters.shapes import ImageRecord, Problem, Shape, polygon_problem

AREA_KINDS = ("polygon", "box", "ellipse", "mask")  # the others (polyline, points, skeleton, tag, cuboid) fill nothing


def cvat_rle_mask(rle: str, width: int, height: int) -> np.ndarray:
    """bool (height, width) of a CVAT XML mask's rle: run lengths alternating background and mask, background first,
    row by row over the mask's box."""
    counts = np.array([int(float(v)) for v in rle.replace(" ", "").split(",") if v], np.int64)
    values = np.arange(len(counts)) % 2 == 1
    flat = np.repeat(values, counts)
    if flat.size != width * height:
        raise ValueError(f"its rle covers {flat.size} pixels, but its box {width}x{height} has {width * height}")
    return flat.reshape(height, width)


def parse_shape(element, record: ImageRecord, labels: list, where: str):
    """(Shape or None, Problem or None) of one child of an <image> element."""
    label, z_order = element.get("label", ""), int(float(element.get("z_order", 0)))
    where = f"{where}, {element.tag} of {label!r}"
    if label not in labels:
        return None, Problem(where, f"the label {label!r} is not among the task's labels {labels}: add it in CVAT.")
    if element.tag == "polygon":
        points = [float(v) for pair in element.get("points", "").split(";") if pair for v in pair.split(",")]
        why = polygon_problem(points)
        if why:
            return None, Problem(where, f"{why}: redraw it in CVAT.", drop=True)
        return Shape("polygon", label, points=(tuple(points),), z_order=z_order), None
    if element.tag == "box":
        corners = tuple(float(element.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
        return Shape("box", label, points=corners, z_order=z_order), None
    if element.tag == "ellipse":  # its outline as a polygon of a point every 2 degrees
        cx, cy, rx, ry = (float(element.get(k)) for k in ("cx", "cy", "rx", "ry"))
        angles = np.radians(np.arange(0, 360, 2.0))
        turn = np.radians(float(element.get("rotation", 0)))
        x, y = rx * np.cos(angles), ry * np.sin(angles)
        ring = np.stack([cx + x * np.cos(turn) - y * np.sin(turn), cy + x * np.sin(turn) + y * np.cos(turn)], 1)
        return Shape("polygon", label, points=(tuple(ring.ravel()),), z_order=z_order), None
    left, top, width, height = (int(float(element.get(k))) for k in ("left", "top", "width", "height"))
    if left < 0 or top < 0 or left + width > record.width or top + height > record.height:
        message = f"a mask at ({left}, {top}) of {width}x{height}, larger than its image {record.width}x{record.height}"
        return None, Problem(where, f"{message}: export it again from CVAT.")
    try:
        mask = cvat_rle_mask(element.get("rle", ""), width, height)
    except ValueError as error:
        return None, Problem(where, f"{error}: export it again from CVAT.")
    return Shape("mask", label, mask=mask, offset=(left, top), z_order=z_order), None


def read_cvat_xml(path: str) -> tuple:
    """(records, label names in the task's order, problems) of a CVAT for images 1.1 annotations.xml."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise ValueError(f"{path}: cannot be read as XML ({error}). Export it again (CVAT for images 1.1).") from None
    meta = root.find("meta")
    if root.tag != "annotations" or meta is None:
        raise ValueError(f"{path}: not a CVAT for images export (expected <annotations> with <meta>).")
    labels = [label.findtext("name") for label in meta.iter("label")]
    records, problems = [], []
    for image in root.iter("image"):
        record = ImageRecord(image.get("name"), int(image.get("width")), int(image.get("height")))
        for element in image:
            if element.tag not in AREA_KINDS:
                continue
            shape, problem = parse_shape(element, record, labels, f"{path}: image {record.name}")
            record.shapes += [shape] if shape else []
            problems += [problem] if problem else []
        records.append(record)
    return records, labels, problems


def read_labelmap(path: str) -> list:
    """[(name, (r, g, b))] of a CVAT / VOC labelmap.txt ("name:r,g,b:parts:actions" per line, # comments)."""
    entries = []
    for line in open(path, encoding="utf-8").read().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, colour = line.split(":")[:2]
        entries.append((name, tuple(int(v) for v in colour.split(","))))
    return entries


def read_cvat_masks(folder: str) -> tuple:
    """(records, class names (the labelmap's, background first), problems) of a Segmentation mask 1.1 export: each
    colour PNG of SegmentationClass/ one mask shape per class it holds."""
    labelmap = os.path.join(folder, "labelmap.txt")
    if not os.path.isfile(labelmap):
        raise ValueError(f"{folder}: no labelmap.txt, so not a CVAT Segmentation mask export. Unzip the export there.")
    entries = read_labelmap(labelmap)
    colours = {colour: name for name, colour in entries}
    records, problems = [], []
    masks = os.path.join(folder, "SegmentationClass")
    for file_name in sorted(os.listdir(masks)):
        image = np.asarray(Image.open(os.path.join(masks, file_name)).convert("RGB"))
        found, inverse = np.unique(image.reshape(-1, 3), axis=0, return_inverse=True)
        record = ImageRecord(os.path.splitext(file_name)[0], image.shape[1], image.shape[0])
        for index, colour in enumerate(map(tuple, found.tolist())):
            if colour not in colours:
                where = os.path.join(masks, file_name)
                problems.append(
                    Problem(where, f"colour {colour} is not in labelmap.txt: fix the mask or the labelmap.")
                )
            elif colours[colour] != entries[0][0]:
                mask = inverse.reshape(image.shape[:2]) == index
                record.shapes.append(Shape("mask", colours[colour], mask=mask))
        records.append(record)
    return records, [name for name, _ in entries[1:]], problems
