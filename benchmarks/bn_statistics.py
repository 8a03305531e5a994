"""Batch normalisation's moving statistics against the batch's own, while a network trains from scratch.

    $ python benchmarks/bn_statistics.py                          # unet + mobilenetv2 on membrane, 10 epochs
    $ python benchmarks/bn_statistics.py --model deeplabv3plus --backbone resnet50

Trains as train.py's membrane command does (256x256, batch 2, 12 steps an epoch, CE + Dice, bf16 where auto picks it)
and after every epoch scores the val images' class-1 IoU twice: in inference mode (the moving statistics, as
evaluation and prediction use them) and in training mode (the batch's statistics). A network whose features are
learnt but whose moving statistics lag behind them scores in training mode only.
"""

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import keras  # noqa: E402 (after the path to the repository is set)
import numpy as np  # noqa: E402

from nets.models import build_model  # noqa: E402
from utils.dataloader import Pipeline, build_train_dataset, build_val_dataset  # noqa: E402
from utils.files.images import split_samples  # noqa: E402
from utils.losses import build_loss  # noqa: E402
from utils.metrics import confusion_matrix, per_class_iou  # noqa: E402
from utils.phases import Phase, compile_phase  # noqa: E402
from utils.precision import set_precision  # noqa: E402
from utils.training.optimizers import make_optimizer  # noqa: E402
from utils.training.precise_bn import StatisticsPass, calibration_samples  # noqa: E402

MEMBRANE = os.path.join(ROOT, "..", "shared", "datasets", "membrane")


def class_iou(probabilities: np.ndarray, labels: np.ndarray, class_id: int = 1) -> float:
    """IoU of one class (ignored label pixels left out; NaN when neither labelled nor predicted)."""
    matrix = confusion_matrix(labels, probabilities.argmax(-1), probabilities.shape[-1])
    return float(per_class_iou(matrix)[class_id])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--backbone", default="mobilenetv2")
    parser.add_argument("--vocdevkit_path", default=MEMBRANE)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--precise_bn", type=int, default=1, help="recompute BN statistics after each epoch (0: no)")
    args = parser.parse_args()
    print(set_precision("auto"))
    train_samples = split_samples(args.vocdevkit_path, "train")
    train = build_train_dataset(train_samples, Pipeline((256, 256)), 2, seed=0)
    calibration = build_val_dataset(calibration_samples(train_samples), Pipeline((256, 256)), 2)
    images, labels = next(
        iter(build_train_dataset(split_samples(args.vocdevkit_path, "val"), Pipeline((256, 256)), 5, 1))
    )
    keras.utils.set_random_seed(0)
    model = build_model(args.model, (256, 256), 2, args.backbone)
    loss = build_loss([1.0, 1.0], dice_loss=True)
    compile_phase(model, loss, Phase(0, args.epochs, 2, False), make_optimizer("adam", args.learning_rate))
    print(f"{args.model} + {args.backbone} from random, lr {args.learning_rate:g}: val class-1 IoU after each epoch")
    print("epoch  train loss  inference mode  precise BN  training mode")
    statistics = StatisticsPass(model)
    for epoch in range(1, args.epochs + 1):
        history = model.fit(train, epochs=1, steps_per_epoch=12, verbose=0)
        moving, batch = (class_iou(model(images, training=mode).numpy(), labels.numpy()) for mode in (False, True))
        if args.precise_bn:
            statistics(calibration)  # as train.py does at each epoch's end: the next epoch goes on from these
        precise = class_iou(model(images, training=False).numpy(), labels.numpy())
        print(f"{epoch:5d}  {history.history['loss'][0]:10.3f}  {moving:14.3f}  {precise:10.3f}  {batch:13.3f}")


if __name__ == "__main__":
    main()
