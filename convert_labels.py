r"""Convert a labelling tool's export into the VOC layout: images (copied), class-index PNG labels and classes.txt.

    $ python convert_labels.py --format coco --annotations instances.json --images_dir images/
    $ python convert_labels.py --format cvat --annotations annotations.xml --images_dir images/   # CVAT for images 1.1
    $ python convert_labels.py --format cvat_masks --annotations export/ --images_dir export/JPEGImages
    $ python convert_labels.py --format labelstudio --annotations project.json --images_dir uploads/
    $ python convert_labels.py ... --classes background road building    # class ids in this order
    $ python voc_annotation.py                                           # then check and split

Formats: coco (instances JSON: polygons, RLE and iscrowd), cvat (CVAT for images 1.1 XML: polygons, boxes, ellipses,
masks), cvat_masks (CVAT's Segmentation mask 1.1 export: labelmap.txt and SegmentationClass/ colour PNGs),
labelstudio (its JSON export: brush masks, polygons, rectangles). labelme files: json_to_dataset.py.

Class ids: the background 0, then the export's classes in its order (COCO: by category id; CVAT: the task's labels;
Label Studio: as they first appear), or --classes. Overlaps: COCO's crowd regions first, then CVAT's z_order, and
within one the larger shape first, so a smaller shape on a larger one stays visible. Every problem is listed with its
file before anything is written: an image not found (or of another size than the export says), an unknown class, a
mask larger than its image, an empty or self-intersecting polygon (--drop_bad_shapes leaves those out and goes on).
Nothing you have is changed: the output folders must be empty or new.
"""

import os
from dataclasses import dataclass, field

from utils.config import run_main
from utils.converters.coco import read_coco
from utils.converters.cvat import read_cvat_masks, read_cvat_xml
from utils.converters.labelstudio import read_labelstudio
from utils.converters.voc import check_output, class_list, matched_images, write_voc
from utils.files.atomic import check_writable

READERS = {"coco": read_coco, "cvat": read_cvat_xml, "cvat_masks": read_cvat_masks, "labelstudio": read_labelstudio}
LISTED = 20  # problems listed in full


@dataclass
class ConvertConfig:
    format: str = "coco"  # coco | cvat | cvat_masks | labelstudio
    annotations: str = ""  # the export: a JSON or XML file (cvat_masks: the unzipped export's folder)
    images_dir: str = ""  # the images the export labels (found by name; Label Studio's upload prefixes are ignored)
    vocdevkit_path: str = "VOCdevkit"  # output root: VOC2007/JPEGImages, VOC2007/SegmentationClass, classes.txt
    classes: list[str] = field(default_factory=list)  # class names in id order, the background first; empty = export's
    drop_bad_shapes: bool = False  # leave empty or self-intersecting polygons out (listed) instead of stopping


def check_settings(config: ConvertConfig) -> None:
    """The settings and paths, checked before the export is read."""
    if config.format not in READERS:
        raise ValueError(f"format={config.format!r}: expected one of {', '.join(READERS)}.")
    if not os.path.exists(config.annotations):
        raise ValueError(f"annotations={config.annotations!r}: not found. Give the tool's export file (or folder).")
    if not os.path.isdir(config.images_dir):
        raise ValueError(f"images_dir={config.images_dir!r}: not a folder. Give the folder of the labelled images.")
    check_output(config.vocdevkit_path)
    check_writable(config.vocdevkit_path, "vocdevkit_path", "VOCdevkit_converted")


def main(config: ConvertConfig) -> None:
    check_settings(config)
    records, found, problems = READERS[config.format](config.annotations)
    classes = class_list(found, config.classes, problems, config.annotations)
    images = matched_images(records, config.images_dir, problems)
    dropped = [p for p in problems if p.drop] if config.drop_bad_shapes else []
    stopping = [p for p in problems if p not in dropped]
    if stopping:
        listed = "\n  ".join(map(str, stopping[:LISTED])) + (
            f"\n  ... and {len(stopping) - LISTED} more" if len(stopping) > LISTED else ""
        )
        hint = " (--drop_bad_shapes leaves the bad shapes out)" if any(p.drop for p in stopping) else ""
        raise ValueError(f"{len(stopping)} problems in the export, so nothing was written{hint}:\n  {listed}")
    for problem in dropped:
        print(f"Left out: {problem}")
    written = write_voc(records, images, classes, config.vocdevkit_path)
    print(f"Classes (id: name): {', '.join(f'{i}: {name}' for i, name in enumerate(classes))}")
    print(f"Wrote {len(written)} images and labels to {os.path.join(config.vocdevkit_path, 'VOC2007')} and classes.txt")
    print(f"Next: python voc_annotation.py --vocdevkit_path {config.vocdevkit_path}")


if __name__ == "__main__":
    run_main(main, ConvertConfig, __doc__)
