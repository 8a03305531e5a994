"""convert_labels.py on a corpus written in each tool's own format from known labels: how many pixels come back as
they were. The labels are seeded shapes of three classes (ellipses, rotated rectangles, triangles; none touching),
written as each tool writes them:

    coco_rle      COCO instances JSON, one compressed RLE per object (pycocotools' encoder)
    coco_polygon  COCO instances JSON, one polygon per object (the object's outline, OpenCV's contour)
    cvat          CVAT for images 1.1 XML: masks (CVAT's box RLE) for half the objects, polygons for the rest
    cvat_masks    CVAT's Segmentation mask 1.1 export (labelmap.txt, colour PNGs)
    labelstudio   Label Studio's JSON: brush masks (Label Studio's own encoder, label_studio_sdk's mask2rle, run by
                  --labelstudio_python) for half the objects, polygons in percent for the rest

    $ python benchmarks/converter_roundtrip.py --labelstudio_python /path/to/venv-with-label-studio-sdk/bin/python

A polygon is an outline through pixel centres: rasterised again, its edge pixels may fall either way, so polygon
formats agree to about the share of edge pixels; masks must agree exactly.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ["background", "ellipse", "box", "triangle"]
COLOURS = [(0, 0, 0), (200, 40, 40), (40, 200, 40), (40, 40, 200)]
HEIGHT, WIDTH = 96, 128
# The formats that write some objects as polygons: which (by the object's number in its image).
POLYGONS = {"coco_polygon": lambda number: True, "cvat": lambda n: n % 2 == 1, "labelstudio": lambda n: n % 2 == 1}


def corpus(count: int, seed: int) -> list:
    """[(name, label uint8 (H, W), objects [(class id, bool mask)])]: seeded shapes that do not touch."""
    rng, images = np.random.default_rng(seed), []
    for index in range(count):
        label, objects = np.zeros((HEIGHT, WIDTH), np.uint8), []
        for _ in range(rng.integers(2, 6)):
            kind, canvas = int(rng.integers(1, 4)), np.zeros((HEIGHT, WIDTH), np.uint8)
            centre, size = rng.uniform([12, 12], [WIDTH - 12, HEIGHT - 12]), rng.uniform(6, 18)
            if kind == 1:
                box = (tuple(float(v) for v in centre), (2 * size, 1.2 * size), float(rng.uniform(0, 180)))
                cv2.ellipse(canvas, box, 1, -1)
            else:
                corners = 4 if kind == 2 else 3
                angles = rng.uniform(0, 2 * np.pi) + np.arange(corners) * 2 * np.pi / corners
                points = centre + size * np.stack([np.cos(angles), np.sin(angles)], axis=1)
                cv2.fillPoly(canvas, [points.round().astype(np.int32)], 1)
            grown = cv2.dilate(canvas, np.ones((5, 5), np.uint8))
            if canvas.any() and not label[grown > 0].any():  # none touching: no overlap rule in play
                label[canvas > 0] = kind
                objects.append((kind, canvas > 0))
        images.append((f"img_{index:03d}.png", label, objects))
    return images


def outline(mask: np.ndarray) -> list:
    """The object's outer contour as [x, y, ...] through pixel centres."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return max(contours, key=cv2.contourArea).reshape(-1, 2).astype(float).ravel().tolist()


def write_images(folder: str, images: list) -> None:
    os.makedirs(folder, exist_ok=True)
    for name, label, _ in images:
        picture = np.array(COLOURS, np.uint8)[label] // 2 + 60
        Image.fromarray(picture).save(os.path.join(folder, name))


def coco(images: list, polygons: bool) -> dict:
    """An instances JSON as COCO writes it, one annotation per object."""
    export = {"images": [], "annotations": [], "categories": []}
    export["categories"] = [{"id": c, "name": n, "supercategory": ""} for c, n in enumerate(CLASSES) if c]
    for image_id, (name, _, objects) in enumerate(images, 1):
        export["images"].append({"id": image_id, "file_name": name, "width": WIDTH, "height": HEIGHT})
        for kind, mask in objects:
            if polygons:
                segmentation = [outline(mask)]
            else:
                segmentation = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
                segmentation["counts"] = segmentation["counts"].decode()
            area, box = float(mask.sum()), cv2.boundingRect(mask.astype(np.uint8))
            export["annotations"].append({"id": len(export["annotations"]) + 1, "image_id": image_id,
                                          "category_id": kind, "segmentation": segmentation, "area": area,
                                          "bbox": list(box), "iscrowd": 0})  # fmt: skip
    return export


