"""Images beyond 8-bit RGB: 16-bit, float, grey and multi-band files read without clipping, networks that take their
bands, and the scripts on such datasets as a user runs them."""

import cv2
import keras
import numpy as np
import pytest
import tifffile
from PIL import Image

from nets.models import Network, build_model, set_backbone_trainable
from tests.helpers import TINY_TRAIN, run_script, write_band_voc
from utils.files.bands import Bands, as_input, display_image, survey
from utils.files.image_files import read_image
from utils.weights.building import build_with_weights


def write_files(folder, rng) -> dict:
    """{file name: the array written}: 16-bit grey and RGB PNGs and 16-bit, float and 4-band TIFFs, their values
    spread over the type's range."""
    grey = rng.integers(0, 65536, (40, 48), np.uint16)
    rgb = rng.integers(0, 65536, (40, 48, 3), np.uint16)
    bands = rng.integers(0, 65536, (40, 48, 4), np.uint16)
    floats = rng.normal(0, 1e6, (40, 48, 2)).astype(np.float32)
    Image.fromarray(grey).save(folder / "grey16.png")
    cv2.imwrite(str(folder / "rgb16.png"), rgb[..., ::-1])  # OpenCV writes BGR
    tifffile.imwrite(folder / "grey16.tif", grey)
    tifffile.imwrite(folder / "bands4.tif", bands, photometric="minisblack", planarconfig="contig")
    planar = np.moveaxis(bands, -1, 0)  # (4, H, W): as GDAL writes multi-band rasters
    tifffile.imwrite(folder / "bands4_planar.tif", planar, photometric="minisblack", planarconfig="separate")
    tifffile.imwrite(folder / "float2.tif", floats, photometric="minisblack", planarconfig="contig")
    return {
        "grey16.png": grey[..., None],
        "rgb16.png": rgb,
        "grey16.tif": grey[..., None],
        "bands4.tif": bands,
        "bands4_planar.tif": bands,
        "float2.tif": floats,
    }


def test_16_bit_float_and_multi_band_files_load_without_clipping(tmp_path):
    for name, written in write_files(tmp_path, np.random.default_rng(0)).items():
        read = read_image(str(tmp_path / name))
        assert read.dtype == written.dtype and read.shape == written.shape, name
        np.testing.assert_array_equal(read, written, err_msg=name)
    # As the network takes them: float32 with the values unchanged (a 16-bit value of 60,000 stays 60,000)
    grey = read_image(str(tmp_path / "grey16.png"))
    taken = as_input(grey, Bands(1, "uint16", ((0.0, 65535.0),)))
    assert taken.dtype == np.float32 and np.array_equal(taken, grey.astype(np.float32)) and taken.max() > 60000


def test_mixed_band_counts_and_a_16_bit_image_for_an_8_bit_network_are_refused_by_name(tmp_path):
    write_files(tmp_path, np.random.default_rng(0))
    with pytest.raises(ValueError, match="mix band counts") as error:
        survey([str(tmp_path / "grey16.png"), str(tmp_path / "bands4.tif"), str(tmp_path / "grey16.tif")])
    assert "grey16.png, grey16.tif" in str(error.value) and "bands4.tif" in str(error.value)
    with pytest.raises(ValueError, match="uint16 samples, but the network takes uint8"):
        as_input(read_image(str(tmp_path / "grey16.png")), Bands(), "grey16.png")


def test_the_picture_of_n_bands_shows_the_chosen_three_stretched_to_8_bits():
    image = np.stack([np.full((2, 2), v, np.float32) for v in (1000, 2000, 3000, 4000)], axis=-1)
    bands = Bands(4, "uint16", ((1000.0, 5000.0),) * 4)
    np.testing.assert_array_equal(display_image(image, bands, (3, 2, 1))[0, 0], [191, 128, 64])
    assert display_image(image[..., :1], Bands(1, "uint16", ((1000.0, 5000.0),)))[0, 0].tolist() == [0, 0, 0]


