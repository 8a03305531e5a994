"""ImageRecords written as a VOC tree: each record's image found among the user's files and copied (never moved or
changed), its label drawn (shapes.draw_record) as a class-id PNG, and classes.txt; every problem found before a
file is written."""

import os
import shutil

from PIL import Image

from utils.converters.labelstudio import UPLOAD_PREFIX
from utils.converters.shapes import Problem, draw_record
from utils.files.atomic import write_atomically, write_text
from utils.files.images import IMAGE_SUFFIXES
from utils.labels.fix import save_label

BACKGROUND = "background"


def image_candidates(name: str) -> list:
    """The file names an export's image name may have among the user's files: as given (a relative path), its
    base name, without Label Studio's upload prefix, and, for a name without a suffix, with each image suffix."""
    base = os.path.basename(name.replace("\\", "/"))
    names = [name, base, UPLOAD_PREFIX.sub("", base)]
    if not os.path.splitext(base)[1]:
        names += [base + suffix for suffix in IMAGE_SUFFIXES]
    return list(dict.fromkeys(names))


def find_image(images_dir: str, name: str) -> str:
    """The path of the record's image in images_dir, or ""."""
    for candidate in image_candidates(name):
        path = os.path.join(images_dir, candidate)
        if os.path.isfile(path):
            return path
    return ""


def class_list(found: list, given: list, problems: list, where: str) -> list:
    """The classes in id order, the background first: `given` (its first name the background), or the export's
    order after a background; a class of the export missing from `given` is a problem."""
    if not given:
        return [BACKGROUND] + [name for name in found if name != BACKGROUND]
    for name in found:
        if name not in given[1:]:
            message = f"the class {name!r} is not among --classes {given}: add it (class ids follow that order)."
            problems.append(Problem(where, message))
    return list(given)


def matched_images(records: list, images_dir: str, problems: list) -> dict:
    """{record index: image path} of the records whose image is found and has the size the export says."""
    found, stems = {}, {}
    for index, record in enumerate(records):
        path = find_image(images_dir, record.name)
        if not path:
            tried = ", ".join(image_candidates(record.name)[:3])
            message = f"its image is not in {images_dir} (tried {tried}): put it there, or point --images_dir at it."
            problems.append(Problem(record.name, message))
            continue
        with Image.open(path) as image:
            size = image.size
        if size != (record.width, record.height):
            message = f"the export says {record.width}x{record.height}, but {path} is {size[0]}x{size[1]}"
            problems.append(Problem(record.name, f"{message}: the labels would not fit; export them from this image."))
            continue
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem in stems:
            problems.append(Problem(path, f"the same id {stem!r} as {stems[stem]}: rename one of them."))
            continue
        found[index], stems[stem] = path, path
    return found


def check_output(vocdevkit_path: str) -> tuple:
    """(image folder, label folder) under vocdevkit_path/VOC2007, refused when either holds files or classes.txt
    exists."""
    voc = os.path.join(vocdevkit_path, "VOC2007")
    folders = (os.path.join(voc, "JPEGImages"), os.path.join(voc, "SegmentationClass"))
    for path in (*folders, os.path.join(vocdevkit_path, "classes.txt")):
        if os.path.isfile(path) or os.path.isdir(path) and os.listdir(path):
            raise ValueError(
                f"{path}: holds files already, and nothing you have is overwritten. Convert into another "
                "--vocdevkit_path (an empty or new folder)."
            )
    return folders


def write_voc(records: list, images: dict, classes: list, vocdevkit_path: str) -> list:
    """Copies each matched image, writes its label PNG and classes.txt; returns the ids written."""
    image_dir, label_dir = check_output(vocdevkit_path)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(label_dir, exist_ok=True)
    written = []
    for index, path in images.items():
        stem = os.path.splitext(os.path.basename(path))[0]
        label = draw_record(records[index], classes)
        shutil.copy2(path, os.path.join(image_dir, os.path.basename(path)))
        write_atomically(
            os.path.join(label_dir, f"{stem}.png"), lambda temporary, lab=label: save_label(lab, temporary), ".png"
        )
        written.append(stem)
    write_text(os.path.join(vocdevkit_path, "classes.txt"), "".join(f"{name}\n" for name in classes))
    return written
