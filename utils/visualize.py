"""Colours for classes and the pictures a prediction is shown as."""

import colorsys

import numpy as np
from PIL import Image

from utils.files.images import IGNORE_LABEL
from utils.multilabel import set_colours

VOC_CLASSES_WITH_PALETTE = 21  # the VOC palette's colours are well apart for the 21 VOC classes
MIX_TYPES = {0: "mask blended with the image", 1: "mask only", 2: "image with the background removed"}
BLEND = 0.7  # weight of the colour mask in mix_type 0


def voc_colour(index: int) -> tuple:
    """The VOC palette's colour for a class id (the bit-interleaving rule of the VOC devkit)."""
    red = green = blue = 0
    for bit in range(8):
        red |= ((index >> 0) & 1) << (7 - bit)
        green |= ((index >> 1) & 1) << (7 - bit)
        blue |= ((index >> 2) & 1) << (7 - bit)
        index >>= 3
    return red, green, blue


def parse_colour(text: str) -> tuple:
    """'#rrggbb' (or 'rrggbb') -> (r, g, b)."""
    digits = text.strip().lstrip("#")
    if len(digits) != 6 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"colour {text!r}: expected #rrggbb, e.g. #ff8000")
    return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))


def hex_colour(colour) -> str:
    """(r, g, b) -> '#rrggbb'."""
    return "#%02x%02x%02x" % tuple(int(v) for v in colour)


def class_colours(num_classes: int, colours=()) -> np.ndarray:
    """uint8 (num_classes, 3): the given '#rrggbb' colours, else the VOC palette up to 21 classes, else
    black background and evenly spread hues (golden-ratio steps, alternating brightness) for the rest."""
    if colours:
        if len(colours) != num_classes:
            raise ValueError(f"colors has {len(colours)} entries but num_classes={num_classes}: give one per class.")
        return np.array([parse_colour(c) for c in colours], np.uint8)
    if num_classes <= VOC_CLASSES_WITH_PALETTE:
        return np.array([voc_colour(i) for i in range(num_classes)], np.uint8)
    hues = [(i * 0.618033988749895) % 1.0 for i in range(num_classes - 1)]
    generated = [colorsys.hsv_to_rgb(h, 0.85, 1.0 if i % 2 else 0.7) for i, h in enumerate(hues)]
    return np.array([(0, 0, 0)] + [tuple(round(255 * c) for c in rgb) for rgb in generated], np.uint8)


def value_colours(num_classes: int, head: str, colours=()) -> np.ndarray:
    """uint8 (values, 3): the colour of each value a mask takes; for a multilabel head, of each set of classes, in
    the mean of its classes' colours (none: black)."""
    if head != "multilabel":
        return class_colours(num_classes, colours)
    return set_colours(class_colours(num_classes, colours) if colours else class_colours(num_classes + 1)[1:])


def label_palette(colours: np.ndarray) -> list:
    """A 256-entry PNG palette, flat [r, g, b, ...]: the class colours, then the VOC palette (255: light grey)."""
    palette = [voc_colour(i) for i in range(256)]
    palette[: len(colours)] = [tuple(int(v) for v in c) for c in colours]
    return [v for colour in palette for v in colour]


def palette_image(mask: np.ndarray, colours: np.ndarray) -> Image.Image:
    """A uint8 (h, w) mask of class ids as a palette PNG image: pixel values stay the ids, shown in class colours."""
    image = Image.fromarray(mask, mode="P")
    image.putpalette(label_palette(colours))
    return image


RENDER_ROWS = 256  # rows drawn at a time: the float32 temporaries of a 10,000-wide band are 31 MB each


def render(image: np.ndarray, mask: np.ndarray, colours: np.ndarray, mix_type: int) -> np.ndarray:
    """The picture of a prediction, uint8 (h, w, 3).

    Args:
        image: uint8 (h, w, 3) RGB; mask: uint8 (h, w) class ids; colours: uint8 (C, 3).
        mix_type: 0 blend the colour mask with the image, 1 colour mask only, 2 the image where the class is
            not background, black elsewhere.
    """
    if mix_type == 1:
        return colours[mask]
    if mix_type == 2:
        return image * (mask != 0)[..., None].astype(np.uint8)
    blended = (1 - BLEND) * image.astype(np.float32) + BLEND * colours[mask].astype(np.float32)
    return np.round(blended).astype(np.uint8)


