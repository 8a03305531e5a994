"""The encoders of nets/encoders.py and the networks on them: shapes, deterministic names, freezing, the atrous
rewrite for DeepLabV3+, ImageNet files loading by name, and FCN-8s' conv6 / conv7 from VGG16's classifier."""

import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

from nets.encoders import BN_MOMENTUM, ENCODERS, apply_encoder
from nets.fcn import build_fcn8
from nets.folding import fold_batch_norms, foldable_pairs
from nets.models import build_model, set_backbone_trainable
from nets.preprocess import Preprocess
from nets.unet import UnetVariant, model_variant
from tests.helpers import ROOT
from utils.weights.matching import load_weights, report_loading
from utils.weights.sources import IMAGENET_FILES, VGG16_TOP_FILE, resolve_model_path

NEW_NETWORKS = [
    ("unet", "mobilenetv2"),
    ("unet", "efficientnetv2b0"),
    ("deeplabv3plus", "vgg"),
    ("deeplabv3plus", "resnet50"),
    ("deeplabv3plus", "mobilenetv2"),
    ("deeplabv3plus", "efficientnetv2b0"),
]
# The pixel each stride-2 step of an encoder keeps: ResNet50's 1x1 stride-2 convolutions sample even positions,
# MobileNetV2's 3x3 ones (padded at the end) are centred on odd ones. (EfficientNetV2's squeeze-excitation blocks
# average over every pixel, so its atrous features are not the strided ones at any subset.)
KEPT = {"resnet50": 0, "mobilenetv2": 1}
# Writes keras.applications' network as its ImageNet file is written (Keras' own HDF5 writer, the layer-named
# layout), in a process of its own, so nothing of the test's Keras session is shared.
WRITER = """
import sys, h5py, keras, numpy as np
from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
name, path = sys.argv[1:]
model = {"mobilenetv2": keras.applications.MobileNetV2, "efficientnetv2b0": keras.applications.EfficientNetV2B0}[name](
    include_top=False, weights=None, input_shape=(64, 64, 3))
rng = np.random.default_rng(3)
for weight in model.weights:  # distinct values everywhere (BN starts as ones and zeros)
    weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype(np.float32))
with h5py.File(path, "w") as f:
    save_weights_to_hdf5_group(f, model)
np.savez(path + ".npz", **{w.path: w.numpy() for w in model.weights})
"""


