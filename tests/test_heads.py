"""The other heads: FCN-8s, the classic valid-padding UNet with overlap-tile prediction, the small UNet."""

import csv
import glob
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from nets.fcn import BilinearUpsampling
from nets.models import build_model, check_model_settings, output_margin
from nets.unet_classic import classic_output_size
from tests.conftest import ROOT, make_tiny_voc, run_script
from tests.test_weights import VGG_CONVS
from utils.dataloader import augment, build_train_dataset, build_val_dataset
from utils.images import split_samples
from utils.tiling import mirror_pad, tile_probabilities
from utils.weights.matching import load_weights
from utils.weights.mismatch import mismatch_message

# input side -> output side of each head, at two input sizes (height, width)
SHAPES = {
    "fcn8": [((64, 64), (64, 64)), ((96, 64), (96, 64))],
    "unet_small": [((32, 32), (32, 32)), ((48, 80), (48, 80))],
    "unet_classic": [((572, 572), (388, 388)), ((188, 252), (4, 68))],
}


@pytest.mark.parametrize("name", SHAPES)
def test_output_shapes_at_two_input_sizes(name):
    for input_shape, output_shape in SHAPES[name]:
        model = build_model(name, input_shape, 3)
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
    with pytest.raises(ValueError, match="expected one of unet, fcn8, unet_classic, unet_small"):
        check_model_settings("segnet", (64, 64))
    assert [classic_output_size(s) for s in (572, 444, 252, 188, 256, 180)] == [388, 260, 68, 4, 0, 0]


def test_fcn_upsampling_starts_bilinear_and_its_skips_start_silent():
    model = build_model("fcn8", (64, 64), 2)
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


def saved_and_loaded(tmp_path, source, target):
    """Saves source's weights to a file and loads it into target: (the file, the Loading)."""
    path = str(tmp_path / f"{source.name}.weights.h5")
    source.save_weights(path)
    return path, load_weights(target, path)


def test_fcn_takes_the_vgg_encoder_weights_by_name(tmp_path):
    source = build_model("unet", (32, 32), 2)
    fcn = build_model("fcn8", (64, 64), 2)
    _, loading = saved_and_loaded(tmp_path, source, fcn)
    assert sorted(loading.loaded) == sorted(VGG_CONVS)
    for name in loading.loaded:
        for ours, theirs in zip(fcn.get_layer(name).weights, source.get_layer(name).weights):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert {skip.name for skip in loading.skipped} >= {"fc6", "score_fr", "upscore8"}


def test_mirror_pad_reflects_as_often_as_needed():
    image = np.arange(3 * 4).reshape(3, 4, 1)
    for pads in [(1, 2, 3, 1), (7, 5, 9, 11)]:  # the second is larger than the image: reflected back and forth
        expected = np.pad(image, [pads[:2], pads[2:], (0, 0)], mode="reflect")
        np.testing.assert_array_equal(mirror_pad(tf.constant(image), *pads).numpy(), expected)


@pytest.fixture(scope="module")
def classic():
    return build_model("unet_classic", (188, 204), 3)  # output (4, 20), margin 92


def test_overlap_tile_equals_one_shot_where_the_image_fits_one_tile(classic):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (4, 20, 3), np.uint8)  # exactly the output window
    tiled = tile_probabilities(classic, tf.constant(image), batch_size=2).numpy()
    one_shot = classic(np.pad(image, [(92, 92), (92, 92), (0, 0)], mode="reflect")[None])[0].numpy()
    np.testing.assert_allclose(tiled, one_shot, atol=1e-6)
    smaller = image[:3, :15]  # mirrored to a whole tile, then cropped
    tiled = tile_probabilities(classic, tf.constant(smaller), batch_size=2).numpy()
    one_shot = classic(np.pad(smaller, [(92, 93), (92, 97), (0, 0)], mode="reflect")[None])[0].numpy()
    np.testing.assert_allclose(tiled, one_shot[:3, :15], atol=1e-6)


def test_overlap_tile_stitches_tiles_that_cover_the_image(classic):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (10, 50, 3), np.uint8)  # 3 x 3 tiles of 4 x 20, the last ones cut
    tiled = tile_probabilities(classic, tf.constant(image), batch_size=2).numpy()
    assert tiled.shape == (10, 50, 3)
    padded = np.pad(image, [(92, 92 + 2), (92, 92 + 10), (0, 0)], mode="reflect")
    for row in range(3):
        for column in range(3):
            y, x = 4 * row, 20 * column
            tile = classic(padded[None, y : y + 188, x : x + 204])[0].numpy()
            window = tiled[y : y + 4, x : x + 20]
            np.testing.assert_allclose(window, tile[: window.shape[0], : window.shape[1]], atol=1e-6)


