"""Image files read at their own bit depth and band count, and their headers read without their pixels.

PNG   8-bit grey / RGB (alpha, transparency, is not a band), 16-bit grey / RGB (OpenCV reads those: PIL would
      cut 16-bit colour to 8 bits)
TIFF  any sample type, any number of bands, chunky or planar (tifffile)
JPEG, BMP and the rest: PIL, 8-bit, upright by their EXIF orientation
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

EXIF_ORIENTATION = 0x0112  # the EXIF tag saying how a camera's picture is to be turned for viewing


TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


TIFF_SUFFIXES = (".tif", ".tiff")


# PIL modes read as they are: (bands, sample type). Others (palette, CMYK, alpha) become RGB or L, as viewers show them.
PIL_MODES = {
    "L": (1, "uint8"),
    "RGB": (3, "uint8"),
    "I;16": (1, "uint16"),
    "I;16L": (1, "uint16"),
    "I;16B": (1, "uint16"),
    "I": (1, "int32"),
    "F": (1, "float32"),
}


PIL_CONVERTED = {"1": "L", "LA": "L", "La": "L"}  # everything else -> RGB


def read_mode(mode: str) -> str:
    """The PIL mode an image of `mode` is read in: itself when PIL_MODES has it, else its conversion."""
    return mode if mode in PIL_MODES else PIL_CONVERTED.get(mode, "RGB")


def png_depth(path: str):
    """(bit depth, colour type) from a PNG's header, or None for another format."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def tiff_layout(axes: str, shape: tuple, path: str) -> tuple:
    """(order of the axes that puts Y, X first and the bands last, number of bands) for a TIFF series. Axes other
    than Y and X of length 1 are dropped; more than one other axis of length > 1 (a stack, a time series) is
    refused."""
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"{path}: a TIFF with axes {axes} {shape}; expected an image (axes Y and X).")
    others = [i for i, axis in enumerate(axes) if axis not in "YX" and shape[i] > 1]
    if len(others) > 1:
        found = ", ".join(f"{axes[i]}={shape[i]}" for i in others)
        raise ValueError(
            f"{path}: a TIFF stack ({found}, axes {axes}); expected one image with its bands. Save each image of "
            "the stack as a file of its own."
        )
    order = (
        [axes.index("Y"), axes.index("X")]
        + others
        + [i for i, a in enumerate(axes) if a not in "YX" and i not in others]
    )
    return order, shape[others[0]] if others else 1


def read_tiff(path: str) -> np.ndarray:
    import tifffile  # noqa: PLC0415 (only for TIFF files)

    with tifffile.TiffFile(path) as tiff:
        if len(tiff.series) > 1:  # pages of different sizes: which one is meant cannot be guessed
            shapes = ", ".join(str(tuple(s.shape)) for s in tiff.series[:4])
            raise ValueError(
                f"{path}: a TIFF of {len(tiff.series)} images ({shapes}{', ...' if len(tiff.series) > 4 else ''}); "
                "expected one image. Save the image to use as a file of its own."
            )
        series = tiff.series[0]
        order, bands = tiff_layout(series.axes, series.shape, path)
        data = series.asarray()
    data = np.transpose(data, order).reshape(data.shape[order[0]], data.shape[order[1]], bands)
    return np.ascontiguousarray(data)


def read_png16(path: str, colour_type: int) -> np.ndarray:
    """A 16-bit PNG through OpenCV (PIL reads 16-bit colour as 8-bit): (H, W, 1 or 3) uint16, alpha left out."""
    import cv2  # noqa: PLC0415

    data = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if data is None:
        raise ValueError(f"{path}: OpenCV cannot decode this 16-bit PNG.")
    if data.ndim == 2:
        return data[..., None]
    if colour_type == 4:  # grey + alpha, which OpenCV gives as B = G = R = grey, A
        return np.ascontiguousarray(data[..., :1])
    return cv2.cvtColor(data, cv2.COLOR_BGRA2RGB if data.shape[-1] == 4 else cv2.COLOR_BGR2RGB)


def from_pil(image: Image.Image) -> np.ndarray:
    """A PIL image as (H, W, bands), upright (EXIF orientation applied), at its own sample type."""
    # Copies only where needed: a 10,000 x 10,000 RGB image is 300 MB a copy.
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    upright = ImageOps.exif_transpose(image) if orientation != 1 else image
    if upright.mode not in PIL_MODES:
        upright = upright.convert(read_mode(upright.mode))
    array = np.asarray(upright)
    if upright.mode.startswith("I;16"):
        array = array.astype(np.uint16, copy=False)  # I;16B is big-endian
    return array[..., None] if array.ndim == 2 else array


def read_image(path: str) -> np.ndarray:
    """An image file as (H, W, bands) at its own sample type (uint8, uint16, float32 ...): nothing clipped."""
    if path.lower().endswith(TIFF_SUFFIXES):
        return read_tiff(path)
    header = png_depth(path)
    if header and header[0] == 16:
        return read_png16(path, header[1])
    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:  # PIL would give the first frame alone
            raise ValueError(
                f"{path}: an animation or multi-page image of {frames} frames; expected one image. Save the frames "
                "as image files of their own (or use --mode video for a video)."
            )
        return from_pil(image)


@dataclass(frozen=True)
class ImageHeader:
    """What the dataset check needs of an image: its size as shown upright, bands, sample type and EXIF
    orientation (1: stored upright; 6: turned a quarter clockwise for viewing; ...)."""

    size: tuple  # (width, height) as shown upright
    bands: int
    dtype: str
    orientation: int = 1

    @property
    def kind(self) -> tuple:
        """(bands, sample type): what survey takes."""
        return self.bands, self.dtype


def image_header(path: str) -> ImageHeader:
    """An image file's ImageHeader, the file read fully (so that a truncated file is found now, not hours into
    training) but decoded cheaply where the format allows."""
    if path.lower().endswith(TIFF_SUFFIXES):
        image = read_tiff(path)
        return ImageHeader(image.shape[1::-1], image.shape[2], image.dtype.name)
    header = png_depth(path)
    with Image.open(path) as image:
        size = image.size
        if image.format == "JPEG":
            # DCT scaling: reads all, decodes 1/64
            image.draft("RGB", (max(1, image.width // 8), max(1, image.height // 8)))
        image.load()
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        if orientation in TRANSPOSED_ORIENTATIONS:
            size = size[::-1]
        mode = read_mode(image.mode)
    bands, dtype = PIL_MODES[mode]
    if header and header[0] == 16:
        bands, dtype = (1 if header[1] in (0, 4) else 3), "uint16"
    return ImageHeader(tuple(size), bands, dtype, int(orientation))
