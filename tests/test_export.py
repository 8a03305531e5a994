"""export.py: SavedModel and TFLite exports of weights trained by train.py, each checked against Keras."""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import ALL_FORMATS, HAS_ONNX, HAS_OPENVINO, TINY_CLASSES, TINY_MODEL, run_inline, run_script
from tests.helpers import EXPORT_FORMATS as FORMATS


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_each_format_is_written_and_matches_the_keras_model(exported, name):
    if name not in FORMATS:
        pytest.skip("ONNX and OpenVINO exports: pip install -r requirements-export.txt")
    (line,) = [line for line in exported["stdout"].splitlines() if line.startswith(f"  {name} ") and "dprob" in line]
    assert line.endswith(": ok"), line
    assert "Parity on 8 images" in exported["stdout"] and "FAILED" not in exported["stdout"]


def test_the_formats_have_their_sizes(exported):
    out = Path(exported["out"])
    sizes = {name: os.path.getsize(out / f"model_{name}.tflite") for name in ["fp32", "fp16", "int8"]}
    assert sizes["fp16"] < 0.6 * sizes["fp32"] and sizes["int8"] < 0.35 * sizes["fp32"]
    assert (out / "saved_model" / "saved_model.pb").is_file()


def test_int8_is_full_integer_calibrated_on_train_and_checked_on_val(exported):
    from utils.prediction.tflite_model import TfliteModel

    model = TfliteModel((Path(exported["out"]) / "model_int8.tflite").read_bytes())
    assert model.source["dtype"] == np.int8 and model.target["dtype"] == np.int8  # for microcontrollers and NPUs
    assert model.source["quantization"][0] > 0  # the input's scale, from calibration
    assert re.search(r"model_int8.tflite \(calibrated on 10 images of .*train.txt\)", exported["stdout"])
    (line,) = [line for line in exported["stdout"].splitlines() if "on the val split" in line]
    agree, ours, theirs = re.search(
        r"agree on ([\d.]+)% .*mIoU ([\d.]+) against the float model's ([\d.]+)", line
    ).groups()
    assert line.endswith(": ok") and float(agree) >= 98 and abs(float(ours) - float(theirs)) <= 1


def test_the_parity_check_fails_what_does_not_match():
    from export import parity

    rng = np.random.default_rng(0)
    reference = rng.dirichlet(np.ones(3), size=(2, 8, 8)).astype(np.float32)
    assert parity(reference, reference + 5e-5, "tflite_fp32")[0]
    passed, line = parity(reference, reference + 2e-4, "tflite_fp32")  # same classes, probabilities off
    assert not passed and "FAILED" in line
    flipped = reference.copy()
    flipped[0, :2] = flipped[0, :2, :, ::-1]  # 16 of 128 pixels with their class order reversed
    passed, line = parity(reference, flipped, "tflite_int8")
    assert not passed and "FAILED" in line


