"""The networks: output shapes, layer names, preprocessing, freezing, and the heads' own checks."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from nets.fcn import BilinearUpsampling
from nets.models import build_model, check_model_settings, set_backbone_trainable
from nets.preprocess import CAFFE_BGR_MEAN, Preprocess
from nets.unet import build_unet
from nets.unet_classic import classic_output_size
from nets.vgg16 import build_vgg16
from tests.helpers import MIXED, ROOT, build_network
from utils.precision import cpu_flags


@pytest.mark.parametrize("size", [(32, 32), (64, 96)])
def test_vgg_unet_output_is_input_resolution(size):
    model = build_unet((*size, 3), num_classes=3)
    assert model.output_shape == (None, *size, 3)
    probabilities = model(np.zeros((2, *size, 3), np.float32))
    np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, atol=1e-5)


def test_resnet50_unet_output_is_input_resolution():
    model = build_unet((64, 64, 3), num_classes=5, backbone="resnet50")
    assert model.output_shape == (None, 64, 64, 5)
    assert model.get_layer("conv5_block3_out").output.shape[1:3] == (2, 2)


def test_vgg16_feature_maps_and_layer_names_match_keras_applications():
    encoder = build_vgg16((64, 64, 3))
    assert [tuple(f.shape[1:]) for f in encoder.outputs] == [
        (64, 64, 64),
        (32, 32, 128),
        (16, 16, 256),
        (8, 8, 512),
        (4, 4, 512),
    ]
    reference = keras.applications.VGG16(weights=None, include_top=False, input_shape=(64, 64, 3))
    conv_names = [layer.name for layer in reference.layers if isinstance(layer, keras.layers.Conv2D)]
    ours = build_unet((64, 64, 3), 2)
    for name in conv_names:
        assert ours.get_layer(name).kernel.shape == reference.get_layer(name).kernel.shape


def test_layer_names_are_deterministic():
    names = [layer.name for layer in build_unet((32, 32, 3), 2).layers]
    assert names == [layer.name for layer in build_unet((32, 32, 3), 2).layers]
    assert {"decoder1_conv1", "decoder4_conv2", "head", "probabilities", "preprocess"} <= set(names)


def test_caffe_preprocessing_is_bgr_minus_mean():
    pixel = np.array([[[[10.0, 20.0, 30.0]]]], np.float32)  # R, G, B
    expected = np.array([30.0, 20.0, 10.0]) - np.array(CAFFE_BGR_MEAN)
    np.testing.assert_allclose(Preprocess()(pixel)[0, 0, 0], expected, rtol=1e-6)


def test_softmax_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy(MIXED)
    try:
        model = build_unet((32, 32, 3), 2)
        assert model.get_layer("block1_conv1").compute_dtype == MIXED.split("_")[1]
        assert model(np.zeros((1, 32, 32, 3), np.float32)).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_freezing_the_backbone_leaves_the_decoder_trainable():
    model = build_unet((32, 32, 3), 2)
    set_backbone_trainable(model, False)
    trainable = {v.path.split("/")[0] for v in model.trainable_weights}
    assert trainable == {f"decoder{i}_conv{j}" for i in range(1, 5) for j in (1, 2)} | {"head"}
    set_backbone_trainable(model, True)
    assert len(model.trainable_weights) == len(model.weights)


FCN_UPSAMPLING = ["upscore2", "upscore_pool4", "upscore8"]


@pytest.mark.parametrize(
    "name, backbone, trainable",
    [
        ("unet", "resnet50", {f"decoder{i}_conv{j}" for i in range(1, 6) for j in (1, 2)} | {"head"}),
        ("fcn8", "vgg", {"fc6", "fc7", "score_fr", "score_pool4", "score_pool3", *FCN_UPSAMPLING}),
    ],
)
def test_freezing_leaves_everything_after_the_pretrained_encoder_trainable(name, backbone, trainable):
    model = build_network(name, (64, 64), 2, backbone)
    set_backbone_trainable(model, False)
    assert {v.path.split("/")[0] for v in model.trainable_weights} == trainable


def test_a_model_without_pretrained_encoder_has_nothing_to_freeze():
    model = build_model("unet_small", (32, 32), 2)
    set_backbone_trainable(model, False)
    assert len(model.trainable_weights) == len([w for w in model.weights if w.trainable])
    assert len(model.trainable_weights) > 0 and all(layer.trainable for layer in model.layers)


# input side -> output side of each head, at two input sizes (height, width)
SHAPES = {
    "fcn8": [((64, 64), (64, 64)), ((96, 64), (96, 64))],
    "unet_small": [((32, 32), (32, 32)), ((48, 80), (48, 80))],
    "unet_classic": [((572, 572), (388, 388)), ((188, 252), (4, 68))],
}


@pytest.mark.parametrize("name", SHAPES)
def test_output_shapes_at_two_input_sizes(name):
    for input_shape, output_shape in SHAPES[name]:
        model = build_network(name, input_shape, 3)
        assert model.output_shape == (None, *output_shape, 3)
        if max(input_shape) < 300:  # run it too: the declared shape is the computed one
            probabilities = model(np.zeros((1, *input_shape, 3), np.uint8))
            assert probabilities.shape == (1, *output_shape, 3) and probabilities.dtype == "float32"


def test_settings_that_do_not_fit_a_head_are_clear_errors():
    with pytest.raises(ValueError, match=r"188 \+ 16k, e.g. \[236, 252, 268\]"):
        check_model_settings("unet_classic", (256, 256))
    with pytest.raises(ValueError, match="multiples of 16"):
        check_model_settings("unet_small", (40, 40))
    with pytest.raises(ValueError, match="built on VGG16.*Set backbone vgg"):
        check_model_settings("fcn8", (64, 64), "resnet50")
    with pytest.raises(ValueError, match="expected one of unet, deeplabv3plus, fcn8, unet_classic, unet_small"):
        check_model_settings("segnet", (64, 64))
    assert [classic_output_size(s) for s in (572, 444, 252, 188, 256, 180)] == [388, 260, 68, 4, 0, 0]


def test_fcn_upsampling_starts_bilinear_and_its_skips_start_silent():
    model = build_network("fcn8", (64, 64), 2)
    for name in ["score_fr", "score_pool4", "score_pool3"]:
        assert not np.any(model.get_layer(name).kernel.numpy())
    # A transposed convolution with the bilinear kernel is a half-pixel bilinear resize away from the borders.
    x = tf.random.stateless_uniform((1, 8, 8, 2), (0, 1))
    upsample = keras.layers.Conv2DTranspose(
        2, 16, strides=8, padding="same", use_bias=False, kernel_initializer=BilinearUpsampling(), dtype="float32"
    )
    got, expected = upsample(x).numpy(), tf.image.resize(x, (64, 64), method="bilinear").numpy()
    np.testing.assert_allclose(got[:, 8:-8, 8:-8], expected[:, 8:-8, 8:-8], atol=1e-5)
    assert model.get_layer("upscore8").kernel.shape == (16, 16, 2, 2)


@pytest.mark.skipif("amx_bf16" not in cpu_flags(), reason="the crash it guards against was on AMX CPUs")
def test_fcn_trains_in_mixed_bfloat16_without_crashing():
    # oneDNN's bf16 gradient of a 1x1 convolution from 4096 channels to a few aborted the process (heap
    # corruption) on AMX CPUs; FCN's score layers run in float32. A subprocess, so that an abort fails the test.
    code = (
        "import keras, numpy as np\n"
        "keras.mixed_precision.set_global_policy('mixed_bfloat16')\n"
        "from nets.models import build_model\n"
        "from utils.losses import build_loss\n"
        "model = build_model('fcn8', (64, 64), 2)\n"
        "model.compile(optimizer='adam', loss=build_loss([1.0, 1.0], dice_loss=True))\n"
        "rng = np.random.default_rng(0)\n"
        "images, labels = rng.integers(0, 256, (2, 64, 64, 3), np.uint8), rng.integers(0, 2, (2, 64, 64), np.uint8)\n"
        "print([float(model.train_on_batch(images, labels)) for _ in range(3)])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    "size, rate, kernel", [(4, 18, 3), (4, 2, 3), (16, 6, 3), (9, 2, 3), (8, 3, 5), (7, 2, 2), (2, 1, 7), (3, 1, 6)]
)
def test_atrous_convolution_tap_by_tap_equals_keras_conv2d(size, rate, kernel):
    """The same weights give the same result as Conv2D's (dilated) convolution, whether the map's size is known (the
    taps past it are skipped) or not (every tap is computed, or undilated, Keras' own convolution)."""
    from nets.atrous import AtrousConv2D

    x = np.random.default_rng(size + rate).normal(size=(2, size, size + 1, 8)).astype("float32")
    reference = keras.layers.Conv2D(5, kernel, padding="same", dilation_rate=rate)
    atrous = AtrousConv2D(5, kernel, padding="same", dilation_rate=rate)
    reference.build(x.shape)
    atrous.build(x.shape)
    atrous.set_weights(reference.get_weights())
    expected = reference(x).numpy()
    unknown = tf.function(atrous, input_signature=[tf.TensorSpec((None, None, None, 8))])
    for found in (atrous(x).numpy(), unknown(x).numpy()):
        np.testing.assert_allclose(found, expected, atol=1e-5)


def test_deeplab_pyramid_uses_the_tap_by_tap_convolution_with_conv2d_weights(tmp_path, monkeypatch):
    """DeepLabV3+'s dilated pyramid branches are AtrousConv2D; a weights file of the Conv2D version (the files trained
    before) loads into them and predicts the same."""
    import nets.deeplab
    from nets.atrous import AtrousConv2D
    from nets.deeplab import ASPP_RATES

    with monkeypatch.context() as before:
        before.setattr(nets.deeplab, "AtrousConv2D", keras.layers.Conv2D)
        earlier = build_network("deeplabv3plus", (64, 64), 3, "mobilenetv2")
    path = str(tmp_path / "deeplab.weights.h5")
    earlier.save_weights(path)
    model = build_network("deeplabv3plus", (64, 64), 3, "mobilenetv2")
    model.load_weights(path)  # Keras' loader; and the project's, as train.py and predict.py load files:
    from utils.weights.matching import load_weights

    loading = load_weights(build_network("deeplabv3plus", (64, 64), 3, "mobilenetv2"), path)
    assert not loading.skipped and not loading.unused and not loading.by_topology
    for i in range(1, len(ASPP_RATES) + 1):
        assert isinstance(model.get_layer(f"aspp_conv{i}"), AtrousConv2D)
        assert type(earlier.get_layer(f"aspp_conv{i}")) is keras.layers.Conv2D
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), earlier.predict(x, verbose=0), atol=1e-5)


def test_fcn8_fc6_skips_the_taps_that_see_only_padding():
    """FCN-8s' 7x7 fc6 on pool5's small maps is AtrousConv2D: at 64 px (2 x 2 maps) it computes 9 of its 49 taps,
    and gives Keras' Conv2D's result with the same weights."""
    from nets.atrous import AtrousConv2D
    from nets.fcn import build_fcn8

    model = build_fcn8((64, 64, 3), 3, fc_filters=16)
    fc6 = model.get_layer("fc6")
    assert isinstance(fc6, AtrousConv2D) and fc6.kernel.shape[:2] == (7, 7)
    x = np.random.default_rng(1).normal(size=(2, 2, 2, fc6.kernel.shape[2])).astype("float32")
    reference = keras.layers.Conv2D(16, 7, padding="same", activation="relu")
    reference.build(x.shape)
    reference.set_weights(fc6.get_weights())
    np.testing.assert_allclose(fc6(x).numpy(), reference(x).numpy(), atol=1e-4)
