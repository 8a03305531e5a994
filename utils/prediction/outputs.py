"""What predict.py writes for a folder of images, and where. Nothing it writes replaces an input or another output:

    <dir_save_path>/<name>.png          the picture, drawn as mix_type says (save_picture)
    <dir_save_path>/masks/<name>.png    class ids at the image's size, palette colours: get_miou.py's format
                                        (save_mask)
    <dir_save_path>/probabilities/<name>.npy
                                        the class probabilities at the image's size, float16 (H, W, C), summing to 1
                                        over C: numpy.load(path, mmap_mode="r") reads a part without the whole
                                        (save_probabilities). Written a band of rows at a time through a memory
                                        map, so a large image's probabilities are never in memory whole (an .npz
                                        would have to be); a 10,000² image of 21 classes takes 4.2 GB of disk.
    <dir_save_path>/areas.csv           each image's pixels and area share per class (save_areas)
    <dir_save_path>/polygons/<name>.geojson
                                        each region of each class as a polygon (save_polygons)
    masks/<name>.tif, probabilities/<name>.tif
                                        for a georeferenced TIFF, the mask and probabilities with its
                                        georeference too (utils/prediction/geo.py)

<name> is the input's file name without its suffix, or with it (a_jpg, a_png) where two inputs share a stem. The
folders are checked before the model is loaded: not a file, writable, and not the folder of the inputs.
"""

import collections
import csv
import io
import os

import numpy as np

from utils.files.atomic import check_writable, write_atomically, write_text
from utils.multilabel import class_pixels

MASKS = "masks"
PROBABILITIES = "probabilities"
POLYGONS = "polygons"
AREAS = "areas.csv"


def shown_path(path: str) -> str:
    """A path as it can be printed: bytes that are not UTF-8 (a name from another system) shown as \\x.. escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def output_names(paths) -> list:
    """One output name per input, never twice: the stem, or stem_suffix for inputs that share a stem (a.jpg and
    a.png give a_jpg and a_png), numbered in the rare case that still collides."""
    stems = [os.path.splitext(os.path.basename(path)) for path in paths]
    shared = collections.Counter(stem for stem, _ in stems)
    names, taken = [], set()
    for stem, suffix in stems:
        name = f"{stem}_{suffix.lstrip('.').lower()}" if shared[stem] > 1 else stem
        unique, number = name, 1
        while unique in taken:
            number += 1
            unique = f"{name}_{number}"
        taken.add(unique)
        names.append(unique)
    return names


def check_save_folder(folder: str, setting: str, input_folder: str | None = None) -> None:
    """Before any prediction: the save folder can be written and is not the folder of the inputs (whose images
    the predictions would be written among, and over)."""
    if input_folder and os.path.isdir(folder) and os.path.samefile(folder, input_folder):
        raise ValueError(
            f"{setting}={folder!r} is the folder of the images to predict: the results would be written among them "
            f"and over any PNG of the same name. Choose another folder, e.g. --{setting} img_out."
        )
    check_writable(folder, setting, "img_out")


def area_row(name: str, mask: np.ndarray, num_classes: int, multilabel: int = 0) -> list:
    """[name, height, width, pixels of each class..., area % of each class...] of one image's mask (a multilabel
    head's: of each class's bit, the classes overlapping)."""
    if multilabel:
        counts = [int(class_pixels(mask, c, multilabel).sum()) for c in range(num_classes)]
    else:
        counts = np.bincount(mask.ravel(), minlength=num_classes)[:num_classes]
    return [name, *mask.shape, *map(int, counts), *(round(100 * c / mask.size, 4) for c in counts)]


def write_areas(folder: str, rows: list, class_names) -> str:
    """areas.csv: one row per image (area_row), written atomically; returns its path."""
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    header = ["image", "height", "width", *(f"{n} pixels" for n in class_names), *(f"{n} %" for n in class_names)]
    writer.writerow(header)
    writer.writerows(rows)
    path = os.path.join(folder, AREAS)
    write_text(path, table.getvalue())
    return path


def write_probabilities(path: str, bands, shape: tuple) -> None:
    """<name>.npy, float16 (H, W, C), from (top, float32 rows) bands (Unet.probabilities), atomically."""

    def write(temporary):
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.float16, shape=shape)
        for top, rows in bands:
            array[top : top + len(rows)] = rows
        array.flush()
        del array

    write_atomically(path, write, ".npy")
