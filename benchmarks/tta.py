"""Val mIoU and time per image of trained weights with and without test-time augmentation, on the same weights.

    $ python benchmarks/tta.py --model_path logs/best_epoch_weights.weights.h5
    $ python benchmarks/tta.py --model_path membrane/best_epoch_weights.weights.h5 \
          --vocdevkit_path ../shared/datasets/membrane --tta hflip vflip

Each row predicts the val split through the prediction path (Unet.segment: letterbox or sliding window, the
network's copies in one call, restore, argmax), after one warm-up image; the time is the path's alone (the image is
read before). The two predictors take turns image by image, so a neighbour's load on a shared machine weighs on
both alike.
"""

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from unet import Unet  # noqa: E402 (after the path to the repository is set)
from utils.files.bands import read_input  # noqa: E402
from utils.files.images import load_label, split_samples  # noqa: E402
from utils.metrics import confusion_matrix, mean_iou  # noqa: E402
from utils.prediction.tta import TestTimeAugmentation  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_path", default="logs/best_epoch_weights.weights.h5")
    parser.add_argument("--vocdevkit_path", default="VOCdevkit")
    parser.add_argument("--tta", nargs="+", default=["hflip", "vflip"], help="test-time augmentation (unet.py's)")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    samples = split_samples(args.vocdevkit_path, "val")
    rows = {"none": [], " ".join(args.tta): args.tta}
    predictors = {
        name: Unet(model_path=args.model_path, precision=args.precision, backend="keras", tta=words)
        for name, words in rows.items()
    }
    num_classes = next(iter(predictors.values())).config.num_classes
    matrices = {name: np.zeros((num_classes, num_classes), np.int64) for name in predictors}
    seconds = {name: [] for name in predictors}
    bands = next(iter(predictors.values())).bands
    for name, unet in predictors.items():
        unet.segment([read_input(samples[0][0], bands)])  # warm-up: tracing
    for image_path, label_path in samples:
        image, label = read_input(image_path, bands), load_label(label_path)
        for name, unet in predictors.items():
            started = time.perf_counter()
            (mask,) = unet.segment([image])
            seconds[name].append(time.perf_counter() - started)
            matrices[name] += confusion_matrix(label, mask, num_classes)
    print(f"\n{args.model_path} on {len(samples)} val images of {args.vocdevkit_path}:")
    print(f"{'tta':<24} {'copies':>6} {'calls/image':>11} {'val mIoU':>9} {'s/image':>8}")
    for name in predictors:
        copies = TestTimeAugmentation.parse(rows[name]).copies
        figures = f"{copies:>6} {1:>11} {100 * mean_iou(matrices[name]):>9.2f} {np.mean(seconds[name]):>8.3f}"
        print(f"{name:<24} {figures}")
    base, augmented = (np.mean(seconds[name]) for name in predictors)
    print(f"time with / without: {augmented / base:.2f}x")


if __name__ == "__main__":
    main()
