import keras
import numpy as np
import pytest

from nets.models import build_model, set_backbone_trainable
from nets.unet import build_unet
from nets.vgg16 import CAFFE_BGR_MEAN, Preprocess, build_vgg16


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
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_unet((32, 32, 3), 2)
        assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
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
    model = build_model(name, (64, 64), 2, backbone)
    set_backbone_trainable(model, False)
    assert {v.path.split("/")[0] for v in model.trainable_weights} == trainable


def test_a_model_without_pretrained_encoder_has_nothing_to_freeze():
    model = build_model("unet_small", (32, 32), 2)
    set_backbone_trainable(model, False)
    assert len(model.trainable_weights) == len([w for w in model.weights if w.trainable])
    assert len(model.trainable_weights) > 0 and all(layer.trainable for layer in model.layers)