@pytest.mark.parametrize(("model", "backbone"), NEW_NETWORKS)
def test_shapes_and_names(model, backbone):
    network = build_model(model, (96, 64), 3, backbone)
    assert network.output_shape == (None, 96, 64, 3)
    probabilities = network(np.zeros((1, 96, 64, 3), np.uint8))
    assert probabilities.shape == (1, 96, 64, 3) and probabilities.dtype == "float32"
    np.testing.assert_allclose(np.sum(probabilities, axis=-1), 1.0, atol=1e-5)
    names = [layer.name for layer in network.layers]
    assert names == [layer.name for layer in build_model(model, (96, 64), 3, backbone).layers]
    assert ENCODERS[backbone].first_conv in names and len(set(names)) == len(names)
    assert model_variant(network) == UnetVariant()  # as built: nothing for a checkpoint to record as a variant
    norms = [layer for layer in network.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert all(layer.momentum <= BN_MOMENTUM for layer in norms)  # MobileNetV2's 0.999 would not follow its data
    if model == "deeplabv3plus":  # the deepest features at stride 16, whatever the encoder
        assert {"aspp_conv3", "aspp_pool_conv", "decoder_low", "head"} <= set(names)
        deepest = network.get_layer("aspp_conv0").input
        assert tuple(deepest.shape[1:3]) == (96 // 16, 64 // 16)


@pytest.mark.parametrize(("model", "backbone"), [("unet", "mobilenetv2"), ("deeplabv3plus", "resnet50")])
def test_freezing_freezes_the_encoder_alone(model, backbone):
    network = build_model(model, (64, 64), 2, backbone)
    set_backbone_trainable(network, False)
    trainable = {v.path.split("/")[0] for v in network.trainable_weights}
    encoder = {layer.name for layer in network.layers if layer.name.startswith(ENCODERS[backbone].prefixes)}
    assert trainable and not trainable & encoder
    assert all(name.startswith(("decoder", "aspp", "head")) for name in trainable)
    set_backbone_trainable(network, True)
    assert len(network.trainable_weights) == len([w for w in network.weights if w.trainable])


@pytest.mark.parametrize("backbone", list(KEPT))
def test_the_atrous_encoder_computes_the_strided_ones_features_at_every_other_pixel(backbone):
    """DeepLabV3+'s encoder at output stride 16 holds the same weights as at 32 and, with them, the same deepest
    features at the positions the stride kept: the rewrite changes strides and dilations, not the arithmetic."""
    images = keras.Input((64, 64, 3))
    strided = keras.Model(images, apply_encoder(backbone, images, 32)[-1])  # (B, 2, 2, C)
    atrous = keras.Model(images, apply_encoder(backbone, images, 16)[-1])  # (B, 4, 4, C)
    rng = np.random.default_rng(0)
    for weight in strided.weights:  # the kernels as initialised; the batch norms' statistics and affines drawn
        if len(weight.shape) == 1:
            scale = 0.2 if weight.path.endswith(("beta", "moving_mean")) else 1.0
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype(np.float32) * scale)
    for layer in strided.layers:
        atrous.get_layer(layer.name).set_weights(layer.get_weights())
    x = rng.uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    coarse, fine = strided(x).numpy(), atrous(x).numpy()
    assert coarse.shape[1:3] == (2, 2) and fine.shape[1:3] == (4, 4)
    kept, tolerance = KEPT[backbone], 1e-5 * np.abs(coarse).max()
    np.testing.assert_allclose(fine[:, kept::2, kept::2], coarse, rtol=0, atol=tolerance)
    assert not np.allclose(fine[:, 1 - kept :: 2, 1 - kept :: 2], coarse, rtol=0, atol=tolerance)  # it can tell


@pytest.mark.parametrize(("model", "backbone"), [("unet", "mobilenetv2"), ("deeplabv3plus", "efficientnetv2b0")])
def test_imagenet_file_loads_by_name(tmp_path, monkeypatch, model, backbone):
    file_name = IMAGENET_FILES[backbone][0]
    os.makedirs(tmp_path / "model_data")
    path = str(tmp_path / "model_data" / file_name)
    writer = subprocess.run([sys.executable, "-c", WRITER, backbone, path], capture_output=True, text=True, cwd=ROOT)
    assert writer.returncode == 0, writer.stderr[-3000:]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # no cached copy
    found, source = resolve_model_path("auto", backbone, model)
    assert found == os.path.join("model_data", file_name) and "ImageNet" in source

    network = build_model(model, (64, 64), 3, backbone)
    loading = load_weights(network, found)
    written = dict(np.load(path + ".npz"))
    encoder = [
        layer for layer in network.layers if layer.weights and layer.name.startswith(ENCODERS[backbone].prefixes)
    ]
    assert sorted(loading.loaded) == sorted(layer.name for layer in encoder) and not loading.by_topology
    assert {skip.why for skip in loading.skipped} == {"not in the file"}
    assert all(not skip.name.startswith(ENCODERS[backbone].prefixes) for skip in loading.skipped)
    for layer in encoder:  # every tensor, by its path in the writer's model
        for weight in layer.weights:
            np.testing.assert_array_equal(weight.numpy(), written[weight.path])
    assert f"loaded {len(encoder)} layers" in report_loading(source, loading)


def test_an_encoder_without_its_imagenet_file_starts_at_random_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    path, source = resolve_model_path("auto", "mobilenetv2")
    assert path is None and "random initialisation" in source and IMAGENET_FILES["mobilenetv2"][1] in source
    with pytest.raises(ValueError, match="ImageNet mobilenetv2 weights are not available"):
        resolve_model_path("imagenet", "mobilenetv2", "deeplabv3plus")


def test_fcn8_takes_conv6_and_conv7_from_vgg16s_classifier(tmp_path, monkeypatch):
    """VGG16 with its classifier (narrowed to 64 units: the layout and names of keras.applications' file, a
    fraction of its 528 MB), written as Keras writes it: FCN-8s' fc6 at the window that covers pool5 exactly
    computes what fc1 computes on the flattened pool5."""
    keras.utils.set_random_seed(4)
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(224, 224, 3))
    x = keras.layers.Flatten(name="flatten")(base.output)  # (B, 7 x 7 x 512)
    x = keras.layers.Dense(64, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(64, activation="relu", name="fc2")(x)
    classifier = keras.Model(base.input, keras.layers.Dense(10, name="predictions")(x))
    os.makedirs(tmp_path / "model_data")
    with h5py.File(tmp_path / "model_data" / VGG16_TOP_FILE[0], "w") as f:
        save_weights_to_hdf5_group(f, classifier)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))  # no cached copy
    path, source = resolve_model_path("auto", "vgg", "fcn8")
    assert path == os.path.join("model_data", VGG16_TOP_FILE[0]) and "fc6 / fc7 as the paper's" in source

    fcn = build_fcn8((224, 224, 3), 3, fc_filters=64)
    loading = load_weights(fcn, path)
    assert {"fc6", "fc7"} <= set(loading.loaded) and loading.unused == ["predictions"]
    assert "fc6: the file's fc1 (25088, 64) reshaped to a 7x7 convolution" in report_loading(source, loading)
    image = np.random.default_rng(1).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    fc6 = keras.Model(fcn.input, fcn.get_layer("fc6").output)(image).numpy()[0, 3, 3]  # (64,)
    fc1 = keras.Model(classifier.input, classifier.get_layer("fc1").output)(Preprocess()(image)).numpy()[0]
    np.testing.assert_allclose(fc6, fc1, rtol=1e-4, atol=1e-4 * np.abs(fc1).max())

    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    os.remove(path)  # the encoder-only file, or HED: fc6 / fc7 start fresh, and the log says how to get them
    _, source = resolve_model_path("auto", "vgg", "fcn8")
    assert "fc6 / fc7 start fresh" in source and VGG16_TOP_FILE[1] in source