def test_no_parity_images_is_a_clear_error(trained, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [*TINY_MODEL, "--model_path", trained["weights"], "--parity_images", empty, "--export_dir", tmp_path / "x"]
    result = run_inline("export.py", *args)
    assert result.returncode == 2 and "no images there" in result.stderr and "Traceback" not in result.stderr
    result = run_script("export.py", *TINY_MODEL, "--formats", "onnx_fp8")  # a process: its exit status
    assert result.returncode == 2 and "formats=['onnx_fp8']" in result.stderr
    result = run_inline("export.py", "--backend", "onnx", "--model_path", "model.onnx")
    assert result.returncode == 2 and "already an export" in result.stderr and "Traceback" not in result.stderr


# (format, largest probability difference allowed, share of pixels whose class must agree)
TOLERANCE_CASES = [
    ("savedmodel", 1e-4, 0.999),
    ("onnx", 1e-4, 0.999),
    ("openvino", 1e-4, 0.999),
    ("tflite_fp32", 1e-4, 0.999),
    ("tflite_fp16", None, 0.999),
    ("tflite_int8", None, 0.99),
]


@pytest.mark.parametrize("name, limit, share", TOLERANCE_CASES)
def test_each_format_is_held_to_its_tolerance(name, limit, share):
    """Just inside each bound the parity check passes, just outside it fails: the bounds export.py applies."""
    from export import parity

    reference = np.random.default_rng(1).dirichlet(np.ones(3), size=(1, 100, 100)).astype(np.float32)
    if limit is not None:  # the same classes, the probabilities off by just under and just over the limit
        assert parity(reference, reference + 0.9 * limit, name)[0]
        assert not parity(reference, reference + 1.1 * limit, name)[0]
    else:  # probabilities far off are allowed where the classes agree (quantised formats)
        assert parity(reference, reference**0.5 / (reference**0.5).sum(-1, keepdims=True), name)[0]
    allowed = round((1 - share) * reference[..., 0].size)  # pixels whose class may differ
    for flipped, passes in [(allowed, limit is None), (allowed + 1, False)]:
        other = reference.copy().reshape(-1, 3)
        other[:flipped] = np.roll(other[:flipped], 1, axis=-1)  # another class wins at each of these pixels
        assert parity(reference, other.reshape(reference.shape), name)[0] == passes, (flipped, passes)


@pytest.mark.skipif(not HAS_ONNX, reason="pip install -r requirements-export.txt")
def test_the_predictor_runs_the_onnx_export_with_the_same_masks(trained_small, exported, tmp_path):
    from unet import Unet

    out = Path(exported["out"])
    images = os.path.join(trained_small["voc"], "VOC2007", "JPEGImages")
    keras_unet = Unet(model_path=trained_small["weights"], num_classes=3, input_shape=[32, 32], precision="fp32")
    onnx = {"num_classes": 3, "input_shape": [32, 32], "backend": "onnx", "precision": "fp32"}
    onnx_unet = Unet(model_path=str(out / "model.onnx"), **onnx)
    paths = sorted(os.path.join(images, name) for name in os.listdir(images))[:3]
    pictures = [np.asarray(Image.open(path)) for path in paths]
    for ours, theirs in zip(keras_unet.segment(pictures), onnx_unet.segment(pictures)):
        assert (ours == theirs).mean() >= 0.999
    batched = [mask for _, _, mask, _ in onnx_unet.segment_files(paths, 2)]
    assert all(np.array_equal(a, b) for a, b in zip(batched, onnx_unet.segment(pictures)))
    # predict.py takes the backend as a flag, like every UnetConfig setting
    flags = [*TINY_MODEL, "--model_path", out / "model.onnx", "--backend", "onnx", "--show", "false"]
    result = run_inline("predict.py", *flags, cwd=tmp_path, stdin=paths[0] + "\n")
    assert result.returncode == 0 and "Saved img_out/" in result.stdout, result.stderr[-2000:]
    with pytest.raises(ValueError, match=r"num_classes=5, but .*model.onnx was trained with num_classes=3"):
        Unet(model_path=str(out / "model.onnx"), **{**onnx, "num_classes": 5})
    # export.py wrote the settings into the file: the backend is the only setting it needs
    assert Unet(model_path=str(out / "model.onnx"), backend="onnx").class_names == TINY_CLASSES


@pytest.mark.skipif(not HAS_ONNX, reason="pip install -r requirements-export.txt")
def test_the_default_network_exports_to_onnx_with_its_preprocessing(trained, tmp_path):
    """The VGG16-UNet (its caffe preprocessing a layer of the graph): the other exports are of the small UNet. Its
    ONNX model takes any height and width: checked against Keras at two sizes besides the training size (32)."""
    images = os.path.join(trained["voc"], "VOC2007", "JPEGImages")
    weights = shutil.copyfile(trained["weights"], tmp_path / "vgg.weights.h5")  # export.py records speeds beside it
    args = ["--model_path", weights, "--parity_images", images, "--export_dir", tmp_path / "export"]
    result = run_inline("export.py", *args, "--formats", "onnx", "--parity_count", "2")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.count(": ok") == 3 and "FAILED" not in result.stdout
    sizes = re.findall(r"at (\d+)x(\d+) max .*agree on (\S+)% .*: ok", result.stdout)
    assert len({size for size in sizes}) == 2 and all(h != "32" and float(share) >= 99.9 for h, _, share in sizes)


def test_an_onnx_file_given_to_the_keras_backend_points_to_backend_onnx(tmp_path):
    from utils.weights.checkpoint import read_settings

    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"\x08\x07\x12\x07tf2onnx")  # protobuf, not HDF5
    with pytest.raises(ValueError, match="an ONNX model .* add --backend onnx"):
        read_settings(str(fake))


def test_an_ensemble_exports_as_one_network_checked_against_its_average(trained_small, tmp_path):
    images = os.path.join(trained_small["voc"], "VOC2007", "JPEGImages")
    weights = trained_small["weights"]
    args = ["--model_path", weights, "--ensemble", weights, "--parity_images", images, "--parity_count", "2"]
    result = run_script("export.py", *args, "--export_dir", tmp_path / "export", "--formats", "savedmodel")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Ensemble: the probabilities of 2 networks averaged" in result.stdout
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("  savedmodel ")]
    assert line.endswith(": ok"), line


@pytest.mark.skipif(not HAS_OPENVINO, reason="pip install -r requirements-export.txt")
def test_the_openvino_export_predicts_as_keras_through_its_backend(exported, trained_small):
    from unet import Unet

    # export.py timed the runtimes that passed parity beside the Keras network and named the fastest
    assert re.search(
        r"Speed on this machine.*\n  keras \((float32|mixed_\w+)\) +[\d.]+ img/s\n  onnx .*\n  openvino .*\nFastest: ",
        exported["stdout"],
    )
    model_path = os.path.join(exported["out"], "openvino", "model.xml")
    openvino = Unet(model_path=model_path, backend="openvino")  # its settings are in the file
    assert openvino.class_names == TINY_CLASSES and openvino.config.num_classes == 3
    keras_unet = Unet(model_path=trained_small["weights"], precision="fp32")
    images = os.path.join(trained_small["voc"], "VOC2007", "JPEGImages")
    pictures = [np.asarray(Image.open(os.path.join(images, name))) for name in sorted(os.listdir(images))[:3]]
    for ours, theirs in zip(keras_unet.segment(pictures), openvino.segment(pictures)):
        assert (ours == theirs).mean() >= 0.999