def test_the_first_layer_adapted_to_one_band_keeps_the_pretrained_response(tmp_path):
    """A grey image fed as 1 band to the adapted network, and as 3 equal bands to the RGB one, give the same first
    layer activations (but on the 1-pixel border, where the zero padding stands for different grey levels)."""
    keras.utils.set_random_seed(0)
    rgb = build_model("unet", (32, 32), 3)
    conv = rgb.get_layer("block1_conv1")
    kernel, bias = conv.get_weights()
    conv.set_weights([kernel, np.random.default_rng(1).normal(0, 1, bias.shape).astype(np.float32)])
    rgb.save_weights(tmp_path / "rgb.weights.h5")  # as a pretrained RGB file holds them
    grey = np.random.default_rng(2).integers(0, 256, (1, 32, 32, 1)).astype(np.float32)
    first = lambda model, x: keras.Model(model.input, model.get_layer("block1_conv1").output)(x).numpy()  # noqa: E731
    expected = first(rgb, np.repeat(grey, 3, axis=-1))
    for channels in (1, 6):  # 6: the kernels repeated and scaled by 3/6 respond to 6 equal bands the same way
        adapted = build_with_weights(
            Network("unet", "vgg", 3, (32, 32)), str(tmp_path / "rgb.weights.h5"), bands=Bands(channels)
        )
        found = first(adapted, np.repeat(grey, channels, axis=-1))
        np.testing.assert_allclose(found[:, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], atol=1e-3 * np.abs(expected).max())
        # the freeze phase freezes the encoder but for the adapted first convolution: it learns the new bands
        set_backbone_trainable(adapted, False)
        assert adapted.get_layer("block1_conv1").trainable and not adapted.get_layer("block1_conv2").trainable
    set_backbone_trainable(rgb, False)
    assert not rgb.get_layer("block1_conv1").trainable


# The 4-band dataset's run through every script is the unet_small case of tests/test_models_end_to_end.py.
ONE_EPOCH = ["--freeze_train", "false", "--unfreeze_epoch", "1", "--unfreeze_batch_size", "2"]


def test_a_16_bit_grey_dataset_trains_with_one_band_from_the_pretrained_encoder(tmp_path):
    voc, logs = write_band_voc(tmp_path, "grey16"), tmp_path / "logs"
    args = [*TINY_TRAIN[:-2], "--model_path", "hed", *ONE_EPOCH, "--vocdevkit_path", voc, "--save_dir", logs]
    result = run_script("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Images: grey (1 band), uint16: each band's 1-99.8 percentile range" in result.stdout
    assert "block1_conv1: the file's RGB kernels summed for 1 band" in result.stdout  # adapted, not dropped
    # an 8-bit image given to the 16-bit network: refused with the file named, and the prompt goes on
    jpeg = tmp_path / "photo.jpg"
    Image.new("L", (48, 40), 90).save(jpeg)
    args = ["--model_path", logs / "last_epoch_weights.weights.h5", "--precision", "fp32", "--show", "false"]
    result = run_script("predict.py", *args, cwd=tmp_path, stdin=f"{jpeg}\n")
    assert result.returncode == 0 and "uint8 samples, but the network takes uint16" in result.stdout


def test_augmentation_moves_every_band_alike_and_fills_each_with_its_own_mid_grey():
    from utils.augmentation.pixels import warp_pair

    rng = np.random.default_rng(0)
    ranges = tuple((float(10 * b), float(10 * b + 100)) for b in range(6))  # 6 bands: more than OpenCV's 4 at once
    bands = Bands(6, "uint16", ranges)
    image = rng.uniform(0, 100, (20, 24, 6)).astype(np.float32)
    label = np.ones((20, 24), np.uint8)
    shift = np.float32([[1, 0, 5], [0, 1, 0]])  # 5 pixels to the right: a filled strip on the left
    warped, warped_label = warp_pair(image, label, shift, (20, 24), np.ones(3, np.float32), bands=bands)
    assert warped.shape == (20, 24, 6) and warped.dtype == np.float32
    np.testing.assert_allclose(warped[:, :5], np.broadcast_to(bands.fill, (20, 5, 6)), rtol=1e-6)
    np.testing.assert_allclose(warped[:, 5:], image[:, :19], atol=1e-3)  # OpenCV's fixed-point bilinear weights
    assert (warped_label[:, :5] == 255).all() and (warped_label[:, 5:] == 1).all()
