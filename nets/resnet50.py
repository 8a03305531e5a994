"""ResNet50 encoder built on `keras.applications.ResNet50`, tapped at strides 2 to 32."""

import keras

# Outputs of the stem and of each stage: strides 2, 4, 8, 16, 32 with 64, 256, 512, 1024, 2048 channels.
RESNET50_TAPS = ["conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
# keras.applications.ResNet50's BatchNormalization epsilon (Keras 2.2's ResNet50 used Keras' default, 1e-3).
KERAS_BN_EPSILON = 1.001e-5


def apply_resnet50_encoder(x) -> list:
    """Runs ResNet50 on preprocessed images (BGR minus the ImageNet mean).

    Args:
        x: Tensor (B, H, W, 3).

    Returns:
        [(B, H/2, W/2, 64), (B, H/4, W/4, 256), (B, H/8, W/8, 512), (B, H/16, W/16, 1024), (B, H/32, W/32, 2048)].
    """
    # weights=None: weights are loaded by name afterwards (utils/weights/), so the layers keep
    # the names of keras.applications.ResNet50 and its ImageNet file fits them.
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_tensor=x)
    return [resnet.get_layer(name).output for name in RESNET50_TAPS]
