"""The planner's rules as tables (fingerprint and machine -> plan), the budget's arithmetic, and train.py planning
as a user runs it: --plan_only, a given flag that wins, a resume that keeps its plan, a budgeted run inside its
budget."""

import json
import math
import os
import time
from dataclasses import replace

import pytest

from nets.models import Network
from tests.helpers import history_rows, run_script
from utils.dataset.fingerprint import ClassFacts, Fingerprint, Spread
from utils.files.bands import Bands
from utils.planning.budget import (
    Estimate,
    Fitted,
    Workload,
    estimate,
    eval_period_for,
    fit_budget,
    frozen_epochs,
    phase_lengths,
    plan_eval_period,
    refit_epochs,
)
from utils.planning.machine import Machine
from utils.planning.plan import Plan, make_plan
from utils.planning.rules import (
    PRETRAINED_LR,
    SCRATCH_LR,
    plan_batch,
    plan_class_weights,
    plan_epochs,
    plan_jitter,
    plan_oversampling,
    plan_scale,
    plan_side,
    plan_start,
)
from utils.planning.speed import Speed, measure_apart

CPU, GPU = Machine("cpu", "CPU", 2, 24.0, False), Machine("gpu", "GPU", 8, 8.0, True)


def facts(share: float, width: float, image_share: float = 1.0) -> ClassFacts:
    """A class with `share` of the pixels, whose thinnest structures (5 % of its pixels) are `width` px wide."""
    spread = Spread(width, width, 2 * width, 4 * width)
    return ClassFacts(share, image_share, 10, Spread(), Spread(), Spread(), spread)


def fingerprint(height: float, width: float, classes: dict, images: int = 100) -> Fingerprint:
    sides = {"height": Spread(height, height, height, height), "width": Spread(width, width, width, width)}
    return Fingerprint(images, **sides, bands=3, dtype="uint8", ignored_share=0.0, classes=classes)


DEMO = fingerprint(64, 64, {0: facts(0.78, 23), 1: facts(0.08, 10.8), 2: facts(0.09, 9.8), 3: facts(0.048, 6.5)})
MEMBRANE = fingerprint(512, 512, {0: facts(0.78, 11), 1: facts(0.22, 6.8)}, images=25)
AERIAL = fingerprint(2000, 2000, {0: facts(0.5, 40), 1: facts(0.1, 8), 2: facts(0.0005, 1)}, images=58)


@pytest.mark.parametrize(
    "case, machine, model, side",
    [
        (DEMO, CPU, "unet", 64),  # the median image, a multiple of 32
        (MEMBRANE, CPU, "unet", 256),  # at most MAX_SIDE on a CPU
        (MEMBRANE, GPU, "unet", 512),  # ... and on a GPU
        (fingerprint(72, 70, {}), CPU, "unet_small", 80),  # unet_small takes multiples of 16
        (fingerprint(20, 30, {}), CPU, "unet", 64),  # at least two multiples
    ],
)
def test_the_input_follows_the_median_image_up_to_the_device(case, machine, model, side):
    assert plan_side(case, machine, model).value == side


@pytest.mark.parametrize(
    "case, side, mode, scale",
    [
        (DEMO, 64, "fit", 1.0),  # nothing shrinks
        (MEMBRANE, 256, "fit", 1.0),  # 6.8 px x 0.5 = 3.4 px: still drawn
        (MEMBRANE, 128, "slide", 0.9),  # 6.8 x 0.25 = 1.7 px: lost; slide at the scale that keeps 6 px (6 / 6.8)
        (AERIAL, 256, "slide", 0.75),  # roads 8 px x 0.128: lost; class 2 (0.05 % of the pixels) sets nothing
        (AERIAL, 1024, "fit", 1.0),  # 8 x 0.512 = 4.1 px
    ],
)
def test_slide_where_fitting_loses_the_thinnest_structures(case, side, mode, scale):
    planned = plan_scale(case, side)
    assert (planned["scale_mode"].value, planned["image_scale"].value) == (mode, scale)


@pytest.mark.parametrize(
    "machine, side, images, batch",
    [
        (CPU, 64, 240, 4),  # a CPU gains nothing from more
        (CPU, 256, 240, 4),
        (CPU, 512, 240, 1),  # 4 x 256² pixels a step
        (CPU, 64, 10, 2),  # an epoch of at least 4 steps
        (GPU, 256, 1000, 16),
        (GPU, 1024, 1000, 2),
    ],
)
def test_the_batch_follows_the_device_and_the_split(machine, side, images, batch):
    assert plan_batch(machine, side, images).value == batch


