"""A synthetic VOC-format dataset so that a fresh clone can train: shapes on textured, noisy backgrounds.

Classes: 0 background, 1 ellipse, 2 rectangle, 3 triangle. Every shape and background takes random colours
from the same distribution and its own texture, so the class is in the outline, not in the colour;
shapes vary in size and rotation, overlap (the later one on top) and may leave the frame.

The default is the demo: 64 x 64 images, one to three shapes of 30-60 % of the image each. With `large`,
images of size x size (about 1024) hold many small shapes of LARGE_SHAPES pixels across on the same
backgrounds: what scale_mode fit loses (shrunk to 256, they are 2-10 pixels across) and slide keeps.

With `bands=4`, the demo's images get a 4th band (as a near-infrared band beside R, G and B) that shows the
HIDDEN_CLASS only, standing out from the band's own textured background as far as colours do in RGB, while R, G
and B show the other classes only: the hidden class differs from the background in the 4th band alone, and only a
network that takes the 4th band can find it. They are written as 16-bit TIFFs (values x 257); `bands=3` writes the same
images' R, G and B only, the same way, for the network that cannot see the 4th band.

With `defects` (a share of the images), those images also get one or two small spots of a 5th class, DEFECT (5-9
pixels across, the shapes' 20-40): a class rare in images and in pixels, as a defect or a lesion is, for the pieces
aimed at rare classes (oversampling, Tversky, Lovasz: benchmarks/train_quality.py's demo_defects cases).
"""

import os

import numpy as np
import tifffile
from PIL import Image, ImageDraw
from tqdm import tqdm

from utils.files.images import DEMO_CLASSES_FILE
from utils.visualize import class_colours, palette_image

DEMO_CLASSES = ["background", "ellipse", "rectangle", "triangle"]
DEFECT = "defect"  # the defects variant's 5th class (class 4)
DEFECT_RADIUS = (2.5, 4.5)  # its spots' radius, pixels
MIN_CONTRAST = 90.0  # least RGB distance between a shape's colour and the background's colours
MAX_OCCLUSION = 0.25  # most of a new shape's area that may lie over earlier shapes
LARGE_SHAPES = (10, 40)  # large variant: shapes' size across, in pixels
LARGE_COUNT = (40, 100)  # large variant: shapes per image
# bands variant: the class drawn in the 4th band only: ellipses, the class the demo learns best (triangles are the
# hardest even in RGB).
HIDDEN_CLASS = 1
# The demo's promise: `python train.py` on a fresh clone trains it within this many minutes on a 2-core AVX2 CPU
# (train.py plans its epochs and shortens them on a machine too slow for them).
DEMO_MINUTES = 10.0


def texture(rng, size: int, colour_a, colour_b) -> np.ndarray:
    """(size, size, 3) float: two colours mixed by smooth noise, plus stripes and pixel noise."""
    coarse = rng.random((4, 4))
    mix = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)) / 255.0
    angle, period = rng.uniform(0, np.pi), rng.uniform(3, 9)
    y, x = np.mgrid[:size, :size]
    stripes = 18 * np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period)
    base = colour_a * (1 - mix[..., None]) + colour_b * mix[..., None]
    return base + stripes[..., None] + rng.normal(0, 10, (size, size, 3))


def shape_polygon(rng, kind: int, centre, radius: float) -> list:
    """Vertices of an ellipse (kind 1), rectangle (2) or triangle (3), rotated at random."""
    if kind == 1:
        angles = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        points = np.stack([np.cos(angles), rng.uniform(0.6, 1.0) * np.sin(angles)], 1)
    elif kind == 2:
        half_width, half_height = rng.uniform(0.6, 1.0, 2)
        points = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [half_width, half_height]
    else:
        angles = np.array([0, 2 * np.pi / 3, 4 * np.pi / 3])  # equilateral: never a sliver
        points = np.stack([np.cos(angles), np.sin(angles)], 1)
    rotation = rng.uniform(0, 2 * np.pi)
    rotate = np.array([[np.cos(rotation), -np.sin(rotation)], [np.sin(rotation), np.cos(rotation)]])
    return [tuple(p) for p in (points @ rotate.T) * radius + centre]


