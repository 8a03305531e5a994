"""Image bands: what a network's input is (Bands: channels, sample type and the per-band ranges its preprocessing
stretches), images read as that input, the range survey of a split, and making a picture of an input to look at.

Nothing is clipped on the way in: 8-bit images stay uint8 (and keep the ImageNet preprocessing exactly); 16-bit,
signed and float images become float32 with their values unchanged, and the network's first layer (nets/preprocess.py
Preprocess) stretches each band's robust range (RANGE_PERCENTILES) to the [0, 255] its encoder knows, without
clipping. That range is measured on the training split (survey) and recorded with the weights.

The files are read by utils/files/image_files.py.
"""

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from utils.files.image_files import from_pil, image_header, read_image

# The robust range of a band, stretched to [0, 255]: CSBDeep's defaults for microscopy (Weigert et al. 2018), so a
# few hot or dead pixels do not set the scale. Values beyond it go beyond [0, 255]; none is clipped.
RANGE_PERCENTILES = (1.0, 99.8)
SURVEY_IMAGES = 64  # images of the training split sampled for the ranges (evenly spread)
SURVEY_PIXELS = 1 << 20  # pixels per image sampled for the ranges (a regular grid)
GREY = 128  # mid grey of an 8-bit image: the fill around letterboxed and shifted images


@dataclass(frozen=True)
class Bands:
    """What a network takes: images of `channels` bands of sample type `dtype` (as the files hold them), each band
    stretched from ranges[c] = (low, high) to [0, 255] in the network's preprocessing. 8-bit images have no ranges:
    their values are used as they are, as the ImageNet encoders expect."""

    channels: int = 3
    dtype: str = "uint8"  # uint8 | uint16 | int16 | int32 | float32 ...
    ranges: tuple = ()  # ((low, high), ...) one per band; () for 8-bit images

    @property
    def eight_bit(self) -> bool:
        return self.dtype == "uint8"

    @property
    def input_dtype(self) -> str:
        """The arrays' type in the pipeline and at the network's input: uint8 for 8-bit images, else float32."""
        return "uint8" if self.eight_bit else "float32"

    @property
    def fill(self) -> tuple:
        """Each band's mid grey in the images' own values: what letterboxes and shifts fill with."""
        if self.eight_bit:
            return (float(GREY),) * self.channels
        return tuple(low + (high - low) * GREY / 255 for low, high in self.ranges)

    def describe(self) -> str:
        kind = {1: "grey (1 band)", 3: "RGB (3 bands)"}.get(self.channels, f"{self.channels} bands")
        if self.eight_bit:
            return f"{kind}, 8-bit: values as they are"
        shown = ", ".join(f"{low:g}-{high:g}" for low, high in self.ranges[:6]) + (" ..." if self.channels > 6 else "")
        percentiles = "-".join(f"{p:g}" for p in RANGE_PERCENTILES)
        return f"{kind}, {self.dtype}: each band's {percentiles} percentile range ({shown}) stretched to 0-255"

    def to_dict(self) -> dict:
        return {"channels": self.channels, "dtype": self.dtype, "ranges": [list(r) for r in self.ranges]}

    @classmethod
    def from_dict(cls, fields: dict) -> "Bands":
        ranges = tuple(tuple(float(v) for v in r) for r in fields.get("ranges", ()))
        return cls(int(fields.get("channels", 3)), str(fields.get("dtype", "uint8")), ranges)


def as_input(image: np.ndarray, bands: Bands, path: str = "the image") -> np.ndarray:
    """An image read by read_image, as the network takes it: `bands.channels` bands (grey copied to R, G and B, or
    RGB turned to grey, when those are asked for), uint8 for 8-bit images, else float32 (values unchanged).

    Raises:
        ValueError: the sample type or band count does not fit and cannot be converted, naming the file.
    """
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype.name != bands.dtype:
        raise ValueError(
            f"{path}: {image.dtype.name} samples, but the network takes {bands.dtype} images ({bands.describe()}). "
            "Give it images like those it was trained on, or train on these."
        )
    found = image.shape[-1]
    if found == 1 and bands.channels == 3:
        image = np.repeat(image, 3, axis=-1)
    elif found == 3 and bands.channels == 1:  # ITU-R 601 luma, as PIL's convert("L")
        grey = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        image = (np.round(grey).astype(np.uint8) if bands.eight_bit else grey)[..., None]
    elif found != bands.channels:
        raise ValueError(
            f"{path}: {found} bands, but the network takes {bands.channels} (input_channels). Give it images with "
            f"{bands.channels} bands, or train with --input_channels {found}."
        )
    return image if bands.eight_bit else image.astype(np.float32, copy=False)


def read_input(path: str, bands: Bands) -> np.ndarray:
    """read_image, then as_input."""
    return as_input(read_image(path), bands, path)


def read_input_or_error(path: str, bands: Bands):
    """(read_input's array, "") for a readable image file that fits the network, else (a 1 x 1 image, why not)."""
    try:
        return read_input(path, bands), ""
    except Exception as error:  # whatever the readers raise, the file is unusable: report it
        return np.zeros((1, 1, bands.channels), bands.input_dtype), f"{type(error).__name__}: {error}"