def test_a_random_encoder_trains_faster_and_unfrozen():
    assert plan_start(True)["init_lr"].value == PRETRAINED_LR and plan_start(True)["freeze_train"].value
    assert plan_start(False)["init_lr"].value == SCRATCH_LR and not plan_start(False)["freeze_train"].value


def test_class_weights_only_when_a_class_is_rare():
    assert plan_class_weights(DEMO, 4).value == []  # the rarest has 4.8 %
    rare = fingerprint(64, 64, {0: facts(0.90, 20), 1: facts(0.09, 5), 2: facts(0.01, 3)})
    # shares 0.90, 0.09, 0.01; median share 0.09: sqrt(0.09 / 0.90) < 1 -> 1, 1, sqrt(0.09 / 0.01) = 3
    assert plan_class_weights(rare, 3).value == [1.0, 1.0, 3.0]
    very = fingerprint(64, 64, {0: facts(0.9, 20), 1: facts(0.0999, 5), 2: facts(0.0001, 3)})
    assert plan_class_weights(very, 4).value == [1.0, 1.0, 5.0, 1.0]  # capped; class 3 never seen


def test_oversampling_only_for_a_class_rare_in_the_images():
    assert plan_oversampling(DEMO)["oversample"].value == 0.0
    rare = fingerprint(64, 64, {0: facts(0.9, 20), 1: facts(0.09, 5, 0.6), 2: facts(0.01, 3, 0.17)})
    planned = plan_oversampling(rare, ["background", "shape", "defect"])
    assert planned["oversample"].value == 0.33 and planned["oversample_classes"].value == [2]
    assert "defect (17%)" in planned["oversample"].reason
    background_only = fingerprint(64, 64, {0: facts(0.99, 20, 0.1), 1: facts(0.01, 5, 1.0)})
    assert plan_oversampling(background_only)["oversample"].value == 0.0  # the background is never oversampled
    multilabel = make_plan(rare, CPU, Network("unet", "vgg", 2, (64, 64), "multilabel"), True, (), {})
    assert "oversample" not in multilabel.settings()  # refused with that head


def test_lovasz_is_planned_for_a_class_a_pixel_and_a_given_value_wins():
    network = Network("unet", "vgg", 4, (64, 64))
    assert make_plan(DEMO, CPU, network, True, (), {}).settings()["lovasz_loss"] is True
    assert make_plan(DEMO, CPU, network, True, (), {"lovasz_loss": False}).settings()["lovasz_loss"] is False
    sigmoid = Network("unet", "vgg", 2, (64, 64), "sigmoid")
    assert make_plan(MEMBRANE, CPU, sigmoid, True, (), {}).settings()["lovasz_loss"] is True
    multilabel = make_plan(DEMO, CPU, Network("unet", "vgg", 2, (64, 64), "multilabel"), True, (), {})
    assert "lovasz_loss" not in multilabel.settings()  # refused with that head


