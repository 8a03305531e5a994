import pytest

from utils.training.learning_rate import EpochSchedule, learning_rate, scaled_learning_rates


def lr(epoch, decay="cos", total=20):
    return float(learning_rate(epoch, total, 1e-3, 1e-5, decay))


def test_cosine_warms_up_then_decays_to_min_lr():
    assert lr(0) == pytest.approx(1e-4)  # warm-up starts at max / 10
    assert lr(1) == pytest.approx(1e-3)  # warm-up lasts max(5 % of 20, 1) = 1 epoch
    assert lr(10.5) == pytest.approx((1e-3 + 1e-5) / 2, rel=1e-5)  # half-way through the cosine
    assert lr(20) == pytest.approx(1e-5)


def test_step_decay_reaches_min_lr_in_ten_steps():
    assert lr(0, "step") == pytest.approx(1e-3)
    assert lr(1.99, "step") == pytest.approx(1e-3)
    assert lr(2, "step") < 1e-3
    assert lr(19, "step") == pytest.approx(1e-5, rel=1e-4)


def test_schedule_continues_from_its_start_epoch():
    schedule = EpochSchedule(
        start_epoch=5, steps_per_epoch=10, total_epochs=20, max_lr=1e-3, min_lr=1e-5, decay_type="cos"
    )
    assert float(schedule(0)) == pytest.approx(lr(5))
    assert float(schedule(25)) == pytest.approx(lr(7.5))


def test_a_fresh_optimizer_after_the_start_warms_up_again():
    """The unfrozen phase's optimizer (from epoch 3 of 20) starts at a tenth of the curve and reaches it after the
    warm-up's epoch; a restored one (its step 0 at the phase's start) is on the same curve."""
    schedule = EpochSchedule(3, 10, 20, 1e-3, 1e-5, "cos", rewarm_epoch=3)
    assert float(schedule(0)) == pytest.approx(lr(3) / 10)
    assert float(schedule(5)) == pytest.approx(lr(3.5) * 0.55)
    assert float(schedule(10)) == pytest.approx(lr(4)) and float(schedule(40)) == pytest.approx(lr(7))
    assert EpochSchedule.from_config(schedule.get_config()).rewarm_epoch == 3


def test_batch_scaling_and_clamping():
    assert scaled_learning_rates(4e-4, 4e-6, 8, "adam") == pytest.approx((2e-4, 2e-6))
    assert scaled_learning_rates(4e-4, 4e-6, 2, "adam") == pytest.approx((1e-4, 1e-6))  # clamped up to the floor
    assert scaled_learning_rates(1e-3, 1e-5, 2, "sgd")[0] == pytest.approx(5e-4)  # clamped up to the SGD floor
    assert scaled_learning_rates(1e-2, 1e-4, 64, "adam")[0] == pytest.approx(1e-3)  # clamped down