def image_array(image, bands: Bands) -> np.ndarray:
    """A PIL image or an array (H, W[, bands]) in memory, as the network takes it (as_input)."""
    return as_input(from_pil(image) if isinstance(image, Image.Image) else np.asarray(image), bands)


def band_ranges(images: list) -> tuple:
    """((low, high), ...) per band: RANGE_PERCENTILES of the values pooled over images (H, W, C); a constant band
    gets a range of 1 (a range of 0 cannot be stretched)."""
    pooled = np.concatenate([image.reshape(-1, image.shape[-1]) for image in images]).astype(np.float64)
    lows, highs = np.percentile(pooled, RANGE_PERCENTILES, axis=0)
    return tuple((float(low), float(high) if high > low else float(low) + 1.0) for low, high in zip(lows, highs))


def grid_sample(image: np.ndarray, pixels: int = SURVEY_PIXELS) -> np.ndarray:
    """At most `pixels` pixels of an image (H, W, C) on a regular grid."""
    step = max(1, int(np.ceil(np.sqrt(image.shape[0] * image.shape[1] / pixels))))
    return image[::step, ::step]


def names(paths: list, limit: int = 5) -> str:
    """The first `limit` file names of paths, and ... when there are more."""
    return ", ".join(os.path.basename(p) for p in paths[:limit]) + (" ..." if len(paths) > limit else "")


def survey(paths: list, channels: int = 0, kinds: dict = None) -> Bands:
    """The Bands of a training split's images: their sample type, the band count (`channels`, or the images' own
    when 0) and, for images that are not 8-bit, each band's range, measured on up to SURVEY_IMAGES of them.

    Args:
        kinds: {image path: (bands, sample type)} of every image the network will see (the val split's too), as
            the dataset check found them; None: read from the paths' headers.

    Raises:
        ValueError: mixed band counts or sample types (the files named, by kind), non-finite values, or a band
        count that `channels` cannot be made from.
    """
    found = kinds or {path: image_header(path).kind for path in paths}
    kinds = {}
    for path, kind in found.items():
        kinds.setdefault(tuple(kind), []).append(path)
    if len(kinds) > 1 and set(kinds) != {(1, "uint8"), (3, "uint8")}:  # 8-bit grey among RGB photos: read as RGB
        listed = "\n  ".join(
            f"{len(found)} of {bands} band{'s' * (bands > 1)}, {dtype}: {names(found)}"
            for (bands, dtype), found in sorted(kinds.items(), key=lambda item: -len(item[1]))
        )
        raise ValueError(
            f"The images mix band counts or sample types:\n  {listed}\nA network takes one kind: convert the odd "
            "ones out (or remove them from the splits) so that every image has the same bands and bit depth."
        )
    found_bands = max(bands for bands, _ in kinds)
    dtype = next(iter(kinds))[1]
    bands = Bands(channels or found_bands, dtype)
    if channels and channels != found_bands and {channels, found_bands} != {1, 3}:
        raise ValueError(
            f"input_channels={channels}, but the images have {found_bands} bands ({paths[0]} ...). Set "
            f"--input_channels {found_bands} (or 0: as the images are)."
        )
    if bands.eight_bit:
        return bands
    chosen = [paths[i] for i in np.unique(np.linspace(0, len(paths) - 1, min(SURVEY_IMAGES, len(paths))).astype(int))]
    samples = []
    for path in chosen:
        sample = grid_sample(as_input(read_image(path), bands, path))
        if not np.isfinite(sample).all():
            raise ValueError(
                f"{path}: NaN or infinite values. A network cannot learn from them: replace them (e.g. with the "
                "band's no-data value) and save the image again."
            )
        samples.append(sample)
    return Bands(bands.channels, dtype, band_ranges(samples))


def display_image(image: np.ndarray, bands: Bands, shown=()) -> np.ndarray:
    """uint8 (H, W, 3) to look at, of an image as the network takes it (H, W, C): the bands `shown` (three
    indices; () = the first three, or the one band of a grey image) as R, G, B, each stretched by its range when
    the images are not 8-bit (clipped to 0-255 here: this is a picture, not the data)."""
    count = image.shape[-1]
    shown = list(shown) or ([0, 1, 2] if count >= 3 else [0, 0, 0])
    if len(shown) != 3 or not all(0 <= b < count for b in shown):
        raise ValueError(f"display_bands={list(shown)}: expected three band indices from 0 to {count - 1}.")
    if bands.eight_bit:
        return image if shown == [0, 1, 2] and count == 3 else np.ascontiguousarray(image[..., shown])
    picture = np.empty((*image.shape[:2], 3), np.uint8)
    for index, band in enumerate(shown):
        low, high = bands.ranges[band]
        picture[..., index] = np.clip(np.round((image[..., band] - low) * (255 / (high - low))), 0, 255)
    return picture
