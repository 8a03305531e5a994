"""Training with tf.distribute on the CPU: MirroredStrategy over two logical devices, and two workers on
127.0.0.1 with TF_CONFIG (MultiWorkerMirroredStrategy)."""

import glob
import json
import os
import re
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest

from tests.helpers import MIXED, ROOT, TINY_TRAIN, run_inline
from utils.training.distribute import Cluster, read_tf_config


def weights_of(path) -> list:
    with h5py.File(path) as f:
        arrays = []
        f.visititems(lambda _, item: arrays.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    return arrays


def train_on_cpu_replicas(voc, logs, train_gpu, *extra):
    args = [*TINY_TRAIN, "--vocdevkit_path", voc, "--save_dir", logs, "--train_gpu", *train_gpu, *extra]
    command = [sys.executable, os.path.join(ROOT, "tests", "cpu_replicas.py"), *map(str, args)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_mirrored_over_two_devices_trains_as_one_device_with_the_same_global_batch(tiny_voc, tmp_path):
    # one epoch of 2 steps (the phases under a strategy: the two-worker test below)
    schedule = ["--freeze_train", "false", "--unfreeze_epoch", "1", "--unfreeze_batch_size", "4"]
    schedule += ["--dice_loss", "false"]
    runs = {}
    for name, gpus in [("one", ["0"]), ("two", ["0", "1"])]:
        result = train_on_cpu_replicas(tiny_voc, tmp_path / name, gpus, *schedule)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = result.stdout
    assert "Devices: MirroredStrategy over /cpu:0, /cpu:1" in runs["two"]
    assert "batch 4 (2 on each of 2 replicas)" in runs["two"] and "Devices: one device" in runs["one"]
    one = weights_of(tmp_path / "one" / "last_epoch_weights.weights.h5")
    two = weights_of(tmp_path / "two" / "last_epoch_weights.weights.h5")
    # Each replica averages its loss over its own half of the batch; the halves' pixel counts differ a little
    # (augmentation pads some crops with ignored pixels), so the two runs agree closely, not bit for bit.
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-3 * max(1.0, np.abs(a).max()))


def test_a_global_batch_that_does_not_split_is_a_clear_error(tiny_voc, tmp_path):
    result = train_on_cpu_replicas(tiny_voc, tmp_path / "logs", ["0", "1"], "--unfreeze_batch_size", "3")
    assert result.returncode == 2 and "batch size 3 cannot be split evenly over 2 replicas" in result.stderr


def test_train_gpu_naming_gpus_this_machine_lacks_is_a_clear_error(tiny_voc, tmp_path):
    result = run_inline("train.py", *TINY_TRAIN, "--vocdevkit_path", tiny_voc, "--train_gpu", "0", "7")
    assert result.returncode == 2 and "train_gpu=[0, 7]: this machine has" in result.stderr


def test_tf_config_is_read_and_checked(monkeypatch):
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, "task": {"type": "worker", "index": 1}}),
    )
    assert read_tf_config() == Cluster(index=2, count=3)
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="not a cluster description"):
        read_tf_config()
    monkeypatch.delenv("TF_CONFIG")
    assert read_tf_config() == Cluster() and Cluster().is_chief


def free_ports(count: int) -> list:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(args) -> list:
    """train.py with args on two workers on loopback (TF_CONFIG); their outputs, once both have finished."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    env = [
        dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
        for i in (0, 1)
    ]
    command = [sys.executable, os.path.join(ROOT, "train.py"), *map(str, args)]
    workers = [
        subprocess.Popen(command, cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for e in env
    ]
    try:
        results = [worker.communicate(timeout=600) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()  # a no-op for a finished process; ends the other if one failed or timed out
    for worker, (_, stderr) in zip(workers, results):
        assert worker.returncode == 0, stderr[-3000:]
    return [stdout for stdout, _ in results]


def test_two_workers_on_loopback_train_in_step_and_only_the_chief_writes_logs(tiny_voc, tmp_path):
    logs = tmp_path / "logs"
    # the frozen epoch in mixed precision (the last flag wins over TINY_TRAIN's fp32) ...
    args = [*TINY_TRAIN, "--vocdevkit_path", tiny_voc, "--save_dir", logs, "--precision", MIXED]
    args += ["--freeze_epoch", "1", "--unfreeze_epoch", "1", "--freeze_batch_size", "4", "--unfreeze_batch_size", "4"]
    chief, other = run_workers(args)
    assert "MultiWorkerMirroredStrategy, worker 0 of 2 (chief), 2 replicas" in chief
    assert "worker 1 of 2, 2 replicas" in other and "Logs:" not in other and "val mIoU" not in other
    digests = [re.search(r"weights digest (\w+)", out).group(1) for out in (chief, other)]
    assert digests[0] == digests[1]
    (run_dir,) = glob.glob(str(logs / "loss_*"))
    written = ["best_epoch_weights.json", "best_epoch_weights.weights.h5", "last_epoch_weights.weights.h5"]
    written += ["resume_epoch001.weights.h5", os.path.basename(run_dir)]
    assert sorted(os.listdir(logs)) == sorted(written)

    # ... and the unfrozen one: every worker resumes from the chief's checkpoint (here on shared storage) and
    # compiles the next phase; they stay in step, one history.
    chief, other = run_workers(["--resume", logs, "--unfreeze_epoch", "2"])
    assert "Resuming" in chief and "Resuming" in other and "1 of 2 epochs done" in chief
    assert "Unfrozen phase: epochs 2-2" in chief and "Unfrozen phase: epochs 2-2" in other
    digests = [re.search(r"weights digest (\w+)", out).group(1) for out in (chief, other)]
    assert digests[0] == digests[1]
    with open(os.path.join(run_dir, "history.csv")) as f:
        assert [line.split(",")[0] for line in f.read().split()[1:]] == ["1", "2"]
