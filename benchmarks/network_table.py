"""benchmark.py --networks: every model x backbone side by side on this machine.

For each network: its parameters and GFLOPs; the training step (first and later ones) in each precision, as GFLOP/s
and as a share of NumPy's float32 matrix product measured in the same run (the machine's own rate); and the
forward pass of prediction's network in images/s. The training steps run network by network (a network's graph and
gradients are large); the matrix product is timed before each network, so a neighbour's load on a shared machine
shows in both. The forward passes take turns call by call.
"""

import gc
import statistics
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from benchmarks.profiling import count_flops, numpy_matmul_gflops, seconds_of
from nets.folding import fold_batch_norms
from nets.models import MODEL_BACKBONES, MODELS, build_model
from nets.unet_classic import CLASSIC_MARGIN
from utils.losses import build_loss
from utils.training.optimizers import make_optimizer
from utils.weights.sources import starting_weights_of

# The machine's rate: NumPy's float32 matrix product of this side (benchmarks/profiling.numpy_matmul_gflops).
MATMUL_SIDE = 4096
# Depthwise encoders: their convolutions move more memory per FLOP, so their goal share is lower (docs/performance.md).
DEPTHWISE_BACKBONES = ("mobilenetv2", "efficientnetv2b0")


@dataclass
class StepTimes:
    """A training step's wall-clock seconds: the first (tracing and graph building) and the median of the timed."""

    first: float
    median: float


def table_networks() -> list:
    """(model, backbone) for every model and each backbone it takes, unet's first."""
    return [(model, backbone) for model in MODELS for backbone in MODEL_BACKBONES.get(model, ("vgg",))]


def table_shape(model: str, input_shape) -> tuple:
    """The input of the table's row: input_shape, but the classic UNet's nearest valid tile (188 + 16k) below it."""
    if model != "unet_classic":
        return tuple(input_shape)
    smallest = 2 * CLASSIC_MARGIN + 4  # 188: an output of 4
    return tuple(max(smallest, side - (side - smallest) % 16) for side in input_shape)


def forward_function(model: keras.Model):
    """The compiled inference call of prediction's network (batch normalisations folded: nets/folding.py), a traced
    tf.function without XLA."""
    network = fold_batch_norms(model)
    return tf.function(lambda images: network(images, training=False))


def train_step_times(network: keras.Model, images, labels, steps: int, warmup: int) -> StepTimes:
    """Seconds of train.py's training step (its Adam, CE + Dice) on one in-memory batch: the first call, then
    the median of `steps` calls after `warmup` more."""
    num_classes = network.output_shape[-1]
    network.compile(optimizer=make_optimizer("adam", 1e-4), loss=build_loss([1.0] * num_classes, dice_loss=True))
    network.optimizer.build(network.trainable_variables)  # as train.py does, before the first step
    first = seconds_of(lambda: network.train_on_batch(images, labels))
    for _ in range(warmup):
        network.train_on_batch(images, labels)
    timed = [seconds_of(lambda: network.train_on_batch(images, labels)) for _ in range(steps)]
    return StepTimes(first, statistics.median(timed))


def measure_training(rows: list, batches: list, num_classes: int, policies: list, steps: int, warmup: int) -> list:
    """Adds each row's training step per policy (seconds, first step, GFLOP/s, and its share of the matrix product's
    median rate), and returns the matrix product's rates, timed before each network."""
    rates = []
    for row, (images, labels) in zip(rows, batches):
        rates.append(numpy_matmul_gflops(MATMUL_SIDE))
        for policy in policies:
            keras.mixed_precision.set_global_policy(policy)
            keras.utils.set_random_seed(0)
            network = build_model(row["model"], row["input_shape"], num_classes, row["backbone"])
            labels = labels[:, : network.output_shape[1], : network.output_shape[2]]  # a tiling model's output
            times = train_step_times(network, images, labels, steps, warmup)
            row[f"{policy}_step_s"], row[f"{policy}_first_step_s"] = times.median, times.first
            # Forward, and backward for inputs and weights.
            row[f"{policy}_train_gflops"] = 3 * row["gflops"] * len(images) / times.median
            print(
                f"{row['model']} {backbone_cell(row)}, {policy}: step {times.median:.2f} s, first step "
                f"{times.first:.1f} s; matrix product {rates[-1]:.0f} GFLOP/s before it",
                flush=True,
            )
            del network
            keras.backend.clear_session()
            gc.collect()
        keras.mixed_precision.set_global_policy("float32")
    for row in rows:
        for policy in policies:
            row[f"{policy}_matmul_share"] = row[f"{policy}_train_gflops"] / statistics.median(rates)
    return rates


