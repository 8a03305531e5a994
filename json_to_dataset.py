r"""Convert labelme JSON files into the VOC layout: images and class-index PNG labels, plus classes.txt.

Polygons, rectangles, circles and masks are drawn in file order (a later shape covers an earlier one);
lines and points have no area and are skipped with a note. The image comes from the JSON's imageData, or
from its imagePath (relative to the JSON file), or from an image of the same name beside it. Unknown labels
and malformed files are reported without stopping the rest; existing files are never overwritten.

    $ python json_to_dataset.py --json_dir datasets/before                     # classes: every label found
    $ python json_to_dataset.py --json_dir datasets/before --classes _background_ cat dog
    $ python voc_annotation.py                                                 # then check and split
"""

import base64
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from tqdm import tqdm

from utils.config import run_main
from utils.files.atomic import check_writable
from utils.files.images import IGNORE_LABEL, IMAGE_SUFFIXES
from utils.labels.fix import save_label

BACKGROUND = "_background_"
AREA_SHAPES = ("polygon", "rectangle", "circle", "mask")
FORMAT_SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "BMP": ".bmp", "TIFF": ".tif"}


@dataclass
class JsonConfig:
    json_dir: str = "datasets/before"  # folder of labelme .json files (and their images)
    vocdevkit_path: str = "VOCdevkit"  # output root: VOC2007/JPEGImages and VOC2007/SegmentationClass
    classes: list[str] = field(default_factory=list)  # names in class-id order, _background_ first; empty = all found


def read_image_bytes(data: dict, json_path: str) -> bytes:
    """The image of a labelme file: imageData, else imagePath (relative to the JSON), else a same-named image."""
    if data.get("imageData"):
        return base64.b64decode(data["imageData"])
    folder, stem = os.path.dirname(json_path), os.path.splitext(os.path.basename(json_path))[0]
    candidates = []
    if data.get("imagePath"):
        candidates.append(os.path.join(folder, data["imagePath"].replace("\\", "/")))
    candidates += [os.path.join(folder, stem + suffix) for suffix in IMAGE_SUFFIXES]
    for path in candidates:
        if os.path.isfile(path):
            with open(path, "rb") as f:
                return f.read()
    raise ValueError(f"no imageData, and its image is not at {candidates[0]}")


def draw_shape(label: Image.Image, shape: dict, class_id: int) -> None:
    """Fills one labelme shape with class_id on an L-mode label image (points are (x, y) pixels)."""
    points = [tuple(map(float, p)) for p in shape["points"]]
    kind = shape.get("shape_type") or "polygon"  # old labelme files have no shape_type
    draw = ImageDraw.Draw(label)
    if kind == "polygon":
        if len(points) < 3:
            raise ValueError(f"polygon with {len(points)} points")
        draw.polygon(points, fill=class_id)
    elif kind == "rectangle":
        (x0, y0), (x1, y1) = points[:2]
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=class_id)
    elif kind == "circle":
        (cx, cy), (px, py) = points[:2]
        radius = float(np.hypot(px - cx, py - cy))
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=class_id)
    elif kind == "mask":
        mask = Image.open(io.BytesIO(base64.b64decode(shape["mask"]))).convert("1")
        x0, y0 = (int(round(v)) for v in points[0])
        label.paste(class_id, (x0, y0), mask)


def convert_file(json_path: str, classes: list, image_dir: str, label_dir: str):
    """Writes one labelme file's image and label. Returns (written image name, [notes]); ValueError if malformed."""
    try:
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
        shapes = data["shapes"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"not a labelme JSON file ({type(error).__name__}: {error})") from None
    image_bytes = read_image_bytes(data, json_path)
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            image_format, size = image.format, ImageOps.exif_transpose(image).size  # annotated upright
    except OSError as error:
        raise ValueError(f"its image cannot be read ({error})") from None
    notes = []
    if (data.get("imageWidth"), data.get("imageHeight")) not in ((None, None), size):
        notes.append(
            f"imageWidth/Height {data['imageWidth']}x{data['imageHeight']} but the image is {size[0]}x{size[1]}"
        )
    label = Image.new("L", size, 0)
    for shape in shapes:
        kind = shape.get("shape_type") or "polygon"
        name = shape.get("label", "")
        if kind not in AREA_SHAPES:
            notes.append(f"{kind} '{name}' skipped (no area)")
        elif name not in classes:
            notes.append(f"unknown label '{name}' skipped (not in classes)")
        else:
            try:
                draw_shape(label, shape, classes.index(name))
            except (ValueError, KeyError, TypeError, OSError) as error:
                notes.append(f"{kind} '{name}' skipped: malformed ({error})")
    if image_format not in FORMAT_SUFFIX:  # e.g. WebP: stored as PNG, which the data loader reads
        buffer = io.BytesIO()
        Image.open(io.BytesIO(image_bytes)).save(buffer, "PNG")
        image_bytes = buffer.getvalue()
    stem = os.path.splitext(os.path.basename(json_path))[0]
    image_name = stem + FORMAT_SUFFIX.get(image_format, ".png")
    buffer = io.BytesIO()
    save_label(np.asarray(label), buffer)
    outputs = {
        os.path.join(image_dir, image_name): image_bytes,
        os.path.join(label_dir, stem + ".png"): buffer.getvalue(),
    }
    for path, content in outputs.items():
        if os.path.exists(path):
            with open(path, "rb") as f:
                if f.read() != content:
                    raise ValueError(f"{path} exists with other content; not overwritten (move it away to convert)")
    for path, content in outputs.items():
        with open(path, "wb") as f:
            f.write(content)
    return image_name, notes


