r"""The first training step (tracing, graph optimisation, oneDNN's kernels, the step) in fresh processes, as a
train.py run pays it, with train.py's Adam and with Keras' own, taking turns process by process.

    $ python benchmarks/first_step.py --model deeplabv3plus --backbone resnet50      # 64x64, batch 8, fp32
    $ ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/first_step.py --rounds 5             # oneDNN's AVX2 kernels only

Each process builds the network, compiles it as train.py does (CE + Dice, the optimizer built before the first
step), times its first train_on_batch and the median of 3 after 2 more, then counts the operations of a training
step's graph. A process that has traced other
networks before takes longer for its first step (benchmark.py --networks measures them one after another in one
process), so each measurement here has a process of its own.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

OPTIMIZERS = ("train.py", "keras")  # utils/training/optimizers.py's Adam; keras.optimizers.Adam


def child(args) -> None:
    """One measurement, printed as a JSON line."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    from nets.models import build_model
    from utils.losses import build_loss
    from utils.precision import set_precision
    from utils.training.optimizers import make_optimizer

    set_precision(args.precision)
    keras.utils.set_random_seed(0)
    height, width = args.input_shape
    network = build_model(args.model, (height, width), args.num_classes, args.backbone)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch_size, height, width, 3)).astype(np.float32)
    labels = rng.integers(0, args.num_classes, (args.batch_size, *network.output_shape[1:3])).astype(np.int32)
    own = args.optimizer == "keras"
    optimizer = keras.optimizers.Adam(1e-4, beta_1=0.9) if own else make_optimizer("adam", 1e-4)
    network.compile(optimizer=optimizer, loss=build_loss([1.0] * args.num_classes, dice_loss=True))
    network.optimizer.build(network.trainable_variables)
    seconds = []
    for _ in range(6):
        started = time.perf_counter()
        network.train_on_batch(images, labels)
        seconds.append(time.perf_counter() - started)
    operations = step_operations(network, images, labels)
    result = {"first": seconds[0], "step": statistics.median(seconds[3:]), "operations": operations}
    print(json.dumps({"optimizer": args.optimizer, **result}))


def step_operations(network, images, labels) -> int:
    """Operations in the graph of a training step (forward, loss, gradients, the optimizer's update), traced
    after the timing."""
    import tensorflow as tf

    @tf.function
    def step(images, labels):
        with tf.GradientTape() as tape:
            loss = network.compute_loss(x=images, y=labels, y_pred=network(images, training=True))
        network.optimizer.apply(tape.gradient(loss, network.trainable_variables), network.trainable_variables)

    specs = [tf.TensorSpec(images.shape, tf.float32), tf.TensorSpec(labels.shape, tf.int32)]
    return len(step.get_concrete_function(*specs).graph.get_operations())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="deeplabv3plus")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--input_shape", type=int, nargs=2, default=[64, 64])
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--num_classes", type=int, default=21)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--rounds", type=int, default=3, help="processes per optimizer, taking turns")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help=argparse.SUPPRESS)  # a child process's
    args = parser.parse_args()
    if args.optimizer:
        return child(args)
    results = {name: [] for name in OPTIMIZERS}
    for _ in range(args.rounds):
        for name in OPTIMIZERS:
            command = [sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--optimizer", name]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            results[name].append(result)
            print(
                f"{name:9s} first step {result['first']:6.2f} s, step {result['step']:.3f} s, "
                f"{result['operations']} graph operations",
                flush=True,
            )
    height, width = args.input_shape
    print(f"\n{args.model} {args.backbone}, {height}x{width}, batch {args.batch_size}, {args.precision}; median:")
    for name, runs in results.items():
        first, step = (statistics.median(r[key] for r in runs) for key in ("first", "step"))
        print(f"  {name:9s} first step {first:6.2f} s (min {min(r['first'] for r in runs):.2f}), step {step:.3f} s")


if __name__ == "__main__":
    main()
