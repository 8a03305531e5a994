"""Training images per second of one network at several batch sizes, as the planner measures a step
(utils/planning/speed.py): what a larger batch buys on this CPU.

    $ python benchmarks/batch_speed.py --model unet --backbone vgg --input_shape 64 64 --batch_sizes 2 4 8 16
    $ ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/batch_speed.py --precision fp32 ...   # as on an AVX2-only CPU

The batch sizes take turns over `rounds` rounds (a shared machine's load weighs on all alike); each figure is the
median step over the rounds.
"""

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository

from nets.models import Network  # noqa: E402
from utils.files.bands import Bands  # noqa: E402
from utils.planning.speed import measure_apart  # noqa: E402
from utils.precision import set_precision  # noqa: E402


def parse_args() -> argparse.Namespace:
    """The command line: the network, its input, the batch sizes to compare, the precision and the rounds."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--backbone", default="vgg")
    parser.add_argument("--num_classes", type=int, default=4)
    parser.add_argument("--input_shape", type=int, nargs=2, default=[64, 64])
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def main():
    args = parse_args()
    print(set_precision(args.precision))
    network = Network(args.model, args.backbone, args.num_classes, tuple(args.input_shape))
    steps = {batch: [] for batch in args.batch_sizes}
    forwards = {batch: [] for batch in args.batch_sizes}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for batch in args.batch_sizes:
                speed = measure_apart(network, batch, Bands(), folder)
                steps[batch].append(speed.step)
                forwards[batch].append(speed.forward)
    print(f"\n{args.model} {args.backbone} at {args.input_shape[0]}x{args.input_shape[1]}")
    print(f"{'batch':>5} {'step (s)':>9} {'train img/s':>11} {'forward img/s':>13}")
    for batch in args.batch_sizes:
        step, forward = statistics.median(steps[batch]), statistics.median(forwards[batch])
        print(f"{batch:>5} {step:>9.3f} {batch / step:>11.1f} {batch / forward:>13.1f}")


if __name__ == "__main__":
    main()