def place_shape(rng, kind: int, label: np.ndarray) -> np.ndarray:
    """A mask for a new shape; up to 20 placements are tried for one that lies at most MAX_OCCLUSION of
    its own area over earlier shapes, and the last is kept if none does."""
    size = label.shape[0]
    for _ in range(20):
        mask_image = Image.new("L", (size, size))
        radius = rng.uniform(0.15, 0.3) * size
        # Centres keep most of each shape inside the frame: a shape cut by the border loses the outline
        # that tells its class; likewise one mostly hidden under another.
        centre = rng.uniform(0.6 * radius, size - 0.6 * radius, 2)
        ImageDraw.Draw(mask_image).polygon(shape_polygon(rng, kind, centre, radius), fill=1)
        mask = np.asarray(mask_image, bool)
        if (label[mask] > 0).mean() <= MAX_OCCLUSION:
            break
    return mask


def shape_colour(rng, background_colours: np.ndarray) -> np.ndarray:
    """A random RGB colour (3,) at least MIN_CONTRAST from each of the background's colours (2, 3)."""
    colour = rng.uniform(0, 255, 3)
    while np.linalg.norm(background_colours - colour, axis=1).min() < MIN_CONTRAST:
        colour = rng.uniform(0, 255, 3)
    return colour


def make_sample(rng, size: int):
    """One (image uint8 (size, size, 3), label uint8 (size, size)) pair."""
    background_colours = rng.uniform(0, 255, (2, 3))
    image = texture(rng, size, *background_colours)
    label = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(1, 4)):
        kind = int(rng.integers(1, len(DEMO_CLASSES)))
        colour = shape_colour(rng, background_colours)
        mask = place_shape(rng, kind, label)
        image[mask] = texture(rng, size, colour, colour + rng.normal(0, 30, 3))[mask]
        label[mask] = kind
    return np.clip(image, 0, 255).astype(np.uint8), label


def add_defects(rng, image: np.ndarray, label: np.ndarray) -> None:
    """Draws one or two DEFECT spots (class len(DEMO_CLASSES)) into a sample, in place: small textured ellipses in a
    colour that stands out from what lies under them."""
    for _ in range(rng.integers(1, 3)):
        radius = rng.uniform(*DEFECT_RADIUS)
        centre = rng.uniform(radius, label.shape[0] - radius, 2)
        mask_image = Image.new("L", label.shape[::-1])
        ImageDraw.Draw(mask_image).polygon(shape_polygon(rng, 1, centre, radius), fill=1)
        mask = np.asarray(mask_image, bool)
        colour = shape_colour(rng, image[mask].reshape(-1, 3)[:2] if mask.any() else image[:2, 0])
        image[mask] = np.clip(texture(rng, label.shape[0], colour, colour)[mask], 0, 255)
        label[mask] = len(DEMO_CLASSES)


def make_band_sample(rng, size: int):
    """One (image float (size, size, 4) in [0, 255], label uint8) pair of the bands variant (module docstring)."""
    background_colours = rng.uniform(0, 255, (2, 3))
    image = texture(rng, size, *background_colours)
    background_level = rng.uniform(0, 255)  # the 4th band's background: one level, textured
    fourth = texture(rng, size, np.full(3, background_level), np.full(3, background_level))[..., 0]
    label = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(1, 4)):
        kind = int(rng.integers(1, len(DEMO_CLASSES)))
        colour = shape_colour(rng, background_colours)
        level = rng.uniform(0, 255)
        while abs(level - background_level) < MIN_CONTRAST:  # as far from the background as colours are in RGB
            level = rng.uniform(0, 255)
        mask = place_shape(rng, kind, label)
        if kind == HIDDEN_CLASS:
            fourth[mask] = texture(rng, size, np.full(3, level), np.full(3, level))[..., 0][mask]
        else:
            image[mask] = texture(rng, size, colour, colour + rng.normal(0, 30, 3))[mask]
        label[mask] = kind
    return np.clip(np.concatenate([image, fourth[..., None]], axis=-1), 0, 255), label


