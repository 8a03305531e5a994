"""A "same"-padded convolution whose kernel reaches past the map, computed tap by tap: the same layer, weights and
result as keras.layers.Conv2D, at the cost of the taps that see the image.

TensorFlow computes a dilated convolution on the CPU as SpaceToBatch, a convolution and BatchToSpace: the feature
map is padded by the rate on each side and every tap is computed, padding included. DeepLab's pyramid dilates by
6, 12 and 18 on maps of H/16: at a 64 px input (4 x 4 maps) the 3 x 3 at rate 18 computes on a 36 x 36 padded map,
where all its taps but the centre multiply zeros. Tap by tap, each tap is a matrix product of the input shifted by
its offset, and a tap whose offset reaches past the map is skipped: at 4 x 4 the rate-18 convolution is its centre
tap alone, a 1 x 1 convolution. FCN-8s' fc6 is the undilated case: a 7 x 7 convolution of 512 to 4096 channels on
pool5's maps of H/32, at a 64 px input 2 x 2, where 40 of its 49 taps see only padding. Measured in benchmarks
(docs/performance.md).
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="unet")
class AtrousConv2D(layers.Conv2D):
    """keras.layers.Conv2D (channels_last, stride 1, padding "same") whose convolution is a sum over the kernel's
    taps of the input shifted by each tap's offset, times that tap's (C_in, C_out) weights; the taps whose offset is
    past the map's height or width (they see only the zero padding) are left out. An undilated kernel whose every
    tap sees the map is Keras' own convolution."""

    def convolution_op(self, inputs, kernel):
        rates, strides = tuple(self.dilation_rate), tuple(self.strides)
        if strides != (1, 1) or self.padding != "same" or self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        kernel_h, kernel_w = kernel.shape[:2]
        # "same" padding puts floor((k - 1) * rate / 2) before: tap i looks at offset i * rate - that
        before = [(k - 1) * r // 2 for k, r in zip((kernel_h, kernel_w), rates)]
        offsets_h = [i * rates[0] - before[0] for i in range(kernel_h)]
        offsets_w = [j * rates[1] - before[1] for j in range(kernel_w)]
        height, width = inputs.shape[1], inputs.shape[2]  # static where known: then the blind taps are skipped
        taps = [
            (i, j)
            for i, dy in enumerate(offsets_h)
            for j, dx in enumerate(offsets_w)
            if (height is None or abs(dy) < height) and (width is None or abs(dx) < width)
        ]
        if rates == (1, 1) and len(taps) == kernel_h * kernel_w:
            return super().convolution_op(inputs, kernel)
        pad_h = max(abs(offsets_h[i]) for i, _ in taps)
        pad_w = max(abs(offsets_w[j]) for _, j in taps)
        padded = ops.pad(inputs, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]]) if pad_h or pad_w else inputs
        shape = ops.shape(inputs)
        total = None
        for i, j in taps:
            start = [0, pad_h + offsets_h[i], pad_w + offsets_w[j], 0]
            shifted = ops.slice(padded, start, [shape[0], shape[1], shape[2], shape[3]])
            term = ops.matmul(shifted, kernel[i, j])  # (B, H, W, C_in) @ (C_in, C_out)
            total = term if total is None else total + term
        return total


# Keras files key a layer's weights by its class name ("conv2d", "conv2d_1", ... in the order of the layers): under
# Conv2D's name, the weights files trained before this class existed, and those written since, load into either.
AtrousConv2D.__name__ = AtrousConv2D.__qualname__ = "Conv2D"