def render_image(image: np.ndarray, mask: np.ndarray, colours: np.ndarray, mix_type: int) -> Image.Image:
    """render's picture as a PIL image, drawn RENDER_ROWS at a time into it: for a large image the picture exists
    once (a 10,000 x 10,000 one is 400 MB in PIL), not also as a numpy array, nor as whole-image float32s."""
    height, width = mask.shape
    if height <= RENDER_ROWS:
        return Image.fromarray(render(image, mask, colours, mix_type))
    picture = Image.new("RGB", (width, height))
    for top in range(0, height, RENDER_ROWS):
        rows = slice(top, top + RENDER_ROWS)
        picture.paste(Image.fromarray(render(image[rows], mask[rows], colours, mix_type)), (0, top))
    return picture


def count_table(mask: np.ndarray, names) -> str:
    """A table of each class's pixels and share of the image."""
    counts = np.bincount(mask.ravel(), minlength=len(names))[: len(names)]
    width = max(12, *map(len, names))
    lines = [f"{'class':<{width}}  {'pixels':>10}  {'share %':>8}", "-" * (width + 22)]
    lines += [f"{n:<{width}}  {c:>10d}  {100 * c / mask.size:>8.2f}" for n, c in zip(names, counts)]
    return "\n".join(lines)


def class_names(name_classes, num_classes: int):
    """The configured class names, or generic ones when there are none, or (with a note saying why) when they do
    not fit num_classes."""
    if len(name_classes) == num_classes:
        return list(name_classes), ""
    names = ["background"] + [f"class {i}" for i in range(1, num_classes)]
    note = (
        f"Note: name_classes has {len(name_classes)} names but num_classes={num_classes}; "
        "using background, class 1, ... (set --name_classes to name them)."
    )
    return names, note if name_classes else ""


def tile_picture(image: np.ndarray, label: np.ndarray, colours: np.ndarray, side: int) -> np.ndarray:
    """uint8 (h, w, 3), the longer side `side`: the image with the classes but the background (0) blended half in
    their colours; background and ignored pixels (255) show the image as it is."""
    scale = side / max(label.shape)
    size = (max(1, round(label.shape[1] * scale)), max(1, round(label.shape[0] * scale)))  # PIL: (width, height)
    picture = np.array(Image.fromarray(image).resize(size, Image.BILINEAR))
    label = np.asarray(Image.fromarray(label).resize(size, Image.NEAREST))
    drawn = (label != 0) & (label != IGNORE_LABEL) & (label < len(colours))
    picture[drawn] = (picture[drawn].astype(np.uint16) + colours[label[drawn]]) // 2
    return picture


def contact_sheet(path: str, tiles: list, names, colours: np.ndarray, title: str, columns: int = 4) -> None:
    """A PNG of (caption, tile_picture) tiles in a grid of `columns`, with a legend of the class names in their
    colours."""
    from matplotlib.figure import Figure  # noqa: PLC0415 (only the dataset check and the reports draw figures)
    from matplotlib.patches import Patch  # noqa: PLC0415

    columns = min(columns, len(tiles))
    rows = -(-len(tiles) // columns)
    figure = Figure(figsize=(3 * columns, 3 * rows + 0.4 + 0.25 * (len(names) // 6 + 1)))
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, (caption, picture) in zip(axes.ravel(), tiles):
        axis.imshow(picture)
        axis.set_title(caption, fontsize=8)
    legend = [Patch(color=np.asarray(c) / 255, label=f"{i} {n}") for i, (n, c) in enumerate(zip(names, colours))]
    legend[0].set_label(f"0 {names[0]} (not coloured)")
    figure.legend(handles=legend, loc="lower center", ncol=min(6, len(names)), fontsize=8, frameon=False)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout(rect=(0, 0.04 + 0.03 * (len(names) // 6 + 1), 1, 0.97))
    figure.savefig(path, dpi=90)
