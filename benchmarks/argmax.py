"""The class-id argmax of the prediction path: TensorFlow's argmax kernel vs the XLA-compiled `class_ids` that
utils/prediction/path.py uses for batches that fill the network input, taking turns call by call.

    $ python benchmarks/argmax.py                        # 4 x 256 x 256 x 21 probabilities, 50 calls each
    $ python benchmarks/argmax.py --shape 8 512 512 2
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf

from benchmarks.profiling import seconds_of
from utils.prediction.path import class_ids


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=4, default=[4, 256, 256, 21], help="B H W C of the probabilities")
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    probabilities = tf.random.stateless_uniform(args.shape, (0, 1))
    plain = tf.function(lambda p: tf.cast(tf.argmax(p, axis=-1), tf.uint8))
    calls = {"tf.argmax": lambda: plain(probabilities).numpy(), "class_ids": lambda: class_ids(probabilities).numpy()}
    assert (calls["tf.argmax"]() == calls["class_ids"]()).all()  # also traces / compiles both
    seconds = {name: [] for name in calls}
    for _ in range(args.calls):
        for name, call in calls.items():
            seconds[name].append(seconds_of(call))
    fastest = {name: min(times) for name, times in seconds.items()}
    for name, best in fastest.items():
        print(f"{name:16s} fastest call {best * 1000:7.2f} ms")
    ratio = fastest["tf.argmax"] / fastest["class_ids"]
    print(f"tf.argmax / class_ids (XLA): {ratio:.2f}x (fastest calls, probabilities {args.shape})")


if __name__ == "__main__":
    main()
