from dataclasses import dataclass, field

import pytest

from utils.config import field_comments, format_config, parse_config


@dataclass
class Example:
    num_classes: int = 21  # classes including the background
    freeze_train: bool = True  # start with the encoder frozen
    input_shape: list[int] = field(default_factory=lambda: [512, 512])  # network input (height width)
    cls_weights: list[float] = field(default_factory=list)  # per-class loss weights
    model_path: str = "auto"  # weights to start from


def test_defaults_and_overrides():
    assert parse_config(Example, []) == Example()
    config = parse_config(Example, ["--num_classes", "2", "--freeze_train", "false", "--input_shape", "256", "128"])
    assert (config.num_classes, config.freeze_train, config.input_shape) == (2, False, [256, 128])
    assert parse_config(Example, ["--cls_weights", "1", "2.5"]).cls_weights == [1.0, 2.5]
    assert parse_config(Example, ["--model_path", ""]).model_path == ""


def test_a_quoted_tilde_in_a_path_is_expanded_as_the_shell_would():
    import os

    assert parse_config(Example, ["--model_path", "~/logs/best.weights.h5"]).model_path == os.path.expanduser(
        "~/logs/best.weights.h5"
    )


def test_a_list_flag_alone_clears_the_list():
    assert parse_config(Example, ["--input_shape"]).input_shape == []


def test_bad_boolean_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_config(Example, ["--freeze_train", "maybe"])
    assert "expected true or false" in capsys.readouterr().err


def test_help_comes_from_the_field_comments(capsys):
    assert field_comments(Example)["input_shape"] == "network input (height width)"
    with pytest.raises(SystemExit):
        parse_config(Example, ["-h"])
    help_text = capsys.readouterr().out
    assert "classes including the background (default: 21)" in help_text
    assert "(default: 512 512)" in help_text


def test_format_config_lists_every_field():
    assert [line.split()[0] for line in format_config(Example()).splitlines()] == list(vars(Example()))


@pytest.mark.parametrize("script", ["train", "predict", "get_miou"])
def test_the_classic_recipes_are_found_by_grepping_the_help(script, capsys, monkeypatch):
    """python train.py -h | grep elastic (and "weight map", "early stopping", "threshold") finds each setting."""
    monkeypatch.setenv("COLUMNS", "80")  # a narrow terminal: argparse wraps the help
    module = __import__(script)
    config_class = {"train": "TrainConfig", "predict": "PredictConfig", "get_miou": "MiouConfig"}[script]
    with pytest.raises(SystemExit):
        parse_config(getattr(module, config_class), ["-h"], module.__doc__)
    lines = capsys.readouterr().out.splitlines()
    words = ["elastic", "weight map", "early stopping", "threshold"]
    words = words if script == "train" else ["threshold", "test-time augmentation"]
    for word in words:
        assert any(word in line.lower() for line in lines), word
