"""Backend auto: the prediction path takes the fastest runtime that export.py measured and checked for these weights
on this machine, and Keras, saying why, when the measurement does not hold."""

import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.helpers import HAS_ONNX, run_script
from utils.prediction.backends import choose_backend, record_path, write_speed_record

pytestmark = pytest.mark.skipif(not HAS_ONNX, reason="pip install -r requirements-export.txt")


@pytest.fixture
def measured(tmp_path):
    """A weights file and an ONNX file (bytes only: the choice reads digests, not models), with a record in which
    onnx is 3x keras."""
    weights, onnx = tmp_path / "best.weights.h5", tmp_path / "export" / "model.onnx"
    onnx.parent.mkdir()
    weights.write_bytes(b"weights")
    onnx.write_bytes(b"onnx")
    write_speed_record(str(weights), {"keras": 1.0, "onnx": 3.0}, {"onnx": str(onnx)}, "float32")
    return str(weights), str(onnx)


def choose(weights: str, precision: str = "fp32", ensemble: bool = False):
    return choose_backend("auto", weights, precision, ensemble)


def test_auto_takes_the_fastest_measured_runtime(measured):
    weights, onnx = measured
    choice = choose(weights)
    assert (choice.backend, choice.model_path) == ("onnx", os.path.abspath(onnx))
    assert "the fastest measured on this machine (img/s: keras 1.00, onnx 3.00" in choice.reason
    # asked for by name, a backend is taken as it is; an export given as model_path is run by its runtime
    assert choose_backend("keras", weights, "fp32", False).backend == "keras"
    assert choose_backend("auto", onnx, "fp32", False).backend == "onnx"
    with pytest.raises(ValueError, match="backend='tensorrt': expected one of auto, keras, onnx, openvino"):
        choose_backend("tensorrt", weights, "fp32", False)


@pytest.mark.parametrize(
    "change, why",
    [
        ("retrain", r"best.weights.h5 changed since it was measured \(trained again\?\)"),
        ("reexport", r"^keras, the fastest .*skipped onnx: .*model.onnx changed since it was measured"),
        ("remove", r"^keras, the fastest .*skipped onnx: .*model.onnx is gone\)"),
        ("machine", r"do not hold \(measured on Another CPU \(64 cores\), this is "),
        ("precision", r"do not hold \(Keras was measured at float32, this run is mixed_float16\)"),
        ("ensemble", r"keras: an ensemble runs on Keras"),
        ("none", r"keras: no speed measured for it \(python export.py --formats onnx openvino measures them\)"),
    ],
)
def test_auto_falls_back_to_keras_and_says_why(measured, change, why):
    weights, onnx = measured
    record = json.load(open(record_path(weights)))
    if change == "retrain":
        open(weights, "ab").write(b"more")
    elif change == "reexport":
        open(onnx, "ab").write(b"more")
    elif change == "remove":
        os.remove(onnx)
    elif change == "machine":
        record["machine"].update(name="Another CPU", cores=64, isa_cap="ALL")  # uncapped, whatever this run is
        json.dump(record, open(record_path(weights), "w"))
    elif change == "none":
        os.remove(record_path(weights))
    choice = choose(weights, "mixed_float16" if change == "precision" else "fp32", ensemble=change == "ensemble")
    assert choice.backend == "keras" and choice.model_path == weights
    assert re.search(why, choice.reason), choice.reason


def test_a_broken_record_is_named(measured):
    weights, _ = measured
    open(record_path(weights), "w").write("{}")
    with pytest.raises(ValueError, match=r"best.backends.json: not a backend speed record .*export.py --formats"):
        choose(weights)


def test_predict_takes_the_fastest_export_measured_with_the_same_masks(exported, trained_small, tmp_path):
    """export.py (the fixture) timed keras, onnx and openvino on this machine and recorded them beside its copy of
    the weights: predict.py, given only the weights, runs the fastest, and its masks are Keras's."""
    from unet import Unet

    record = json.load(open(record_path(exported["weights"])))
    rates = record["images_per_second"]
    fastest = max(rates, key=rates.get)
    assert set(rates) >= {"keras", "onnx"} and record["files"]["onnx"]["path"].endswith("model.onnx")
    weights = shutil.copyfile(exported["weights"], tmp_path / "small.weights.h5")
    shutil.copyfile(record_path(exported["weights"]), record_path(str(weights)))  # the export's files stay put
    images = os.path.join(trained_small["voc"], "VOC2007", "JPEGImages")
    image = os.path.join(images, sorted(os.listdir(images))[0])
    args = ["--model_path", weights, "--show", "false", "--mix_type", "1"]  # at precision auto, as it was timed
    result = run_script("predict.py", *args, cwd=tmp_path, stdin=image + "\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(rf"Backend: {fastest}, the fastest measured on this machine", result.stdout), result.stdout
    auto = Unet(model_path=str(weights))
    assert auto.config.backend == fastest
    # the masks of the Keras network: at the same precision when Keras won, else in float32 (the export's parity)
    keras = Unet(model_path=str(weights), backend="keras", precision="auto" if fastest == "keras" else "fp32")
    picture = np.asarray(Image.open(image))
    assert (auto.segment([picture])[0] == keras.segment([picture])[0]).mean() >= 0.999
