"""Weights from elsewhere: bubbliiiing's unet-keras / unet-tf2 files (written by tests/legacy_unet.py in a fresh
process, so their decoder has Keras' automatic names), Keras' ResNet50 notop file, and files that are wrong."""

import glob
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from nets.unet import UnetVariant, build_unet
from tests.helpers import ROOT, run_inline, run_script
from tests.legacy_unet import write_keras2_weights
from utils.weights.checkpoint import read_settings
from utils.weights.formats import weights_variant
from utils.weights.matching import load_weights, report_loading
from utils.weights.sources import resolve_model_path

BUBBLIIIING = UnetVariant(preprocess="tf", upsampling="nearest")


def write_legacy_unet(folder, backbone="vgg", layout="full", num_classes=21, size=64) -> str:
    """Runs tests/legacy_unet.py in its own process on a random image; returns the folder it wrote into."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(os.path.join(folder, "image.png"))
    args = ["--backbone", backbone, "--layout", layout, "--num_classes", str(num_classes)]
    args += ["--image", os.path.join(folder, "image.png"), "--out", str(folder)]
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "legacy_unet.py"), *args], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return str(folder)


def array_owners(npz) -> dict:
    """{bytes of an array: the file layer holding it}; the random weights make every array unique."""
    owners = {}
    for key in npz.files:
        owners.setdefault(npz[key].astype(np.float32).tobytes(), set()).add(key.split("/")[0])
    assert all(len(names) == 1 for names in owners.values()), "two layers hold the same array"
    return {data: names.pop() for data, names in owners.items()}


@pytest.mark.parametrize(("backbone", "layout"), [("vgg", "full"), ("vgg", "weights"), ("resnet50", "full")])
def test_bubbliiiing_file_loads_every_tensor_and_runs_as_trained(tmp_path, capsys, backbone, layout):
    from unet import Unet

    folder = write_legacy_unet(tmp_path / "legacy", backbone, layout)
    path = os.path.join(folder, "unet.h5")
    variant, known = weights_variant(path)
    epsilon = 1e-3 if backbone == "resnet50" else UnetVariant().bn_epsilon  # Keras 2.2's ResNet50 BN epsilon
    assert variant == UnetVariant("tf", "nearest", epsilon) and "bubbliiiing" in known

    unet = Unet(model_path=path, num_classes=21, backbone=backbone, input_shape=[64, 64], precision="fp32")
    decoder_layers = 9 if backbone == "vgg" else 11
    assert f"{decoder_layers} by place: unnamed in the file" in capsys.readouterr().out
    # Every tensor of the model is one of the file's, each file layer's arrays went to one model layer, and the
    # unnamed decoder layers went in the order Keras numbered them (conv2d, conv2d_1, ...).
    npz = np.load(os.path.join(folder, "weights.npz"))
    owners, pairs = array_owners(npz), {}
    for layer in unet.model.layers:
        for weight in layer.get_weights():
            pairs.setdefault(layer.name, set()).add(owners[weight.astype(np.float32).tobytes()])
    assert all(len(sources) == 1 for sources in pairs.values())
    pairs = {name: sources.pop() for name, sources in pairs.items()}
    assert sorted(pairs.values()) == sorted({key.split("/")[0] for key in npz.files})
    unnamed = [name for name in pairs if name.startswith("decoder") or name == "head"]
    assert len(unnamed) == decoder_layers
    assert [pairs[name] for name in unnamed] == ["conv2d"] + [f"conv2d_{i}" for i in range(1, decoder_layers)]
    if backbone == "vgg":
        assert all(pairs[name] == name for name in pairs if name.startswith("block"))
    else:
        assert pairs["conv1_conv"] == "conv1" and pairs["conv4_block3_2_bn"] == "bn4c_branch2b"
        assert pairs["conv3_block1_0_conv"] == "res3a_branch1"

    # Their preprocessing, upsampling and BN epsilon reproduce their network's probabilities.
    image = np.asarray(Image.open(os.path.join(folder, "image.png")))
    theirs = np.load(os.path.join(folder, "probabilities.npy"))  # (64, 64, 21)
    ours = unet.model(image[None].astype(np.float32)).numpy()[0]
    print(f"{backbone} {layout}: max |dprob| vs their network {np.abs(ours - theirs).max():.1e}")  # shown by -s
    assert np.abs(ours - theirs).max() <= 1e-4
    assert (unet.segment([image])[0] == theirs.argmax(-1)).mean() >= 0.999
    # ... and are needed: the default network with the same weights gives other probabilities.
    wrong = [UnetVariant()] + ([UnetVariant("tf", "nearest")] if backbone == "resnet50" else [])
    for other in wrong:
        model = build_unet((64, 64, 3), 21, backbone, other)
        assert not load_weights(model, path).skipped
        assert np.abs(model(image[None].astype(np.float32)).numpy()[0] - theirs).max() > 0.01


def test_train_from_a_bubbliiiing_file_with_other_classes_then_predict(tiny_voc, tmp_path):
    path = os.path.join(write_legacy_unet(tmp_path / "legacy", size=32), "unet.h5")
    logs = str(tmp_path / "logs")
    args = ["--model_path", path, "--num_classes", "3", "--input_shape", "32", "32", "--precision", "fp32"]
    args += ["--vocdevkit_path", tiny_voc, "--save_dir", logs, "--freeze_train", "false", "--unfreeze_epoch", "1"]
    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded 21 layers (13 by name, 8 by place: unnamed in the file), left 1 initialised" in result.stdout
    assert "head: 21 classes in the file, 3 in the model (num_classes), left initialised" in result.stdout
    assert "trained as: input x / 127.5 - 1, nearest upsampling" in result.stdout
    checkpoint = os.path.join(logs, "last_epoch_weights.weights.h5")
    assert read_settings(checkpoint).variant == BUBBLIIIING
    image = os.path.join(tiny_voc, "VOC2007", "JPEGImages", "img 10.jpg")
    flags = ["--model_path", checkpoint, "--num_classes", "3", "--input_shape", "32", "32", "--show", "false"]
    result = run_inline("predict.py", *flags, cwd=tmp_path, stdin=image + "\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained as: input x / 127.5 - 1, nearest upsampling (recorded in the file)" in result.stdout
    assert (tmp_path / "img_out" / "img 10.png").is_file()
    # get_miou.py takes the bubbliiiing file itself (21 classes; the labels use 3 of them)
    out = tmp_path / "miou"
    flags = ["--model_path", path, "--num_classes", "21", "--input_shape", "32", "32", "--vocdevkit_path", tiny_voc]
    result = run_inline("get_miou.py", *flags, "--name_classes", *map(str, range(21)), "--miou_out_path", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained as: input x / 127.5 - 1, nearest upsampling (a Keras 2 UNet" in result.stdout
    assert len(os.listdir(out / "detection-results")) == 4


def keras22_name(name: str) -> str:
    """keras.applications' ResNet50 name -> Keras 2.2's (the inverse of what the loader translates)."""
    if name in ("conv1_conv", "conv1_bn"):
        return {"conv1_conv": "conv1", "conv1_bn": "bn_conv1"}[name]
    if not name.startswith("conv") or "_block" not in name or not name.endswith(("_conv", "_bn")):
        return name
    stage, block, index, kind = name[4], int(name.split("_block")[1].split("_")[0]), name.split("_")[2], name[-4:]
    branch = {"0": "1", "1": "2a", "2": "2b", "3": "2c"}[index]
    return f"{'res' if kind == 'conv' else 'bn'}{stage}{'abcdef'[block - 1]}_branch{branch}"


@pytest.mark.parametrize("names", ["keras.applications", "keras 2.2"])
def test_keras_resnet50_notop_file_fills_the_encoder(tmp_path, monkeypatch, names):
    keras.utils.set_random_seed(5)
    reference = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(64, 64, 3))
    rng = np.random.default_rng(5)
    for weight in reference.weights:  # distinct values everywhere (BN starts as ones and zeros)
        weight.assign(rng.uniform(0.5, 1.5, weight.shape).astype(np.float32))
    # "keras 2.2": the names of the file keras.applications shipped before 2019, and of bubbliiiing's ResNet50
    rename = keras22_name if names == "keras 2.2" else str
    os.makedirs(tmp_path / "model_data")
    file_name = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_keras2_weights(str(tmp_path / "model_data" / file_name), reference, rename)
    monkeypatch.chdir(tmp_path)
    path, source = resolve_model_path("imagenet", "resnet50")
    assert path == os.path.join("model_data", file_name)
    variant, _ = weights_variant(path)
    assert variant == UnetVariant(bn_epsilon=1e-3 if names == "keras 2.2" else UnetVariant().bn_epsilon)

    model = build_unet((64, 64, 3), 2, "resnet50", variant)
    loading = load_weights(model, path)
    encoder = [layer for layer in reference.layers if layer.weights]
    assert len(loading.loaded) == len(encoder) == 106 and not loading.by_topology and not loading.unused
    assert {skip.why for skip in loading.skipped} == {"not in the file"}
    assert {skip.name for skip in loading.skipped} == {f"decoder{i}_conv{j}" for i in range(1, 6) for j in (1, 2)} | {
        "head"
    }
    for layer in encoder:  # every tensor
        for mine, theirs in zip(model.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    assert "loaded 106 layers, left 11 initialised" in report_loading(source, loading)


def test_wrong_files_are_clear_errors_naming_the_file(tiny_voc, tmp_path):
    from unet import Unet

    settings = {"num_classes": 3, "input_shape": [32, 32], "precision": "fp32"}
    not_hdf5 = tmp_path / "weights.h5"
    not_hdf5.write_text("<html>404</html>")
    with pytest.raises(ValueError, match=f"{not_hdf5}: not a readable HDF5 weights file"):
        Unet(model_path=str(not_hdf5), **settings)

    whole = str(tmp_path / "whole.weights.h5")
    build_unet((32, 32, 3), 3).save_weights(whole)
    truncated = tmp_path / "truncated.weights.h5"
    truncated.write_bytes(open(whole, "rb").read()[: os.path.getsize(whole) // 2])
    with pytest.raises(ValueError, match=f"{truncated}: not a readable HDF5 weights file.*truncated"):
        Unet(model_path=str(truncated), **settings)

    other = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8), keras.layers.Dense(2)])
    classifier = str(tmp_path / "classifier.h5")
    other.save(classifier)
    with pytest.raises(ValueError, match=f"{classifier} does not fit a vgg UNet .*The file holds dense, dense_1"):
        Unet(model_path=classifier, **settings)
    result = run_inline(
        "train.py", "--model_path", classifier, "--vocdevkit_path", tiny_voc, "--save_dir", tmp_path / "logs",
        "--num_classes", "3", "--input_shape", "32", "32", "--precision", "fp32",
    )  # fmt: skip
    assert result.returncode == 2
    assert f"{classifier} does not fit a vgg UNet" in result.stderr and "No layer loaded" in result.stderr
    assert not glob.glob(str(tmp_path / "logs" / "*.h5"))
