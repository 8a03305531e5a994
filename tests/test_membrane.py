"""The issue's real-data goal as a test: ISBI 2012 membrane, 10 epochs at 256x256, val mIoU >= 75 %.

Slow (minutes on 2 cores) and needs ../shared/datasets/membrane, which users don't have: skipped otherwise.
"""

import csv
import glob
import os

import pytest

from benchmarks.train_quality import MEMBRANE, MEMBRANE_ARGS
from tests.helpers import run_script


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(MEMBRANE), reason="../shared/datasets/membrane is not available")
def test_membrane_reaches_75_miou_with_default_encoder_weights(tmp_path):
    result = run_script("train.py", *MEMBRANE_ARGS, "--save_dir", tmp_path / "logs", timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    (history,) = glob.glob(str(tmp_path / "logs" / "loss_*" / "history.csv"))
    with open(history) as f:
        final = list(csv.DictReader(f))[-1]
    assert float(final["val_miou"]) >= 75.0
