"""benchmark.py --networks: every model x backbone side by side, parameters, GFLOPs and the forward pass's images/s
in fp32 and mixed precision, measured in one run with the networks taking turns call by call."""

import statistics

import keras
import numpy as np
import tensorflow as tf

from nets.folding import fold_batch_norms
from nets.models import MODEL_BACKBONES, MODELS, build_model
from nets.unet_classic import CLASSIC_MARGIN
from utils.profiling import count_flops, seconds_of
from utils.weights.sources import starting_weights_of


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


def measure_networks(input_shape, num_classes: int, batch_size: int, policies: list, calls: int, warmup: int) -> list:
    """One row per table_networks(): params, GFLOPs per image, and images/s of the forward pass per dtype policy.

    Every network is built once per policy first; then `calls` rounds, each calling every network once on the same
    random batch, so that a neighbour's load on a shared machine weighs on all alike. Rates are batch_size over
    the median call; `fastest` keeps batch_size over the fastest one (benchmark.py's shares).
    """
    rows, functions = [], []
    rng = np.random.default_rng(0)
    for model, backbone in table_networks():
        shape = table_shape(model, input_shape)
        images = tf.constant(rng.integers(0, 256, (batch_size, *shape, 3)).astype(np.float32))
        row = {
            "model": model,
            "backbone": backbone,
            "input_shape": list(shape),
            "weights": starting_weights_of(model, backbone),
        }
        for policy in policies:
            keras.mixed_precision.set_global_policy(policy)
            network = build_model(model, shape, num_classes, backbone)
            if policy == "float32":
                row["params_m"] = network.count_params() / 1e6
                row["gflops"] = count_flops(network) / 1e9
            functions.append((row, policy, forward_function(network), images))
        keras.mixed_precision.set_global_policy("float32")
        rows.append(row)
    for _, _, function, images in functions:
        for _ in range(warmup):
            function(images).numpy()  # traces; the first calls also autotune
    seconds = [[] for _ in functions]
    for _ in range(calls):
        for times, (_, _, function, images) in zip(seconds, functions):
            times.append(seconds_of(lambda: function(images).numpy()))
    for times, (row, policy, _, _) in zip(seconds, functions):
        row[f"{policy}_images_per_s"] = batch_size / statistics.median(times)
        row[f"{policy}_fastest_images_per_s"] = batch_size / min(times)
    return rows


def format_network_table(rows: list, policies: list) -> str:
    """The rows as a Markdown table (the README's)."""
    header = ["model", "backbone", "params", "GFLOPs"] + [f"img/s {p}" for p in policies] + ["starting weights"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        size = "" if row["input_shape"][0] == rows[0]["input_shape"][0] else f" at {row['input_shape'][0]}²"
        backbone = row["backbone"] if row["model"] in MODEL_BACKBONES or row["model"] == "fcn8" else "(own)"
        cells = [row["model"], backbone, f"{row['params_m']:.1f} M", f"{row['gflops']:.1f}{size}"]
        cells += [f"{row[f'{p}_images_per_s']:.2f}" for p in policies]
        lines.append("| " + " | ".join([*cells, row["weights"]]) + " |")
    return "\n".join(lines)


def ratio(rows: list, policy: str, numerator: tuple, denominator: tuple, key: str = "images_per_s") -> float:
    """The forward rate of (model, backbone) numerator over denominator's, for one policy."""
    by_name = {(row["model"], row["backbone"]): row for row in rows}
    return by_name[numerator][f"{policy}_{key}"] / by_name[denominator][f"{policy}_{key}"]
