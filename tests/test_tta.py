"""Test-time augmentation: flips and scales averaged in one call, through both scale modes."""

import keras
import numpy as np
import pytest

from nets.models import build_model
from utils.prediction.path import prediction_path
from utils.prediction.scores import ClassScores
from utils.prediction.tta import TestTimeAugmentation
from utils.scale import Scale


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(4)
    return build_model("unet_small", (32, 32), 3)  # random weights: only the arithmetic of the copies matters


def image(width: int = 40, symmetric: bool = False) -> np.ndarray:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (36, width // 2 if symmetric else width, 3), np.uint8)
    return np.concatenate([pixels, pixels[:, ::-1]], axis=1) if symmetric else pixels


@pytest.mark.parametrize("scale", [Scale("fit"), Scale("slide", overlap=0.5)])
def test_identity_tta_is_no_tta_and_hflip_makes_a_symmetric_image_symmetric(network, scale):
    def segment(words, picture):
        tta = TestTimeAugmentation.parse(words)
        return np.asarray(prediction_path(ClassScores(network, tta=tta), scale).image_mask(picture))

    plain = segment([], image())
    np.testing.assert_array_equal(segment(["1"], image()), plain)
    symmetric = image(symmetric=True)
    assert not np.array_equal(segment([], symmetric), segment([], symmetric)[:, ::-1])  # the network is not
    flipped = segment(["hflip"], symmetric)
    np.testing.assert_array_equal(flipped, flipped[:, ::-1])
    both = segment(["vflip"], image()[::-1].copy())  # upside down in, averaged with its flip: the same as upright
    np.testing.assert_array_equal(both, segment(["vflip"], image())[::-1])


def test_scales_and_flips_average_probabilities_in_one_call(network):
    tta = TestTimeAugmentation.parse(["hflip", "vflip", "0.5", "2"])
    assert (tta.scales, tta.copies) == ((0.5, 1.0, 2.0), 9)
    scores = ClassScores(network, tta=tta)
    assert [n.input_shape[1:3] for _, n in scores.networks] == [(32, 32), (32, 32), (64, 64)]  # 16 rounds up to 32
    assert scores.networks[2][1].get_layer("head") is network.get_layer("head")  # shared layers, shared weights
    probabilities = scores.probabilities(image(32)[None, :32].astype(np.float32)).numpy()
    np.testing.assert_allclose(probabilities.sum(-1), 1, atol=1e-5)


@pytest.mark.parametrize("words", [["hflipp"], ["0"], ["10"]])
def test_a_tta_word_that_is_not_a_flip_or_scale_is_refused(words):
    with pytest.raises(ValueError, match="neither hflip, vflip nor a scale"):
        TestTimeAugmentation.parse(words)


def test_scales_are_refused_for_a_network_with_a_margin():
    classic = build_model("unet_classic", (188, 188), 2)
    with pytest.raises(ValueError, match="Use the flips alone"):
        ClassScores(classic, tta=TestTimeAugmentation.parse(["1.5"]))
    assert ClassScores(classic, tta=TestTimeAugmentation.parse(["hflip"])).tta.copies == 2