def cvat_rle(mask: np.ndarray) -> str:
    """CVAT's XML mask rle of a box's mask: runs alternating background and mask, background first, row by row."""
    flat = mask.astype(np.uint8).ravel()
    runs = np.diff(np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]]))
    return ", ".join(map(str, ([0] if flat[0] else []) + runs.tolist()))


def cvat_xml(images: list) -> str:
    """CVAT for images 1.1: a mask (its bounding box's RLE) for every other object, a polygon for the rest."""
    labels = "".join(f"<label><name>{n}</name><type>any</type></label>" for n in CLASSES[1:])
    body = []
    for index, (name, _, objects) in enumerate(images):
        shapes = []
        for number, (kind, mask) in enumerate(objects):
            if number % 2:
                xy = np.array(outline(mask)).reshape(-1, 2)
                points = ";".join(f"{x:.2f},{y:.2f}" for x, y in xy)
                shapes.append(f'<polygon label="{CLASSES[kind]}" points="{points}" z_order="0"></polygon>')
            else:
                x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
                rle = cvat_rle(mask[y : y + h, x : x + w])
                attributes = f'left="{x}" top="{y}" width="{w}" height="{h}" z_order="0"'
                shapes.append(f'<mask label="{CLASSES[kind]}" rle="{rle}" {attributes}></mask>')
        body.append(f'<image id="{index}" name="{name}" width="{WIDTH}" height="{HEIGHT}">{"".join(shapes)}</image>')
    meta = f"<meta><task><labels>{labels}</labels></task></meta>"
    return (
        f'<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version>{meta}{"".join(body)}</annotations>'
    )


def cvat_masks(images: list, folder: str) -> None:
    """CVAT's Segmentation mask 1.1: labelmap.txt and one colour PNG per image."""
    os.makedirs(os.path.join(folder, "SegmentationClass"))
    lines = [f"{n}:{','.join(map(str, c))}::" for n, c in zip(CLASSES, COLOURS)]
    with open(os.path.join(folder, "labelmap.txt"), "w") as f:
        f.write("# label:color_rgb:parts:actions\n" + "\n".join(lines) + "\n")
    for name, label, _ in images:
        Image.fromarray(np.array(COLOURS, np.uint8)[label]).save(os.path.join(folder, "SegmentationClass", name))


def label_studio(images: list, python: str, work: str) -> list:
    """Label Studio's JSON export: brushes (RLE by label_studio_sdk's mask2rle, in `python`) for every other object,
    polygons in percent of the image for the rest."""
    brushes = [mask for _, _, objects in images for number, (_, mask) in enumerate(objects) if number % 2 == 0]
    masks = os.path.join(work, "brushes.npz")
    np.savez(masks, *[m.astype(np.uint8) * 255 for m in brushes])
    script = "import json, sys, numpy as np; from label_studio_sdk.converter.brush import mask2rle\n"
    script += "masks = np.load(sys.argv[1]); print(json.dumps([mask2rle(masks[k]) for k in masks.files]))"
    result = subprocess.run([python, "-c", script, masks], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"--labelstudio_python could not encode the brushes:\n{result.stderr[-2000:]}")
    rles, tasks = iter(json.loads(result.stdout)), []
    for task_id, (name, _, objects) in enumerate(images, 1):
        results = []
        for number, (kind, mask) in enumerate(objects):
            base = {"id": f"r{task_id}_{number}", "from_name": "tag", "to_name": "image", "original_width": WIDTH,
                    "original_height": HEIGHT, "image_rotation": 0}  # fmt: skip
            if number % 2 == 0:
                value = {"format": "rle", "rle": next(rles), "brushlabels": [CLASSES[kind]]}
                results.append({**base, "type": "brushlabels", "value": value})
            else:
                xy = np.array(outline(mask)).reshape(-1, 2) / [WIDTH, HEIGHT] * 100
                value = {"points": xy.tolist(), "closed": True, "polygonlabels": [CLASSES[kind]]}
                results.append({**base, "type": "polygonlabels", "value": value})
        annotation = {"id": task_id, "was_cancelled": False, "result": results}
        tasks.append({"id": task_id, "data": {"image": f"/data/upload/1/ab12cd34-{name}"}, "annotations": [annotation]})
    return tasks


