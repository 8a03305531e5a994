"""Post-processing: each step on hand-drawn masks, the choice on validation, and the record the scripts apply."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_inline
from utils.prediction.postprocess import (
    PostProcessing,
    Step,
    apply_step,
    choose_postprocessing,
    sidecar_path,
    write_postprocessing,
)


def drawn(*rows: str) -> np.ndarray:
    return np.array([[int(c) for c in row] for row in rows], np.uint8)


MASK = drawn("11000", "11002", "00000", "00010", "00000")
KEPT = drawn("11000", "11002", "00000", "00000", "00000")


@pytest.mark.parametrize(
    "case, step, expected",
    [
        ("the largest region of 1 kept", Step("largest", 1), KEPT),
        ("regions of 1 under 2 px removed", Step("min_area", 1, 2), KEPT),
        ("regions of 1 under 5 px removed", Step("min_area", 1, 5), drawn("00000", "00002", "00000", "00000", "00000")),
        ("another class untouched", Step("largest", 2), MASK),
    ],
)
def test_each_step_by_hand(case, step, expected):
    np.testing.assert_array_equal(apply_step(MASK, step), expected, err_msg=case)


def test_fill_holes_fills_the_background_a_class_encloses_and_nothing_else():
    ring = drawn("0111100", "0100100", "0102100", "0111100", "0000000")
    # The hole's background filled; the other class inside it kept; the outside untouched.
    filled = drawn("0111100", "0111100", "0112100", "0111100", "0000000")
    np.testing.assert_array_equal(apply_step(ring, Step("fill_holes", 1)), filled)
    open_ring = ring.copy()
    open_ring[3, 2] = 0  # a gap to the outside: no hole
    np.testing.assert_array_equal(apply_step(open_ring, Step("fill_holes", 1)), open_ring)


def test_the_choice_removes_a_false_speck_and_keeps_what_would_lower_a_class():
    label = drawn("11000", "11000", "00000", "00000", "00000")
    speck = drawn("11000", "11000", "00000", "00010", "00000")  # one false pixel of class 1
    chosen, before, after = choose_postprocessing([(label, speck)], 2, {1: 4.0})
    assert chosen.steps and chosen.steps[0].kind in ("largest", "min_area")
    assert after[1] == pytest.approx(1.0) and before[1] == pytest.approx(4 / 5)
    # The speck is real here: removing it would lower class 1, so nothing is chosen.
    chosen, before, after = choose_postprocessing([(speck, speck)], 2, {1: 4.0})
    assert chosen == PostProcessing() and (after == before).all()


def copied_weights(trained, folder) -> str:
    weights = str(folder / "model.weights.h5")
    shutil.copy(trained["weights"], weights)
    return weights


def test_predict_applies_the_recorded_choice_and_says_so(trained, tmp_path):
    from unet import Unet

    weights = copied_weights(trained, tmp_path)
    step = Step("min_area", 1, 200)
    record = write_postprocessing(weights, PostProcessing((step,)), {"split_file": "val.txt"})
    assert record == sidecar_path(weights) == str(tmp_path / "model.postprocessing.json")
    raw = Unet(model_path=weights, precision="fp32", postprocess="none")
    images = os.path.join(trained["voc"], "VOC2007", "JPEGImages")
    args = ["--model_path", weights, "--precision", "fp32", "--show", "false", "--mode", "dir_predict", "--save_mask"]
    result = run_inline("predict.py", *args, "--dir_origin_path", images, "--dir_save_path", tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Post-processing: remove regions of class 1 (upper) under 200 px" in result.stdout
    for name in ("img 10", "img 13"):
        mask = np.asarray(raw.get_miou_png(Image.open(os.path.join(images, f"{name}.jpg"))))
        saved = np.asarray(Image.open(tmp_path / "out" / "masks" / f"{name}.png"))
        np.testing.assert_array_equal(saved, apply_step(mask, step))


def test_get_miou_chooses_on_val_never_lowers_the_score_and_records_it(trained, tmp_path):
    weights = copied_weights(trained, tmp_path)
    out = tmp_path / "miou_out"
    args = ["--model_path", weights, "--vocdevkit_path", trained["voc"], "--precision", "fp32"]
    result = run_inline("get_miou.py", *args, "--miou_out_path", out, "--postprocess", "choose")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Post-processing chosen on val (4 images): " in result.stdout
    with open(sidecar_path(weights)) as f:
        record = json.load(f)
    before, after = record["IoU_before"], record["IoU_after"]
    assert all(a >= b for a, b in zip(after, before) if b is not None)
    with open(out / "summary.json") as f:
        summary = json.load(f)
    assert [c["IoU"] for c in summary["classes"]] == pytest.approx(after, abs=1e-3)
    again = run_inline("get_miou.py", *args, "--miou_out_path", tmp_path / "again")
    assert again.returncode == 0 and "Post-processing: " in again.stdout
    with open(tmp_path / "again" / "summary.json") as f:
        assert json.load(f)["mIoU"] == pytest.approx(summary["mIoU"], abs=1e-6)
    refused = run_inline("get_miou.py", *args, "--miou_out_path", out, "--postprocess", "choose", "--miou_mode", "2")
    assert refused.returncode == 2 and "use --miou_mode 0" in refused.stderr
