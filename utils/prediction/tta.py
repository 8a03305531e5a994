"""Test-time augmentation: the network run on flipped and rescaled copies of its input, the probabilities mapped
back and averaged before the argmax (mmsegmentation's --aug-test, PaddleSeg's).

It works on what the network is given, the letterboxed canvas (fit) or each window (slide), so it composes with
both scale modes. All the copies of a batch go through one compiled call: the flips in one batch, the scales through
networks of the scaled input size that share the network's layers (and weights).
"""

from dataclasses import dataclass

import keras
import tensorflow as tf

FLIPS = {"hflip": 2, "vflip": 1}  # the image axis each flips, in (B, H, W, C)
SIZE_MULTIPLE = 32  # a scaled input is rounded to this (the encoders' stride)


@dataclass(frozen=True)
class TestTimeAugmentation:
    """Which copies: the image as it is (at every scale), flipped left-right (hflip) and upside down (vflip), each at
    every scale (1 always included)."""

    __test__ = False  # not a pytest test class, whatever its name

    hflip: bool = False
    vflip: bool = False
    scales: tuple = (1.0,)

    @classmethod
    def parse(cls, words) -> "TestTimeAugmentation":
        """From the `tta` setting: any of hflip, vflip and scales such as 0.75 1.25 ([] = off)."""
        scales, flips = {1.0}, set()
        for word in words:
            if word in FLIPS:
                flips.add(word)
                continue
            try:
                scale = float(word)
            except ValueError:
                scale = 0.0
            if not 0.25 <= scale <= 4:
                raise ValueError(
                    f"tta={list(words)}: {word!r} is neither hflip, vflip nor a scale between 0.25 and 4 "
                    "(e.g. --tta hflip vflip 0.75 1.25)."
                )
            scales.add(scale)
        return cls("hflip" in flips, "vflip" in flips, tuple(sorted(scales)))

    @property
    def copies(self) -> int:
        """Network evaluations per image: (1 + flips) x scales."""
        return (1 + self.hflip + self.vflip) * len(self.scales)

    def describe(self) -> str:
        flips = [name for name in FLIPS if getattr(self, name)]
        return f"{self.copies} copies per image: {' + '.join(['as is', *flips])} at scales {list(self.scales)}"


def scaled_network(model, scale: float):
    """The network for inputs `scale` times as large (rounded to SIZE_MULTIPLE), sharing the model's layers."""
    height, width, bands = model.input_shape[1:]
    size = [max(SIZE_MULTIPLE, round(side * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE) for side in (height, width)]
    images = keras.Input((*size, bands), name="images")
    return keras.models.clone_model(model, input_tensors=images, clone_function=lambda layer: layer)


def flipped(images, tta: TestTimeAugmentation):
    """(copies, axes): the images, and those flipped, concatenated on the batch axis, and the axis each flipped."""
    axes = [None] + [axis for name, axis in FLIPS.items() if getattr(tta, name)]
    return tf.concat([images if axis is None else tf.reverse(images, [axis]) for axis in axes], 0), axes


def averaged(outputs, axes):
    """The mean of the copies' outputs (len(axes) x B on the batch axis, as `flipped` made them), each flipped
    back first."""
    parts = tf.split(outputs, len(axes), axis=0) if len(axes) > 1 else [outputs]
    unflipped = [part if axis is None else tf.reverse(part, [axis]) for part, axis in zip(parts, axes)]
    return tf.add_n(unflipped) / len(axes)
