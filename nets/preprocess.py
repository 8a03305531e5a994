"""The pixels' way into every network: a layer that maps image values to what its encoder's weights were trained
on, inside the model, so that a checkpoint or an export carries its own preprocessing."""

import keras
from keras import layers

# Keras' ImageNet VGG16 / ResNet50 weights were trained on BGR images minus this per-channel mean.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

# keras.applications' "torch" mode (EfficientNetV2's ImageNet weights): x / 255 minus this RGB mean, over this std.
TORCH_MEAN, TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# What the network does to pixels in [0, 255] before its first convolution, by the weights it was trained with
# (keras.applications' names): caffe for the ImageNet weights of VGG16 and ResNet50 (and so for this platform's
# checkpoints of them), tf for MobileNetV2's and for the weights of bubbliiiing's unet-keras / unet-tf2, torch for
# EfficientNetV2's, unit for the networks trained from scratch.
PREPROCESSING = {
    "caffe": "RGB -> BGR minus the ImageNet mean",
    "tf": "x / 127.5 - 1",
    "torch": "x / 255, minus the ImageNet mean, over its std",
    "unit": "x / 255",
}
# caffe with other than 3 bands: one mean for every band, the average of the three. The first convolution's
# pretrained kernels are adapted to match (utils/weights/matching.py adapt_first_conv). torch likewise.
CAFFE_GREY_MEAN = sum(CAFFE_BGR_MEAN) / 3


@keras.saving.register_keras_serializable(package="unet")
class Preprocess(layers.Layer):
    """Pixels -> the encoder's input, in float32 whatever the policy.

    Each band is first stretched from ranges[c] = (low, high) to [0, 255] (images that are not 8-bit; no clipping),
    then mapped as PREPROCESSING[mode] says. With other than 3 bands, caffe subtracts CAFFE_GREY_MEAN from each
    (there is no RGB to turn into BGR). The ranges are part of the network, so exports carry them.
    """

    def __init__(self, mode: str = "caffe", ranges=(), **kwargs):
        if mode not in PREPROCESSING:
            raise ValueError(f"preprocess={mode!r}: expected one of {', '.join(PREPROCESSING)}.")
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mode = mode
        self.ranges = tuple(tuple(float(v) for v in r) for r in ranges)

    def call(self, images):
        x = keras.ops.cast(images, "float32")
        if self.ranges:
            low = keras.ops.convert_to_tensor([low for low, _ in self.ranges])
            scale = keras.ops.convert_to_tensor([255.0 / (high - low) for low, high in self.ranges])
            x = (x - low) * scale
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            rgb = x.shape[-1] == 3
            mean, std = (TORCH_MEAN, TORCH_STD) if rgb else (sum(TORCH_MEAN) / 3, sum(TORCH_STD) / 3)
            return (x / 255.0 - keras.ops.convert_to_tensor(mean)) / keras.ops.convert_to_tensor(std)
        if self.mode == "unit":
            return x / 255.0
        if x.shape[-1] != 3:
            return x - CAFFE_GREY_MEAN
        # RGB -> BGR as a gather, not a flip: TFLite's int8 REVERSE_V2 keeps the bytes but not their scale (export.py's
        # full-integer model was 7 % of pixels off on membrane); GATHER shares its input's quantisation.
        return keras.ops.take(x, [2, 1, 0], axis=-1) - keras.ops.convert_to_tensor(CAFFE_BGR_MEAN)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "ranges": [list(r) for r in self.ranges]}
