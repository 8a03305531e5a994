"""voc_annotation.py's step for multi-label data: one mask per class and image (utils/multilabel.py's layout) read,
checked and packed into VOC2007/SegmentationClass, which the rest of the tool then reads as labels. The user's masks
are only read; SegmentationClass is written only when it is empty or holds an earlier packing (PACKED_MARK)."""

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from utils.files.atomic import write_atomically, write_text
from utils.files.images import dataset_class_names, index_images
from utils.multilabel import IGNORE_DIR, LABELS_DIR, PACKED_MARK, check_label_count, label_folders, pack


@dataclass(frozen=True)
class Packing:
    """What voc_annotation.py reports: the classes in bit order, the labels written and the masks per class."""

    names: list
    written: int
    masks_per_class: dict


def read_mask(path: str) -> np.ndarray:
    """bool (H, W): the class's pixels of a mask (0 = not the class, one other value = the class; a grey RGB is
    taken as its grey). ValueError naming the file when it holds more than two values or colour."""
    with Image.open(path) as image:
        array = np.asarray(image.convert("L") if image.mode in ("RGB", "RGBA", "LA") else image)
        if image.mode in ("RGB", "RGBA") and np.any(np.ptp(np.asarray(image.convert("RGB")), axis=-1)):
            raise ValueError(f"{path}: a colour mask; expected one value per pixel (0 = not the class).")
    values = np.unique(array)
    if len(values) > 2 or (len(values) == 2 and values[0] != 0):
        raise ValueError(
            f"{path}: values {values[:8].tolist()}{' ...' if len(values) > 8 else ''}; expected 0 (not the class) and "
            "one other value (the class), e.g. 0 and 255 or 0 and 1. Save the mask as a PNG without smoothing "
            "(anti-aliased edges and JPEG give in-between values)."
        )
    return array > 0


def class_order(voc_root: str, folders: list) -> list:
    """The classes in bit order: classes.txt's when it names exactly the folders, else the folders sorted (and
    classes.txt is then written). ValueError when classes.txt names other classes."""
    names = dataset_class_names(voc_root)
    if names and sorted(names) != folders:
        raise ValueError(
            f"{voc_root}/classes.txt names {names}, but {LABELS_DIR}/ has the class folders {folders}. For multi-label "
            "data it lists the folders, one a line, in the order of the network's outputs: fix it or remove it."
        )
    return names or folders


def check_target(label_dir: str) -> None:
    """ValueError when SegmentationClass holds labels that an earlier packing did not write."""
    ours = os.path.isfile(os.path.join(label_dir, PACKED_MARK))
    if os.path.isdir(label_dir) and os.listdir(label_dir) and not ours:
        raise ValueError(
            f"{label_dir} holds labels, and {LABELS_DIR}/ holds multi-label masks that would be packed there. Move "
            f"one of them away: class-id labels (one class a pixel) or per-class masks ({LABELS_DIR}/<class>/<id>.png)."
        )


def pack_image(voc: str, names: list, image_id: str, masks_of: dict) -> np.ndarray:
    """uint8 packed label of one image from its class masks (a class without a mask: none of it) and _ignore."""
    root = os.path.join(voc, LABELS_DIR)
    masks, shapes = {}, {}
    for name in [*names, IGNORE_DIR]:
        path = masks_of.get(name, {}).get(image_id)
        if path:
            masks[name] = read_mask(path)
            shapes[path] = masks[name].shape
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{os.path.relpath(p, root)} {s[1]}x{s[0]}" for p, s in shapes.items())
        raise ValueError(f"{image_id}: its masks differ in size ({listed}); expected one size, the image's.")
    shape = next(iter(shapes.values()))
    stacked = np.stack([masks.get(name, np.zeros(shape, bool)) for name in names])
    return pack(stacked, masks.get(IGNORE_DIR))


def pack_labels(voc: str, voc_root: str, dry_run: bool = False) -> Packing | None:
    """Packs VOC2007/SegmentationLabels into VOC2007/SegmentationClass (None when there is no such folder). An image
    with a mask in no class folder stays unlabelled; one missing from some folders has none of those classes."""
    folders = label_folders(voc)
    if not folders:
        return None
    check_label_count(len(folders), f"{voc}/{LABELS_DIR}")
    names = class_order(voc_root, folders)
    label_dir = os.path.join(voc, "SegmentationClass")
    check_target(label_dir)
    masks_of = {name: index_images(os.path.join(voc, LABELS_DIR, name), ".png") for name in [*names, IGNORE_DIR]}
    labelled = sorted(set().union(*(masks_of[name] for name in names)))
    packed = {image_id: pack_image(voc, names, image_id, masks_of) for image_id in labelled}  # all checked first
    if not dry_run:
        os.makedirs(label_dir, exist_ok=True)
        for stale in set(index_images(label_dir, ".png")) - set(packed):  # an earlier packing's, now unlabelled
            os.remove(os.path.join(label_dir, f"{stale}.png"))
        write_text(os.path.join(label_dir, PACKED_MARK), "\n".join(names) + "\n")  # the classes, in bit order
        for image_id, label in packed.items():
            path = os.path.join(label_dir, f"{image_id}.png")
            write_atomically(path, lambda temporary, label=label: Image.fromarray(label).save(temporary, "PNG"), ".png")
        if not dataset_class_names(voc_root):
            write_text(os.path.join(voc_root, "classes.txt"), "".join(f"{name}\n" for name in names))
    return Packing(names, len(packed), {name: len(masks_of[name]) for name in names})
