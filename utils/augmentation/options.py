"""The augmentation options a run switches on: the geometric ones beyond the default scale, aspect, flip and
placement, the share of samples jittered, and the photometric shares (utils/augmentation/photometric.py)."""

from dataclasses import dataclass

from utils.augmentation.photometric import Photometric


@dataclass(frozen=True)
class Augmentation:
    """The geometric options beyond the default scale / aspect / horizontal flip / placement (all off by default).

    The elastic deformation is the UNet paper's (Ronneberger et al. 2015): displacements drawn from N(0, alpha²) px
    at the points of a coarse grid elastic_sigma px apart, bicubically interpolated to every pixel. The paper's
    is a 3 x 3 grid with alpha 10 over a 572² tile: elastic_alpha 10, elastic_sigma about 286.
    """

    rotation: float = 0.0  # random rotation by uniform(-rotation, rotation) degrees about the canvas centre
    rotate_90: bool = False  # and by a random multiple of 90 degrees
    vertical_flip: bool = False  # flip upside down with probability 1/2
    shear: float = 0.0  # horizontal shear by uniform(-shear, shear) degrees
    elastic_alpha: float = 0.0  # elastic: displacement standard deviation in px at the grid points; 0 = off
    elastic_sigma: float = 128.0  # elastic: spacing of the coarse displacement grid in px (larger: smoother)
    # The share of samples that get the scale, aspect and colour jitter; the others are placed as prediction sees
    # them (fit: letterboxed; slide: at image_scale, the crop placed at random) with their colours as they are.
    jitter: float = 1.0
    photometric: Photometric = Photometric()  # noise, blur, contrast, low resolution, gamma: each sample's share

    @property
    def affine(self) -> bool:
        return bool(self.rotation or self.rotate_90 or self.vertical_flip or self.shear)

    @property
    def elastic(self) -> bool:
        return self.elastic_alpha > 0

    def check(self) -> None:
        """Raises ValueError naming a setting that cannot work."""
        if not 0 <= self.rotation <= 180:
            raise ValueError(f"rotation={self.rotation}: expected degrees in 0-180 (0 = off).")
        if not 0 <= self.shear < 60:
            raise ValueError(f"shear={self.shear}: expected degrees in 0-60 (0 = off); 10-20 is typical.")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter={self.jitter}: expected the share of samples jittered, 0-1 (1: every one).")
        self.photometric.check()
        if self.elastic_alpha < 0 or self.elastic_sigma < 2:
            raise ValueError(
                f"elastic_alpha={self.elastic_alpha}, elastic_sigma={self.elastic_sigma}: expected alpha >= 0 px "
                "(0 = off; the UNet paper's 10) and a grid spacing sigma >= 2 px."
            )