def collect_classes(json_paths) -> list:
    """_background_ and every label with an area in the files, sorted."""
    names = set()
    for path in json_paths:
        try:
            with open(path, encoding="utf-8") as f:
                shapes = json.load(f).get("shapes", [])
            names |= {s.get("label", "") for s in shapes if (s.get("shape_type") or "polygon") in AREA_SHAPES}
        except (OSError, json.JSONDecodeError, AttributeError):
            continue  # reported when the file is converted
    return [BACKGROUND] + sorted(names - {BACKGROUND})


def main(config: JsonConfig) -> None:
    if not os.path.isdir(config.json_dir):
        raise ValueError(f"json_dir={config.json_dir!r}: no such folder. Expected a folder of labelme .json files.")
    json_paths = sorted(
        os.path.join(config.json_dir, n) for n in os.listdir(config.json_dir) if n.lower().endswith(".json")
    )
    if not json_paths:
        raise ValueError(f"{config.json_dir} holds no .json files.")
    classes = list(config.classes) or collect_classes(json_paths)
    if len(classes) > IGNORE_LABEL:
        raise ValueError(f"{len(classes)} classes: labels hold at most {IGNORE_LABEL} ({IGNORE_LABEL} is 'ignore').")
    if classes[0] != BACKGROUND:
        raise ValueError(f"classes must start with {BACKGROUND} (class 0), got {classes[0]!r}.")
    classes_file = os.path.join(config.vocdevkit_path, "classes.txt")
    if os.path.isfile(classes_file):
        with open(classes_file, encoding="utf-8") as f:
            existing = [line.strip() for line in f if line.strip()]
        if existing != classes:
            raise ValueError(
                f"{classes_file} lists other classes ({', '.join(existing)}) than these ({', '.join(classes)}): "
                "class ids would not match the labels already converted. Pass --classes with the existing list, "
                "or convert into another --vocdevkit_path."
            )
    voc = os.path.join(config.vocdevkit_path, "VOC2007")
    image_dir, label_dir = os.path.join(voc, "JPEGImages"), os.path.join(voc, "SegmentationClass")
    for folder in (image_dir, label_dir):  # before any file is converted
        check_writable(folder, "vocdevkit_path", "VOCdevkit_labelme")
    converted, failed, notes = 0, [], []
    for path in tqdm(json_paths, desc="Converting", unit="file"):
        try:
            _, file_notes = convert_file(path, classes, image_dir, label_dir)
            converted += 1
            notes += [f"{path}: {note}" for note in file_notes]
        except ValueError as error:
            failed.append(f"{path}: {error}")
    with open(classes_file, "w", encoding="utf-8") as f:
        f.write("".join(f"{name}\n" for name in classes))
    print(f"Converted {converted} of {len(json_paths)} files into {voc}; classes ({len(classes)}) in {classes_file}:")
    print("  " + ", ".join(f"{i} {name}" for i, name in enumerate(classes)))
    if notes:
        print(f"Notes ({len(notes)}):\n  " + "\n  ".join(notes))
    print(f"Next: python voc_annotation.py --vocdevkit_path {config.vocdevkit_path} --num_classes {len(classes)}")
    if failed:
        raise ValueError(f"{len(failed)} files were not converted (the others were):\n  " + "\n  ".join(failed))


if __name__ == "__main__":
    run_main(main, JsonConfig, __doc__)