@pytest.mark.parametrize(("model", "backbone"), [("unet", "mobilenetv2"), ("deeplabv3plus", "efficientnetv2b0")])
def test_folding_the_batch_norms_keeps_the_probabilities(model, backbone):
    """The prediction path's network (nets/folding.py) computes what the trained one does, with no
    BatchNormalization left after a convolution; a network without any is not copied."""
    network = build_model(model, (64, 64), 3, backbone)
    rng = np.random.default_rng(2)
    for weight in network.weights:  # statistics and affines as training leaves them, and a head that is not zero
        name = weight.path.rsplit("/", 1)[-1]
        if name in ("moving_mean", "beta", "bias"):
            weight.assign(rng.uniform(-0.2, 0.2, weight.shape).astype(np.float32))
        elif name in ("moving_variance", "gamma"):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype(np.float32))
        elif weight.path.startswith("head"):
            weight.assign(rng.normal(0, 0.1, weight.shape).astype(np.float32))
    folded = fold_batch_norms(network)
    norms = [layer for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert [layer.name for layer in folded.layers] == [layer.name for layer in network.layers]
    assert len(norms) < len(foldable_pairs(network)) / 10  # what follows a convolution is gone
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    expected = network(images, training=False).numpy()
    assert expected.std() > 0.01  # the probabilities vary: the comparison can fail
    np.testing.assert_allclose(folded(images, training=False).numpy(), expected, atol=1e-4)
    vgg = build_model("unet", (64, 64), 3)
    assert fold_batch_norms(vgg) is vgg
