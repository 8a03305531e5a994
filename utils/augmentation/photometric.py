"""Photometric augmentation as nnU-Net draws it: Gaussian noise, Gaussian blur, contrast, low-resolution simulation
and gamma, each given to a sample with its own probability, on any number of bands and on 8-bit, 16-bit and float
images alike.

Each transform works in the band's own units: its range is 0-255 for 8-bit images and the robust range the train
split's survey measured (Bands.ranges) for the others, so a 16-bit microscope image gets the same relative noise as
a photo. 8-bit results are rounded back to 0-255, where an 8-bit image must stay; the others are floats and keep
every value. The statistics a transform uses (mean, minimum, maximum) are the sample's labelled pixels', so a
letterbox's fill does not pull them. Strengths are nnU-Net's (batchgenerators' defaults in nnU-Net's training):
- noise: N(0, s) added, s ~ U(0, NOISE_STD) x the band's range;
- blur: a Gaussian of sigma ~ U(BLUR_SIGMA) px, per band with probability 1/2;
- contrast: (x - mean) x f + mean, f ~ U(CONTRAST_RANGE), kept within the sample's minimum and maximum;
- low_resolution: down by z ~ U(LOW_RESOLUTION_ZOOM) (nearest), back up (cubic), per band with probability 1/2;
- gamma: ((x - min) / (max - min)) ** g x (max - min) + min, g ~ U(GAMMA_RANGE) (g < 1 or > 1 equally likely).
"""

from dataclasses import dataclass, fields

import cv2
import numpy as np

from utils.files.bands import Bands

NOISE_STD = 0.025  # of the band's range: nnU-Net's variance up to 0.1 on z-scored images, ~2.5 % of a 1-99 % range
BLUR_SIGMA = (0.5, 1.0)  # px
CONTRAST_RANGE = (0.75, 1.25)
LOW_RESOLUTION_ZOOM = (0.5, 1.0)
GAMMA_RANGE = (0.7, 1.5)
NNUNET = {"noise": 0.1, "blur": 0.2, "contrast": 0.15, "low_resolution": 0.25, "gamma": 0.3}  # nnU-Net's shares


@dataclass(frozen=True)
class Photometric:
    """The share of samples (0-1) each transform is given to; 0 = off. nnU-Net's: NNUNET."""

    noise: float = 0.0
    blur: float = 0.0
    contrast: float = 0.0
    low_resolution: float = 0.0
    gamma: float = 0.0

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self))

    def check(self) -> None:
        """Raises ValueError naming a share outside 0-1."""
        for f in fields(self):
            share = getattr(self, f.name)
            if not 0 <= share <= 1:
                raise ValueError(
                    f"{f.name}={share}: expected the share of samples given it, 0-1 (0 = off; nnU-Net's: "
                    f"{NNUNET[f.name]})."
                )


def band_statistics(image: np.ndarray, valid: np.ndarray):
    """(mean, minimum, maximum), each (C,), of the image's pixels where `valid` (all of them when none is)."""
    pixels = image[valid] if valid.any() else image.reshape(-1, image.shape[-1])
    return pixels.mean(0), pixels.min(0), pixels.max(0)


def low_resolution(band: np.ndarray, zoom: float) -> np.ndarray:
    """A band (H, W) shrunk by `zoom` (nearest) and brought back to its size (cubic): a coarser sensor's picture."""
    height, width = band.shape
    small = cv2.resize(
        band, (max(1, round(width * zoom)), max(1, round(height * zoom))), interpolation=cv2.INTER_NEAREST
    )
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def apply_photometric(image: np.ndarray, valid: np.ndarray, options: Photometric, bands: Bands, seed: int):
    """The transforms the sample draws (nnU-Net's order: noise, blur, contrast, low resolution, gamma).

    Args:
        image: (H, W, C) as the pipeline holds it (uint8 for 8-bit images, float32 else); valid: bool (H, W), the
            labelled pixels; seed: the sample's draw (numpy's generator).

    Returns:
        The image in its own dtype.
    """
    rng = np.random.default_rng(seed)
    draws = {f.name: rng.random() < getattr(options, f.name) for f in fields(options)}  # one draw each, always
    if not any(draws.values()):
        return image
    x = image.astype(np.float32)
    ranges = np.array([(0.0, 255.0)] * x.shape[-1] if bands.eight_bit else bands.ranges, np.float32)
    spread = ranges[:, 1] - ranges[:, 0]
    if draws["noise"]:
        x += rng.normal(0.0, 1.0, x.shape).astype(np.float32) * (rng.uniform(0, NOISE_STD) * spread)
    if draws["blur"]:
        for c in np.flatnonzero(rng.random(x.shape[-1]) < 0.5):
            x[..., c] = cv2.GaussianBlur(x[..., c], (0, 0), rng.uniform(*BLUR_SIGMA))
    if draws["contrast"]:
        mean, low, high = band_statistics(x, valid)
        x = np.clip((x - mean) * rng.uniform(*CONTRAST_RANGE) + mean, low, high)
    if draws["low_resolution"]:
        for c in np.flatnonzero(rng.random(x.shape[-1]) < 0.5):
            x[..., c] = low_resolution(x[..., c], rng.uniform(*LOW_RESOLUTION_ZOOM))
    if draws["gamma"]:
        _, low, high = band_statistics(x, valid)
        gamma = rng.uniform(GAMMA_RANGE[0], 1.0) if rng.random() < 0.5 else rng.uniform(1.0, GAMMA_RANGE[1])
        span = np.maximum(high - low, 1e-7)
        x = np.clip((x - low) / span, 0.0, 1.0) ** gamma * span + low
    if bands.eight_bit:
        return np.clip(np.round(x), 0, 255).astype(np.uint8)
    return x.astype(np.float32)
