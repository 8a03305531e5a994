"""Where a training step's time goes: the network's passes, the optimizer's update, Keras' loop, by op type.

    $ python benchmarks/step_split.py                         # the demo's step: VGG16-UNet, 64x64, batch 4, auto
    $ python benchmarks/step_split.py --input_shape 256 256 --num_classes 21
    $ python benchmarks/step_split.py --model deeplabv3plus --backbone resnet50 --batch_size 8 --precision fp32

On one in-memory batch, the parts taking turns call by call (fastest and median of --calls calls, ms):
    forward                 the network in training mode
    forward + backward      the same and every gradient (each summed, so that none is pruned from the graph)
    update, Adam            the optimizer's update of every trainable variable alone (utils/training/optimizers.py)
    fit step, ...           a whole step as model.fit runs it (Keras' compiled step function: loss, gradients,
                            update, metrics; fit's callbacks aside), and with steps_per_execution 8 (Keras runs
                            8 steps per call of its step function)
for DeepLabV3+ and FCN-8s also "fit step, Keras' Conv2D throughout": the same network with Keras' Conv2D where it
uses nets/atrous.py (DeepLabV3+'s dilated pyramid, which TensorFlow computes as SpaceToBatch, convolution,
BatchToSpace; FCN-8s' 7x7 fc6, every tap computed on small maps);
and, beside each, its first call in seconds (tracing, graph optimisation and the first run: what a run pays once);
with --profile, the fit step's time by TensorFlow op type (its profiler's self time per step; ops that run
at once on the two threads each count their own time, so the sum exceeds the step).
"""

import argparse
import collections
import contextlib
import glob
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402 (after the path to the repository is set)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import nets.deeplab  # noqa: E402
import nets.fcn  # noqa: E402
from nets.models import build_model  # noqa: E402
from utils.losses import build_loss  # noqa: E402
from utils.precision import set_precision  # noqa: E402
from utils.training.optimizers import make_optimizer  # noqa: E402


def op_type_profile(step, steps: int) -> dict:
    """{op type: ms of self time per step} of `steps` calls of `step`, from TensorFlow's profiler."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as plugin

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            step()
        tf.profiler.experimental.stop()
        (path,) = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
        data, _ = plugin.xspace_to_tools_data([path], "framework_op_stats", {})
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    per_type = collections.Counter()
    for row in table["rows"]:
        cells = dict(zip(columns, [cell.get("v") for cell in row["c"]]))
        if cells["type"] != "IDLE":
            per_type[cells["type"]] += cells["total_self_time"] / 1000 / steps
    return dict(per_type.most_common())


def compiled(network, loss, steps_per_execution: int):
    """The network compiled as train.py compiles it (its Adam, built before the first step)."""
    network.compile(optimizer=make_optimizer("adam", 1e-5), loss=loss, steps_per_execution=steps_per_execution)
    network.optimizer.build(network.trainable_variables)
    return network


@contextlib.contextmanager
def keras_convolutions():
    """Networks built with Keras' Conv2D where they use nets/atrous.py (DeepLabV3+'s dilated pyramid, FCN-8s' fc6),
    as before it."""
    modules = (nets.deeplab, nets.fcn)
    saved = [module.AtrousConv2D for module in modules]
    for module in modules:
        module.AtrousConv2D = keras.layers.Conv2D
    try:
        yield
    finally:
        for module, layer in zip(modules, saved):
            module.AtrousConv2D = layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--backbone", default="vgg")
    parser.add_argument("--input_shape", type=int, nargs=2, default=[64, 64])
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--num_classes", type=int, default=4)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    print(set_precision(args.precision))
    height, width = args.input_shape
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (args.batch_size, height, width, 3), np.uint8))
    labels = tf.constant(rng.integers(0, args.num_classes, (args.batch_size, height, width), np.uint8))
    loss = build_loss([1.0] * args.num_classes, dice_loss=True)  # train.py's default: CE + Dice
    keras.utils.set_random_seed(0)
    model = build_model(args.model, (height, width), args.num_classes, args.backbone)
    variables = model.trainable_variables
    twins = {}  # a compiled copy of the network per steps_per_execution, for model.fit
    for name, per_call in [("spe 1", 1), ("spe 8", 8)]:
        twins[name] = (compiled(keras.models.clone_model(model), loss, per_call), per_call)
    if args.model in ("deeplabv3plus", "fcn8"):
        with keras_convolutions():
            twins["spe 1, Keras' Conv2D throughout"] = (
                compiled(build_model(args.model, (height, width), args.num_classes, args.backbone), loss, 1),
                1,
            )
    batches = tf.data.Dataset.from_tensors((images, labels)).repeat()

    @tf.function
    def forward():
        return model(images, training=True)

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            value = loss(labels, model(images, training=True))
        return [tf.reduce_sum(gradient) for gradient in tape.gradient(value, variables)]

    gradients = [tf.zeros_like(v) for v in variables]
    optimizer = make_optimizer("adam", 1e-5)
    optimizer.build(variables)
    update = tf.function(lambda: optimizer.apply_gradients(zip(gradients, variables)))

    def fit_step(name):
        """One call of Keras' compiled step function (what fit calls per step, without its callbacks)."""
        twin, _ = twins[name]
        twin.make_train_function()
        iterator = iter(batches)
        return lambda: twin.train_function(iterator)

    parts = {  # name: (function, training steps per call)
        "forward": (forward, 1),
        "forward + backward": (forward_backward, 1),
        "update, Adam": (update, 1),
        **{f"fit step, {name}": (fit_step(name), per_call) for name, (_, per_call) in twins.items()},
    }
    seconds, first = {name: [] for name in parts}, {}
    for call in range(args.calls + 2):  # two untimed rounds: tracing
        for name, (part, steps) in parts.items():
            started = time.perf_counter()
            result = part()
            tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, result)
            if call >= 2:
                seconds[name].append((time.perf_counter() - started) / steps)
            elif call == 0:
                first[name] = time.perf_counter() - started
    policy = keras.mixed_precision.global_policy().name
    print(f"{args.model} {args.backbone}, {height}x{width}, batch {args.batch_size}, {policy}")
    print(f"{'part':36s} {'fastest ms':>10s} {'median ms':>10s} {'first call s':>12s}")
    for name, values in seconds.items():
        print(f"{name:36s} {1000 * min(values):10.1f} {1000 * np.median(values):10.1f} {first[name]:12.1f}")
    if args.profile:
        by_type = op_type_profile(fit_step("spe 1"), 10)
        total = sum(by_type.values())
        print("\nfit step, by op type (self time per step, ms):")
        for op_type, ms in list(by_type.items())[:15]:
            print(f"  {op_type:40s} {ms:7.1f}  {ms / total:6.1%}")


if __name__ == "__main__":
    main()