def test_classic_training_data_crops_labels_to_the_output_window(tiny_voc):
    samples = split_samples(tiny_voc, "train")
    images, labels = next(iter(build_train_dataset(samples, (188, 188), 2, seed=0, margin=92)))
    assert images.shape == (2, 188, 188, 3) and labels.shape == (2, 4, 4)
    images, labels = next(iter(build_val_dataset(samples, (188, 204), 2, margin=92)))
    assert images.shape == (2, 188, 204, 3) and labels.shape == (2, 4, 20)
    # at the image's own scale: a 48 x 40 label's centre lands in the 4 x 20 window, not ignore
    assert (labels.numpy() != 255).mean() > 0.5


def test_native_scale_augmentation_keeps_image_and_label_together():
    # Left white = class 1, right black = class 2, on an image larger than the canvas: a crop of it.
    image = np.zeros((300, 300, 3), np.uint8)
    image[:, :150] = 255
    label = np.full((300, 300), 2, np.uint8)
    label[:, :150] = 1
    for seed in range(10):
        out_image, out_label = augment(image, label, (188, 188), tf.constant([seed, 2], tf.int64), native=True)
        brightness, out_label = out_image.numpy().mean(-1), out_label.numpy()
        for value, bright in [(1, True), (2, False)]:
            region = out_label == value
            if region.sum() > 100:
                assert ((brightness[region] > 100) == bright).mean() > 0.9
        # at 0.5 to 1.5 x its own size a 300-pixel image fills most of a 188 canvas (no shrinking to fit)
        assert (out_label != 255).mean() > 0.5


def test_a_head_mismatch_names_the_setting(tmp_path):
    unet = build_model("unet", (64, 64), 2)
    path, loading = saved_and_loaded(tmp_path, build_model("unet_classic", (188, 188), 2), unet)
    assert "holds a unet_classic model, but this is a vgg UNet. Set model=unet_classic" in mismatch_message(
        path, unet, loading, "unet", "vgg", 2
    )
    other = build_model("fcn8", (64, 64), 5)
    path, loading = saved_and_loaded(tmp_path, build_model("fcn8", (64, 64), 2), other)
    assert "trained with num_classes=2" in mismatch_message(path, other, loading, "fcn8", "vgg", 5)


HEAD_RUNS = {
    "fcn8": ["--input_shape", "32", "32"],
    "unet_small": ["--input_shape", "32", "32"],
    "unet_classic": ["--input_shape", "188", "204"],  # 48 x 40 images: 12 x 2 tiles of 4 x 20 each
}


@pytest.mark.parametrize("name", HEAD_RUNS)
def test_train_predict_and_evaluate_each_head(name, tmp_path):
    voc, logs = make_tiny_voc(tmp_path), str(tmp_path / "logs")
    settings = ["--model", name, *HEAD_RUNS[name], "--num_classes", "3", "--precision", "fp32"]
    args = [*settings, "--vocdevkit_path", voc, "--save_dir", logs, "--freeze_epoch", "1", "--unfreeze_epoch", "2"]
    result = run_script("train.py", *args, "--freeze_batch_size", "4", "--unfreeze_batch_size", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Frozen phase: epochs 1-1" in result.stdout and "Unfrozen phase: epochs 2-2" in result.stdout
    if name == "fcn8":
        assert "loaded 13 layers" in result.stdout  # the VGG16 encoder: ImageNet or HED weights
    else:
        assert "no pretrained encoder" in result.stdout
    (run_dir,) = glob.glob(os.path.join(logs, "loss_*"))
    with open(os.path.join(run_dir, "history.csv")) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and all(np.isfinite(float(r["loss"])) for r in rows)

    # get_miou.py predicts the val images at their size (overlap-tile for the classic UNet) and agrees with
    # the val mIoU that training measured on the same weights
    weights = os.path.join(logs, "last_epoch_weights.weights.h5")
    out = tmp_path / "miou_out"
    args = [*settings, "--model_path", weights, "--vocdevkit_path", voc, "--miou_out_path", out]
    result = run_script("get_miou.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "summary.json") as f:
        assert abs(json.load(f)["mIoU"] - float(rows[-1]["val_miou"])) <= 0.1
    with Image.open(next((out / "detection-results").glob("*.png"))) as prediction:
        assert prediction.size == (40, 48)

    image = os.path.join(voc, "VOC2007", "JPEGImages", "img 10.jpg")
    result = run_script("predict.py", *settings, "--model_path", weights, "--show", "false", cwd=tmp_path, stdin=image)
    assert result.returncode == 0, result.stderr[-3000:]
    with Image.open(tmp_path / "img_out" / "img 10.png") as saved:
        assert saved.size == (40, 48)


def test_a_classic_input_shape_that_does_not_fit_stops_train_py_before_training(tiny_voc, tmp_path):
    args = ["--model", "unet_classic", "--input_shape", "256", "256", "--vocdevkit_path", tiny_voc]
    result = run_script("train.py", *args, "--save_dir", tmp_path / "logs")
    assert result.returncode == 2 and "188 + 16k" in result.stderr and "Traceback" not in result.stderr
    assert output_margin(build_model("unet_small", (32, 32), 2)) == 0


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