def rasterised(images: list, polygon) -> list:
    """The corpus with each object that `polygon(number)` says is written as a polygon replaced by its outline as
    pycocotools rasterises it: the polygon's pixels by COCO's definition (CVAT's exports use the same)."""
    redrawn = []
    for name, label, objects in images:
        label = label.copy()
        for number, (kind, mask) in enumerate(objects):
            if polygon(number):
                label[mask] = 0
                rle = coco_mask.merge(coco_mask.frPyObjects([outline(mask)], HEIGHT, WIDTH))
                label[coco_mask.decode(rle) > 0] = kind
        redrawn.append((name, label, objects))
    return redrawn


def agreement(out: str, images: list) -> tuple:
    """(share of pixels equal to the truth, of object pixels equal) over the corpus."""
    same = objects = same_objects = total = 0
    for name, label, _ in images:
        stem = os.path.splitext(name)[0]
        converted = np.asarray(Image.open(os.path.join(out, "VOC2007", "SegmentationClass", f"{stem}.png")))
        same, total = same + int((converted == label).sum()), total + label.size
        mask = (label > 0) | (converted > 0)
        same_objects, objects = same_objects + int((converted == label)[mask].sum()), objects + int(mask.sum())
    return same / total, same_objects / max(objects, 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=40, help="images in the corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labelstudio_python", default="", help="a Python with label-studio-sdk (else skipped)")
    args = parser.parse_args()
    images = corpus(args.images, args.seed)
    with tempfile.TemporaryDirectory() as work:
        folder = os.path.join(work, "images")
        write_images(folder, images)
        exports = {"coco_rle": ("coco", "coco_rle.json", coco(images, polygons=False))}
        exports["coco_polygon"] = ("coco", "coco_polygon.json", coco(images, polygons=True))
        exports["cvat"] = ("cvat", "annotations.xml", cvat_xml(images))
        cvat_masks(images, os.path.join(work, "cvat_masks"))
        exports["cvat_masks"] = ("cvat_masks", "cvat_masks", None)
        if args.labelstudio_python:
            exports["labelstudio"] = (
                "labelstudio",
                "project.json",
                label_studio(images, args.labelstudio_python, work),
            )
        for name, (kind, file_name, content) in exports.items():
            path = os.path.join(work, file_name)
            if content is not None:
                with open(path, "w") as f:
                    f.write(content if isinstance(content, str) else json.dumps(content))
            out = os.path.join(work, f"out_{name}")
            command = [sys.executable, os.path.join(ROOT, "convert_labels.py"), "--format", kind, "--annotations", path]
            command += ["--images_dir", folder, "--vocdevkit_path", out, "--classes", *CLASSES]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode:
                print(f"{name:<13} FAILED: {result.stderr.strip()[-400:]}")
                continue
            pixels, objects = agreement(out, images)
            line = f"{name:<13} pixels equal {pixels:.4%}   object pixels equal {objects:.4%}"
            if name in POLYGONS:  # and against the polygons' own pixels
                pixels, objects = agreement(out, rasterised(images, POLYGONS[name]))
                line += f"   against the polygons rasterised: {pixels:.4%}, object pixels {objects:.4%}"
            print(line)
            shutil.rmtree(out)
    if not args.labelstudio_python:
        print("labelstudio   skipped: --labelstudio_python (a Python with label-studio-sdk) encodes its brushes")


if __name__ == "__main__":
    main()