def make_large_sample(rng, size: int):
    """One (image, label) pair of the large variant: LARGE_COUNT shapes of LARGE_SHAPES pixels across, each
    drawn and textured within its own box (a whole-image texture per shape would cost seconds an image)."""
    background_colours = rng.uniform(0, 255, (2, 3))
    image = texture(rng, size, *background_colours)
    label = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(*LARGE_COUNT)):
        kind = int(rng.integers(1, len(DEMO_CLASSES)))
        colour = shape_colour(rng, background_colours)
        radius = rng.uniform(*LARGE_SHAPES) / 2
        box = int(np.ceil(2 * radius)) + 2
        top, left = rng.integers(0, size - box, 2)
        mask_image = Image.new("L", (box, box))
        ImageDraw.Draw(mask_image).polygon(shape_polygon(rng, kind, (box / 2, box / 2), radius), fill=1)
        mask = np.asarray(mask_image, bool)
        window = (slice(top, top + box), slice(left, left + box))
        if (label[window][mask] > 0).mean() > MAX_OCCLUSION:
            continue  # mostly over an earlier shape: its outline would be lost
        image[window][mask] = texture(rng, box, colour, colour + rng.normal(0, 30, 3))[mask]
        label[window][mask] = kind
    return np.clip(image, 0, 255).astype(np.uint8), label


def make_demo_dataset(
    vocdevkit_path: str,
    num_images: int = 300,
    size: int = 64,
    val_share: float = 0.2,
    seed=0,
    large: bool = False,
    bands: int = 0,
    defects: float = 0.0,
):
    """Writes JPEGImages/, SegmentationClass/ (palette PNG) and ImageSets/Segmentation/{train,val,trainval}.txt;
    with `large`, the large-image variant (module docstring) at size x size; with bands 4 (or 3), the bands variant's
    16-bit TIFFs of 4 bands (or of their R, G and B); with defects, that share of the images holds DEFECT spots."""
    names = DEMO_CLASSES + [DEFECT] * (defects > 0)
    voc = os.path.join(vocdevkit_path, "VOC2007")
    for folder in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
        os.makedirs(os.path.join(voc, folder), exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = [f"demo_{i:04d}" for i in range(num_images)]
    for sample_id in tqdm(ids, desc="Writing demo data", unit="image"):
        if bands:
            image, label = make_band_sample(rng, size)
            image = np.round(image[..., :bands] * 257).astype(np.uint16)  # 8-bit levels spread over 16 bits
            path = os.path.join(voc, "JPEGImages", f"{sample_id}.tif")
            tifffile.imwrite(path, image, photometric="minisblack", planarconfig="contig")
        else:
            image, label = (make_large_sample if large else make_sample)(rng, size)
            if defects and rng.random() < defects:
                add_defects(rng, image, label)
            Image.fromarray(image).save(os.path.join(voc, "JPEGImages", f"{sample_id}.jpg"), quality=95)
        palette_image(label, class_colours(len(names))).save(  # looks like a VOC label in a viewer
            os.path.join(voc, "SegmentationClass", f"{sample_id}.png")
        )
    num_val = int(round(num_images * val_share))
    splits = {"train": ids[num_val:], "val": ids[:num_val], "trainval": ids}
    for split, split_ids in splits.items():
        with open(os.path.join(voc, "ImageSets", "Segmentation", f"{split}.txt"), "w") as f:
            f.write("\n".join(split_ids) + "\n")
    with open(os.path.join(vocdevkit_path, DEMO_CLASSES_FILE), "w") as f:
        f.write("\n".join(names) + "\n")


def is_demo_dataset(vocdevkit_path: str) -> bool:
    """Whether the dataset root holds the demo's data (make_demo_dataset wrote its class names there)."""
    return os.path.isfile(os.path.join(vocdevkit_path, DEMO_CLASSES_FILE))
