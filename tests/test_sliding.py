"""The sliding window of scale mode slide: windows that cover the image, blending weights that sum to 1, and
predictions that agree with one pass of the network where they should."""

import keras
import numpy as np
import pytest

from nets.models import build_model
from utils.prediction.sliding import blended_rows, slide_class_ids, window_starts
from utils.scale import check_scale_settings


def stitched(predict, image, input_size, margin=0, overlap=0.25, batch_size=3) -> np.ndarray:
    """float32 (h, w, C): every band of blended_rows put together, each row exactly once."""
    bands = list(blended_rows(predict, image, input_size, margin, overlap, batch_size))
    assert [top for top, _ in bands] == sorted({top for top, _ in bands})
    assert sum(len(rows) for _, rows in bands) == image.shape[0]
    return np.concatenate([rows for _, rows in bands])


def test_windows_cover_the_axis_evenly_and_end_flush():
    for length, window, overlap in [(100, 32, 0.25), (33, 32, 0.5), (1000, 256, 0), (257, 256, 0.9)]:
        starts = window_starts(length, window, overlap)
        assert starts[0] == 0 and starts[-1] == length - window
        assert all(0 < b - a <= window * (1 - overlap) for a, b in zip(starts, starts[1:]))
    assert window_starts(20, 32, 0.25) == [0] and window_starts(32, 32, 0.25) == [0]


def identity(margin):
    """A 'network' whose probabilities are the input's pixels (scaled), cropped by its margin: stitching it must
    give back the image, which holds only if every pixel's blending weights sum to 1."""
    return lambda windows: windows[:, margin : windows.shape[1] - margin, margin : windows.shape[2] - margin] / 255


@pytest.mark.parametrize("margin", [0, 5])
@pytest.mark.parametrize("shape", [(70, 90), (1, 50), (50, 1), (1, 1), (7, 3), (16, 16)])
def test_blending_weights_sum_to_one_at_every_pixel_for_any_size(shape, margin):
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), np.uint8)
    size = (16 + 2 * margin, 24 + 2 * margin)
    result = stitched(identity(margin), image, size, margin)
    np.testing.assert_allclose(result, image / 255, atol=1e-6)
    assert slide_class_ids(identity(margin), image, size, margin, 0.25, 4).shape == shape


def test_an_image_that_fits_one_window_gives_the_one_shot_prediction():
    model = build_model("unet_small", (32, 32), 3)
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), np.uint8)
    one_shot = np.argmax(model(image[None])[0], axis=-1)
    np.testing.assert_array_equal(slide_class_ids(model, image, (32, 32), 0, 0.25, 4), one_shot)
    smaller = image[:20, :13]  # mirrored into a whole window, not upscaled
    padded = np.pad(smaller, [(0, 12), (0, 19), (0, 0)], mode="reflect")
    one_shot = np.argmax(model(padded[None])[0], axis=-1)[:20, :13]
    np.testing.assert_array_equal(slide_class_ids(model, smaller, (32, 32), 0, 0.25, 4), one_shot)


def test_the_classic_unet_windows_are_its_overlap_tiles():
    model = build_model("unet_classic", (188, 204), 3)  # output (4, 20), margin 92
    image = np.random.default_rng(2).integers(0, 256, (4, 20, 3), np.uint8)
    one_shot = model(np.pad(image, [(92, 92), (92, 92), (0, 0)], mode="reflect")[None])[0].numpy()
    np.testing.assert_allclose(stitched(model, image, (188, 204), 92), one_shot, atol=1e-6)


def test_a_fully_convolutional_network_stitches_to_one_pass_over_the_whole_image():
    # Two 3 x 3 convolutions: each output pixel sees 2 pixels around it, so a window's output is exact except in
    # its outer 2 pixels, where the window's zero padding differs from the image. The Gaussian weights give those
    # pixels little weight wherever another window covers them: away from the image's own border (where one pass
    # pads too), the stitched probabilities are within 0.01 of one pass.
    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(4, 3, padding="same", activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    image = np.random.default_rng(3).integers(0, 256, (90, 130, 3), np.uint8)
    whole = model(image[None])[0].numpy()
    result = stitched(model, image, (32, 32), overlap=0.5)
    assert np.abs(result - whole)[2:-2, 2:-2].max() < 0.01


def test_bad_settings_are_refused_with_the_setting_named():
    for settings, named in [
        (("tiles", 1.0, 0.25), "scale_mode='tiles'"),
        (("slide", 0.0, 0.25), "image_scale=0.0"),
        (("slide", 1.0, 1.0), "overlap=1.0"),
        (("slide", 1.0, -0.1), "overlap=-0.1"),
    ]:
        with pytest.raises(ValueError, match=named.replace("(", r"\(")):
            check_scale_settings(*settings)
