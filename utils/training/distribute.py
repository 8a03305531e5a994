"""Training on several GPUs or machines with TensorFlow's tf.distribute; the strategy is chosen once, at start-up.

- TF_CONFIG describing a cluster of 2+ tasks -> MultiWorkerMirroredStrategy (every machine runs train.py with
  its own TF_CONFIG; each uses the GPUs it has);
- train_gpu with 2+ ids -> MirroredStrategy over those GPUs of this machine;
- otherwise the default strategy (one device: train_gpu's GPU when there is one, else the CPU).
"""

import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class Cluster:
    """Where this process stands: worker `index` of `count` (the chief is worker 0)."""

    index: int = 0
    count: int = 1

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def read_tf_config():
    """The cluster described by the TF_CONFIG environment variable, or Cluster() when there is none.

    Raises:
        ValueError: TF_CONFIG is not JSON or does not say which task this is.
    """
    text = os.environ.get("TF_CONFIG", "")
    if not text:
        return Cluster()
    try:
        config = json.loads(text)
        tasks = config["cluster"].get("chief", []) + config["cluster"].get("worker", [])
        task_type, task_index = config["task"]["type"], int(config["task"]["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"TF_CONFIG={text!r}: not a cluster description ({type(error).__name__}: {error}). Expected e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}.'
        ) from None
    if task_type not in ("chief", "worker"):
        raise ValueError(f"TF_CONFIG task type {task_type!r}: expected chief or worker.")
    offset = 0 if task_type == "chief" else len(config["cluster"].get("chief", []))
    return Cluster(offset + task_index, len(tasks))


def replica_devices(train_gpu) -> list:
    """The device names of train_gpu's GPUs; ValueError for an id this machine does not have."""
    gpus = tf.config.list_physical_devices("GPU")
    missing = [gpu for gpu in train_gpu if not 0 <= gpu < len(gpus)]
    if missing:
        raise ValueError(
            f"train_gpu={list(train_gpu)}: this machine has {len(gpus)} GPU(s)"
            + (f" (ids 0..{len(gpus) - 1})" if gpus else "")
            + ". List GPUs it has; one id trains on one device."
        )
    return [f"/gpu:{gpu}" for gpu in train_gpu]


def choose_strategy(train_gpu):
    """(strategy, cluster, description); call it before anything else runs TensorFlow ops (multi-worker
    collectives must be configured at start-up).

    Raises:
        ValueError: TF_CONFIG is malformed, or train_gpu names GPUs this machine does not have.
    """
    cluster = read_tf_config()
    if cluster.count > 1:
        apply_keras_multi_worker_fixes()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        where = f"worker {cluster.index} of {cluster.count}" + (" (chief)" if cluster.is_chief else "")
        return strategy, cluster, f"MultiWorkerMirroredStrategy, {where}, {strategy.num_replicas_in_sync} replicas"
    if len(train_gpu) > 1:
        devices = replica_devices(train_gpu)
        return tf.distribute.MirroredStrategy(devices), cluster, f"MirroredStrategy over {', '.join(devices)}"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus and train_gpu:
        replica_devices(train_gpu)  # checks the id
        tf.config.set_visible_devices(gpus[train_gpu[0]], "GPU")
        return tf.distribute.get_strategy(), cluster, f"one device, GPU {train_gpu[0]}"
    return tf.distribute.get_strategy(), cluster, "one device, " + ("GPU 0" if gpus else "the CPU")


def check_global_batch(batch_size: int, strategy) -> int:
    """The per-replica batch of a global batch; ValueError unless the replicas share it evenly."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(
            f"batch size {batch_size} cannot be split evenly over {replicas} replicas: batch sizes are global "
            f"(all devices, all machines together). Use a multiple of {replicas}."
        )
    return batch_size // replicas


def weights_digest(model) -> str:
    """A short hash of every weight: the same on every worker of a synchronous run."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()[:16]


def apply_keras_multi_worker_fixes() -> None:
    """Lets Keras 3's fit run under MultiWorkerMirroredStrategy (keras-team/keras#20585, still open in 3.15).

    Keras reduces each step's metrics with strategy.reduce("MEAN", value, axis=0), which fails on the scalar
    metrics, and before the first step it reduces a batch of data across workers eagerly, which fails too.
    The metrics are reduced with axis=None instead, and the first batch is read from this worker's replica.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_multi_worker_fixed", False):
        return
    reduce_per_replica = trainer.reduce_per_replica
    maybe_symbolic_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    def is_multi_worker(strategy) -> bool:
        return strategy is not None and trainer._collective_all_reduce_multi_worker(strategy)

    def reduce_metrics(values, strategy, reduction):
        if reduction == "auto" and is_multi_worker(strategy):
            return tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    def local(value, strategy):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def build_from_local_batch(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is not None and is_multi_worker(strategy):
            for _, _, batches in iterator:
                data_batch = tree.map_structure(lambda value: local(value, strategy), next(batches))
                break
            iterator = None
        return maybe_symbolic_build(self, iterator=iterator, data_batch=data_batch)

    trainer.reduce_per_replica = reduce_metrics
    trainer.TensorFlowTrainer._maybe_symbolic_build = build_from_local_batch
    trainer._multi_worker_fixed = True
