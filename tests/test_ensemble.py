"""Ensembles: several weights files of one network, their probabilities averaged in every prediction path."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from nets.ensemble import build_ensemble
from nets.models import build_model
from tests.helpers import run_inline
from utils.prediction.path import prediction_path
from utils.prediction.scores import ClassScores
from utils.prediction.tta import TestTimeAugmentation
from utils.scale import Scale


def small_network(seed: int):
    keras.utils.set_random_seed(seed)
    return build_model("unet_small", (32, 32), 3)


def image_probabilities(path, image) -> np.ndarray:
    return np.concatenate([rows for _, rows in path.probabilities(image)], axis=0)


@pytest.mark.parametrize("scale", [Scale("fit"), Scale("slide", 1.0, 0.5)], ids=["fit", "slide"])
def test_the_ensembles_probabilities_are_the_mean_of_its_networks_in_both_scale_modes_with_tta(scale):
    first, second = small_network(1), small_network(2)
    tta = TestTimeAugmentation.parse(["hflip"])
    image = np.random.default_rng(0).integers(0, 255, (45, 70, 3), dtype=np.uint8)
    paths = [prediction_path(ClassScores(n, tta=tta), scale) for n in (first, second, build_ensemble([first, second]))]
    one, two, both = (image_probabilities(path, image) for path in paths)
    np.testing.assert_allclose(both, (one + two) / 2, atol=1e-5)
    assert np.abs(one - two).max() > 1e-3  # two networks that differ: the mean is not either of them


def test_an_ensemble_of_one_network_twice_is_that_network(trained):
    from unet import Unet

    single = Unet(model_path=trained["weights"], precision="fp32")
    twice = Unet(model_path=trained["weights"], precision="fp32", ensemble=[trained["weights"]])
    images = os.path.join(trained["voc"], "VOC2007", "JPEGImages")
    for name in sorted(os.listdir(images))[:4]:
        image = Image.open(os.path.join(images, name))
        np.testing.assert_array_equal(np.asarray(single.get_miou_png(image)), np.asarray(twice.get_miou_png(image)))


def test_get_miou_and_predict_average_the_weights_files_given(trained, tmp_path):
    earlier = next(f for f in os.listdir(trained["logs"]) if f.startswith("ep001-"))
    earlier = os.path.join(trained["logs"], earlier)
    out = tmp_path / "miou_out"
    args = ["--model_path", trained["weights"], "--ensemble", earlier, "--vocdevkit_path", trained["voc"]]
    result = run_inline("get_miou.py", *args, "--miou_out_path", out, "--precision", "fp32")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Ensemble: the probabilities of 2 networks averaged" in result.stdout
    with open(out / "summary.json") as f:
        assert json.load(f)["ensemble"] == [earlier]
    images = os.path.join(trained["voc"], "VOC2007", "JPEGImages")
    args = ["--model_path", trained["weights"], "--ensemble", earlier, "--precision", "fp32", "--show", "false"]
    args += ["--mode", "dir_predict", "--dir_origin_path", images, "--dir_save_path", tmp_path / "out", "--save_mask"]
    result = run_inline("predict.py", *args)
    assert result.returncode == 0 and "Ensemble: the probabilities of 2 networks averaged" in result.stdout
    for name in ("img 10", "img 13"):
        mask = np.asarray(Image.open(tmp_path / "out" / "masks" / f"{name}.png"))
        np.testing.assert_array_equal(mask, np.asarray(Image.open(out / "detection-results" / f"{name}.png")))


def test_an_ensemble_of_other_networks_is_refused_naming_the_file(trained, trained_small):
    result = run_inline("predict.py", "--model_path", trained["weights"], "--ensemble", trained_small["weights"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{trained_small['weights']}: model='unet_small', but" in result.stderr