def test_the_run_is_planned_in_steps_and_its_jitter_by_its_length():
    assert plan_epochs(240, 4).value == 12  # the demo: 60 steps an epoch, 720 steps
    assert plan_epochs(25, 2).value == 60 and plan_epochs(10000, 4).value == 8  # at least 8 epochs
    assert [plan_jitter(epochs).value for epochs in (6, 10, 17, 24, 40)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    plan = make_plan(DEMO, CPU, Network("unet", "vgg", 4, (64, 64)), True, (), {"unfreeze_epoch": 30})
    assert plan.settings()["jitter"] == 1.0  # the jitter follows the epochs given


def test_a_given_setting_wins_and_the_plan_follows_it():
    network = Network("unet", "vgg", 2, (64, 64))
    plan = make_plan(MEMBRANE, CPU, network, True, ("cell", "membrane"), {"input_shape": [128, 128]})
    settings = plan.settings()
    assert settings["input_shape"] == [128, 128] and settings["scale_mode"] == "slide"  # 128 loses the membranes
    assert "given (planned: 256 256)" in plan.describe()
    assert Plan.from_dict(json.loads(json.dumps(plan.to_dict()))).settings() == settings


def test_unet_classic_keeps_its_tile_and_slides():
    plan = make_plan(DEMO, CPU, Network("unet_classic", "vgg", 4, (188, 188)), False, (), {})
    assert plan.settings()["input_shape"] == [188, 188] and plan.settings()["scale_mode"] == "slide"


def test_the_estimate_adds_up():
    speed = Speed(step=0.5, forward=0.1, trace_step=4.0, trace_forward=1.0, build=1.0, write=0.2, batch_norm=True)
    cost = estimate(speed, Workload(train_images=240, val_images=60, batch_size=4, calibration_images=32))
    # 60 steps x 0.5 s x 1.05 + 3 x 8 precise-BN calls x 0.1 s + 2 files x 0.2 s + 0.6 s
    assert cost.epoch == pytest.approx(60 * 0.5 * 1.05 + 24 * 0.1 + 0.4 + 0.6)
    # val mIoU's 15 calls (x 1.5) and the val loss's 15, which run with it
    assert cost.evaluation == pytest.approx(15 * 0.1 * 1.5 + 0.5 + 15 * 0.1) and cost.per_phase == 4.0 + 3 * 1.0
    assert cost.once == 1.0 + 3.0  # the build, and the process's end
    assert cost.seconds(10, 3) == pytest.approx(10 * cost.epoch + 4 * cost.evaluation + 7.0 + 4.0)  # 3, 6, 9, 10
    assert cost.frozen_epoch == 0 and cost.seconds(10, 3, frozen=2) == pytest.approx(cost.seconds(10, 3) + 7.0)
    slide = estimate(speed, Workload(240, 60, 4, windows=9, calibration_images=32))
    assert slide.evaluation == pytest.approx(9 * 15 * 0.1 * 1.5 + 0.5 + 15 * 0.1)
    # without val mIoU (eval_flag false) the val loss runs every epoch
    unevaluated = estimate(speed, Workload(240, 60, 4, calibration_images=32, val_miou=False))
    assert unevaluated.evaluation == 0 and unevaluated.epoch == pytest.approx(cost.epoch + 15 * 0.1)
    # a frozen step measured: the frozen epochs at its price, at their own batch (8: 30 steps)
    frozen = estimate(replace(speed, frozen_step=0.3), Workload(240, 60, 4, calibration_images=32, frozen_batch_size=8))
    assert frozen.frozen_epoch == pytest.approx(30 * 0.3 * 1.05 + 24 * 0.1 + 0.4 + 0.6)
    # two phases, each traced: 2 frozen epochs and 8 at full price
    assert frozen.seconds(10, 3, frozen=2) == pytest.approx(
        2 * frozen.frozen_epoch + 8 * frozen.epoch + 4 * frozen.evaluation + 2 * 7.0 + 4.0
    )


def test_the_speed_is_measured_with_the_encoder_frozen_too(tmp_path):
    network = Network("unet", "vgg", 2, (32, 32))
    speed = measure_apart(network, 2, Bands(), str(tmp_path), frozen_batch_size=4)
    assert speed.step > 0 and speed.frozen_step > 0 and "with the encoder frozen" in speed.describe(2)
    assert os.listdir(tmp_path) == []  # its weights file removed


def test_the_budget_fits_the_epochs_and_the_evaluations():
    cost = Estimate(epoch=10.0, evaluation=5.0, per_phase=3.0, once=3.0)
    assert eval_period_for(cost) == 5  # 5 s every 5 epochs of 10 s: 9 %
    planned = fit_budget(cost, seconds_left=600, budget_minutes=10)
    epochs, period = planned["unfreeze_epoch"].value, planned["eval_period"].value
    assert (epochs, period) == (49, 5)  # 49 x 10 + 10 x 5 + 3 + 3 <= 600 x 0.92 < 50 x 10 + 10 x 5 + 3 + 3
    assert cost.seconds(epochs, period) <= 600 * 0.92 < cost.seconds(epochs + 1, period)
    # the frozen epochs at their own price: an eighth of them at 4 s instead of 10 buys 4 epochs (less a tracing)
    cheaper = replace(cost, frozen_epoch=4.0)
    fitted = fit_budget(cheaper, seconds_left=600, budget_minutes=10, frozen_for=frozen_epochs)["unfreeze_epoch"]
    assert fitted.value == 53 and frozen_epochs(53) == 7  # 7 x 4 + 46 x 10 + 11 x 5 + 2 x 3 + 3 = 552 <= 552
    assert cheaper.seconds(54, 5, frozen_epochs(54)) > 552
    assert "freeze_epoch" not in phase_lengths(24, False)
    assert phase_lengths(24, True)["freeze_epoch"].value == 3 and phase_lengths(24, True)["save_period"].value == 5
    ceiling = fit_budget(cost, seconds_left=600, budget_minutes=10, most=12)["unfreeze_epoch"]
    assert ceiling.value == 12 and "the 12 planned epochs" in ceiling.reason  # a ceiling keeps the planned epochs
    assert fit_budget(cost, seconds_left=600, budget_minutes=10, most=60)["unfreeze_epoch"].value == 49  # ... or fewer
    with pytest.raises(ValueError, match=r"time_budget=0.5 min: .* Give --time_budget 1 or more"):
        fit_budget(cost, seconds_left=20, budget_minutes=0.5)


def test_the_evaluation_period_is_planned_without_a_budget_too():
    dubai = Estimate(epoch=33.0, evaluation=75.7, per_phase=3.0)  # 14 val tiles slid at 0.75 against 14 steps
    planned = plan_eval_period(dubai)
    assert planned.value == 21 and "every 21 epochs keeps them within 10%" in planned.reason  # 9 x 75.7 / 33 = 20.6
    assert plan_eval_period(Estimate(epoch=30.0, evaluation=1.5, per_phase=3.0)).value == 1  # membrane's 5 images


def test_the_epochs_are_fitted_again_from_the_frozen_phases_time():
    cost = Estimate(epoch=10.0, evaluation=5.0, per_phase=3.0, once=3.0, frozen_epoch=4.0, frozen_steps=3.5)
    fitted = Fitted(cost, minutes=10, eval_period=5)
    # 2 frozen epochs' steps took 14 s against 2 x 3.5: the rest costs twice its estimate.
    # 13 epochs: 2 x (11 x 10 + 3 evaluations (5, 10, 13) x 5 + 3) + 3 (the process's end) = 259 <= 300 x 0.92
    assert refit_epochs(fitted, frozen=2, steps_seconds=14.0, seconds_left=300) == (13, 2.0)
    # 14: 2 x (12 x 10 + 3 x 5 + 3) + 3 = 279 > 276
    assert refit_epochs(replace(fitted, most=10), 2, 14.0, 300) == (10, 2.0)  # at most the ceiling
    assert refit_epochs(fitted, 2, 14.0, 10)[0] == 3  # at least one epoch after the frozen ones
    # faster steps than estimated (3.5 s against 7) are believed halfway: 0.75, not 0.5.
    # 34 epochs: 0.75 x (32 x 10 + 7 evaluations (5, 10, ..., 30, 34) x 5 + 3) + 3 = 271.5 <= 276
    # 35: 0.75 x (33 x 10 + 7 x 5 + 3) + 3 = 279 > 276
    assert refit_epochs(fitted, 2, 3.5, 300) == (34, 0.75)


def test_plan_only_prints_the_plan_and_trains_nothing(tiny_voc, tmp_path):
    logs = tmp_path / "logs"
    result = run_script(
        "train.py", "--vocdevkit_path", tiny_voc, "--num_classes", "3", "--model", "unet_small", "--model_path", "",
        "--save_dir", logs, "--plan_only", "--unfreeze_batch_size", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Fingerprint of the train split" in out and "Plan for " in out and "Estimated time:" in out
    assert "init_lr             0.008" in out and "from random weights" in out  # planned
    assert "unfreeze_batch_size 1           given (planned: 2)" in out  # given wins: 10 train images, 4 steps
    assert "eval_period" in out and "lovasz_loss         True" in out  # planned without a budget too
    assert "plan_only: nothing was trained." in out and not logs.exists()


def test_a_budgeted_run_ends_inside_its_budget_and_a_resume_keeps_its_plan(tiny_voc, tmp_path):
    logs, budget = tmp_path / "logs", 0.75
    flags = ["--vocdevkit_path", tiny_voc, "--num_classes", "3", "--model", "unet_small", "--model_path", ""]
    started = time.time()
    # a frozen phase (for unet_small: the whole network, as a phase of its own), after which the epochs are refitted
    budgeted = ["--input_shape", "32", "32", "--save_dir", logs, "--time_budget", budget, "--freeze_train", "true"]
    result = run_script("train.py", *flags, *budgeted)
    wall = time.time() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert wall <= budget * 60 * 1.05, f"{wall:.1f} s for a budget of {budget * 60:.0f} s\n{result.stdout[-3000:]}"
    assert f"within its time_budget of {budget:g} min" in result.stdout
    assert "Budget: the frozen phase's steps took" in result.stdout
    plan = json.loads((logs / "plan.json").read_text())
    epochs = plan["planned"]["unfreeze_epoch"]["value"]
    assert epochs >= 3 and "fit" in plan["planned"]["unfreeze_epoch"]["reason"]
    assert len(history_rows(logs)) == epochs  # the schedule completed, as fitted again
    resumed = run_script("train.py", "--resume", logs, "--unfreeze_epoch", epochs + 1)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Plan for" not in resumed.stdout  # it keeps the plan it started with
    assert f"init_lr              {SCRATCH_LR}" in resumed.stdout and len(history_rows(logs)) == epochs + 1
    assert math.isfinite(float(history_rows(logs)[-1]["loss"]))
    assert os.path.isfile(logs / "best_epoch_weights.weights.h5")