def measure_forward(rows: list, batches: list, num_classes: int, policies: list, calls: int, warmup: int) -> None:
    """Adds each row's forward images/s per policy: every network is built once per policy first; then `calls`
    rounds, each calling every network once, so that a neighbour's load weighs on all alike. Rates are the batch
    over the median call; `fastest` keeps the batch over the fastest one (benchmark.py's shares)."""
    functions = []
    for row, (images, _) in zip(rows, batches):
        for policy in policies:
            keras.mixed_precision.set_global_policy(policy)
            network = build_model(row["model"], row["input_shape"], num_classes, row["backbone"])
            functions.append((row, policy, forward_function(network), images))
        keras.mixed_precision.set_global_policy("float32")
    for _, _, function, images in functions:
        for _ in range(warmup):
            function(images).numpy()  # traces; the first calls also autotune
    seconds = [[] for _ in functions]
    for _ in range(calls):
        for times, (_, _, function, images) in zip(seconds, functions):
            times.append(seconds_of(lambda: function(images).numpy()))
    for times, (row, policy, _, images) in zip(seconds, functions):
        row[f"{policy}_images_per_s"] = len(images) / statistics.median(times)
        row[f"{policy}_fastest_images_per_s"] = len(images) / min(times)


def measure_networks(
    input_shape, num_classes: int, batch_size: int, policies: list, calls: int, steps: int, warmup: int = 2
) -> dict:
    """{"rows": one per table_networks(), "matmul_gflops": the matrix product's rate before each network's steps}.

    A row holds params, GFLOPs per image, the training step per policy (when steps > 0) and the forward pass's
    images/s per policy."""
    rows, batches = [], []
    rng = np.random.default_rng(0)
    for model, backbone in table_networks():
        shape = table_shape(model, input_shape)
        images = tf.constant(rng.integers(0, 256, (batch_size, *shape, 3)).astype(np.float32))
        labels = tf.constant(rng.integers(0, num_classes, (batch_size, *shape)).astype(np.uint8))
        network = build_model(model, shape, num_classes, backbone)
        rows.append(
            {
                "model": model,
                "backbone": backbone,
                "input_shape": list(shape),
                "weights": starting_weights_of(model, backbone),
                "params_m": network.count_params() / 1e6,
                "gflops": count_flops(network) / 1e9,
            }
        )
        batches.append((images, labels))
        del network
    keras.backend.clear_session()
    rates = measure_training(rows, batches, num_classes, policies, steps, warmup) if steps else []
    measure_forward(rows, batches, num_classes, policies, calls, warmup)
    return {"rows": rows, "matmul_gflops": rates}


def format_network_table(rows: list, policies: list) -> str:
    """The forward rates as a Markdown table (the README's)."""
    header = ["model", "backbone", "params", "GFLOPs"] + [f"img/s {p}" for p in policies] + ["starting weights"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        size = "" if row["input_shape"][0] == rows[0]["input_shape"][0] else f" at {row['input_shape'][0]}²"
        cells = [row["model"], backbone_cell(row), f"{row['params_m']:.1f} M", f"{row['gflops']:.1f}{size}"]
        cells += [f"{row[f'{p}_images_per_s']:.2f}" for p in policies]
        lines.append("| " + " | ".join([*cells, row["weights"]]) + " |")
    return "\n".join(lines)


def backbone_cell(row: dict) -> str:
    """The backbone as the tables show it: "(own)" for the models with an encoder of their own."""
    return row["backbone"] if row["model"] in MODEL_BACKBONES or row["model"] == "fcn8" else "(own)"


def goal_share(backbone: str) -> float:
    """The training step's goal, as a share of the matrix product's rate (issue 35)."""
    return 0.2 if backbone in DEPTHWISE_BACKBONES else 0.4


def format_training_table(rows: list, policies: list, rates: list) -> str:
    """The training steps as a Markdown table: seconds, first step, GFLOP/s and share of the matrix product."""
    header = ["model", "backbone"]
    for policy in policies:
        header += [f"step s {policy}", f"first step s {policy}", f"GFLOP/s {policy}", f"share {policy}"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        cells = [row["model"], backbone_cell(row)]
        for policy in policies:
            share = row[f"{policy}_matmul_share"]
            mark = "" if share >= goal_share(row["backbone"]) else " (below goal)"
            cells += [
                f"{row[f'{policy}_step_s']:.2f}",
                f"{row[f'{policy}_first_step_s']:.1f}",
                f"{row[f'{policy}_train_gflops']:.0f}",
                f"{share:.0%}{mark}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    spread = f"{min(rates):.0f}-{max(rates):.0f}" if rates else "-"
    median = statistics.median(rates)
    lines.append(f"\nNumPy float32 {MATMUL_SIDE}² matrix product: median {median:.0f} GFLOP/s (range {spread}).")
    return "\n".join(lines)


def ratio(rows: list, policy: str, numerator: tuple, denominator: tuple, key: str = "images_per_s") -> float:
    """The forward rate of (model, backbone) numerator over denominator's, for one policy."""
    by_name = {(row["model"], row["backbone"]): row for row in rows}
    return by_name[numerator][f"{policy}_{key}"] / by_name[denominator][f"{policy}_{key}"]
