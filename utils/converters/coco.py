"""COCO JSON (instances: polygons, RLE masks, iscrowd) as ImageRecords. pycocotools reads its RLE, compressed or
not, as COCO's own tools do."""

import json

from pycocotools import mask as coco_mask

from utils.converters.shapes import ImageRecord, Problem, Shape, polygon_problem


def read_json(path: str) -> object:
    """A JSON file; ValueError naming it when it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path}: cannot be read as JSON ({type(error).__name__}: {error}). Export it again."
        ) from None


def coco_rle_shape(segmentation: dict, record: ImageRecord, label: str, crowd: bool, where: str):
    """(Shape or None, Problem or None) of an RLE segmentation ({"size": [h, w], "counts": str or list})."""
    height, width = (int(v) for v in segmentation.get("size", (0, 0)))
    if (height, width) != (record.height, record.width):
        message = (
            f"an RLE mask of {width}x{height} on an image of {record.width}x{record.height}: it was made for another "
            "image. Export the annotations again from the tool."
        )
        return None, Problem(where, message)
    rle = segmentation
    if isinstance(segmentation["counts"], list):  # uncompressed
        rle = coco_mask.frPyObjects(segmentation, height, width)
    mask = coco_mask.decode(rle).astype(bool)
    return Shape("mask", label, mask=mask, crowd=crowd), None


def read_coco(path: str) -> tuple:
    """(records, class names in category-id order, problems) of a COCO JSON export; a shape with a problem is left
    out of its record."""
    data = read_json(path)
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise ValueError(f"{path}: not a COCO export (expected the keys images, annotations and categories).")
    categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
    names = [categories[i] for i in sorted(categories)]
    records = {
        int(i["id"]): ImageRecord(str(i["file_name"]), int(i["width"]), int(i["height"])) for i in data["images"]
    }
    problems = []
    for annotation in data["annotations"]:
        where = f"{path}: annotation {annotation.get('id')}"
        record = records.get(int(annotation.get("image_id", -1)))
        if record is None:
            problems.append(
                Problem(where, f"image_id {annotation.get('image_id')} is not among the images: fix the export.")
            )
            continue
        where += f" ({record.name})"
        label = categories.get(int(annotation.get("category_id", -1)))
        if label is None:
            category = annotation.get("category_id")
            message = f"category_id {category} is not among the categories: add it, or remove the annotation."
            problems.append(Problem(where, message))
            continue
        crowd, segmentation = bool(annotation.get("iscrowd", 0)), annotation.get("segmentation")
        if isinstance(segmentation, dict):
            shape, problem = coco_rle_shape(segmentation, record, label, crowd, where)
        elif segmentation:
            why = next(filter(None, (polygon_problem(ring) for ring in segmentation)), "")
            shape = Shape("polygon", label, points=tuple(tuple(ring) for ring in segmentation), crowd=crowd)
            problem = Problem(where, f"{why}: redraw it in the tool.", drop=True) if why else None
        else:
            shape, problem = None, Problem(where, "no segmentation (a box only): draw its outline.", drop=True)
        record.shapes += [shape] if shape and not problem else []  # a bad shape is reported, never drawn
        problems += [problem] if problem else []
    return list(records.values()), names, problems
