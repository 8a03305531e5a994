"""Scale modes: how images meet the network, in training and in prediction alike.

fit    the whole image fitted into input_shape (letterboxed), one network call per image: right for photos whose
       objects are large against the image (VOC). utils/letterbox.py.
slide  the image kept at its own resolution times image_scale; training takes input_shape crops of it, and
       prediction runs input_shape windows over it with `overlap` (utils/prediction/sliding.py). Right for large
       images with small or thin structures (aerial tiles, microscopy, pathology).
"""

from dataclasses import dataclass

from nets.models import model_margin

SCALE_MODES = ("fit", "slide")


@dataclass(frozen=True)
class Scale:
    """How images meet the network: `mode` fit or slide; in slide, images at `image_scale`, windows `overlap` apart."""

    mode: str = "fit"
    image_scale: float = 1.0
    overlap: float = 0.25

    @property
    def slide(self) -> bool:
        return self.mode == "slide"

    @property
    def crop_scale(self):
        """What the training pipeline takes as image_scale: the scale its crops are cut at in slide, None in fit
        (the whole image letterboxed)."""
        return self.image_scale if self.slide else None


def describe_scale(scale: Scale, input_shape, margin: int) -> str:
    """A line saying how training and val mIoU see the images, for a network of input_shape (H, W) and output
    margin."""
    height, width = input_shape
    if not scale.slide:
        return (
            f"Scale: fit: each image letterboxed into {height}x{width}, its objects shrunk with it (scale_mode slide "
            "keeps the image's resolution)"
        )
    scaled = f" x {scale.image_scale}" if scale.image_scale != 1 else ""
    output = f" (output {height - 2 * margin}x{width - 2 * margin}: labels cropped to it)" if margin else ""
    return (
        f"Scale: slide: images at their own resolution{scaled}; training on {height}x{width} crops{output}, val mIoU "
        f"by a sliding window, overlap {scale.overlap}"
    )


def resolve_scale_mode(scale_mode: str, model: str) -> str:
    """The scale mode `auto` stands for: slide for a network whose output is smaller than its input (the classic
    UNet predicts by overlap-tile at the image's own resolution), fit otherwise. Such a network cannot fit."""
    if scale_mode == "auto":
        return "slide" if model_margin(model) else "fit"
    if scale_mode == "fit" and model_margin(model):
        raise ValueError(
            f"scale_mode=fit: model={model!r} gives an output smaller than its input, so it predicts window by "
            "window at the image's own resolution. Set scale_mode slide (or auto)."
        )
    return scale_mode


def check_scale_settings(scale_mode: str, image_scale: float, overlap: float) -> None:
    """Raises ValueError naming the setting, unless the scale mode and its values can work."""
    if scale_mode not in (*SCALE_MODES, "auto"):
        raise ValueError(
            f"scale_mode={scale_mode!r}: expected fit (whole image into input_shape), slide (own resolution, "
            "input_shape crops and a sliding window) or auto."
        )
    if not image_scale > 0:
        raise ValueError(f"image_scale={image_scale}: expected a factor above 0 (1 = the image's own resolution).")
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap}: expected a share of the window in [0, 1), e.g. 0.25.")


def scaled_size(height: int, width: int, image_scale: float) -> tuple:
    """(h, w) of an image of (height, width) at image_scale, at least 1 pixel each."""
    return max(1, round(height * image_scale)), max(1, round(width * image_scale))
