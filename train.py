r"""Train a segmentation network on a VOC-format dataset: a UNet on VGG16 or ResNet50 (the default), FCN-8s,
the original valid-padding UNet or a small UNet.

Edit the defaults in TrainConfig below, or override any of them with flags:

    $ python train.py                                   # trains on the built-in demo data (made on first run)
    $ python train.py --num_classes 21 --input_shape 512 512 --precision auto
    $ python train.py --vocdevkit_path ../shared/datasets/membrane --num_classes 2 --input_shape 256 256 \
          --freeze_train false --unfreeze_epoch 10 --unfreeze_batch_size 2
    $ python train.py --model fcn8 --input_shape 256 256                              # FCN-8s on the VGG16 encoder
    $ python train.py --model unet_classic --input_shape 444 444     # the original UNet: 444 in, 260 out
    $ python train.py --model_path logs/last_epoch_weights.weights.h5 --init_epoch 12    # resume at epoch 12
    $ python train.py -h                                # every setting with its default

* input_shape: multiples of 32; for unet_small, of 16; for unet_classic, 188 + 16k (its input tile; the output
is 184 smaller, and prediction covers whole images by overlap-tile).

Outputs go to save_dir (logs/): best_epoch_weights.weights.h5, last_epoch_weights.weights.h5, every
save_period epochs ep{epoch}-loss{loss}-val_loss{val_loss}.weights.h5, and a loss_<date>/ folder with the
loss and mIoU curves, history.csv and TensorBoard events.
"""

import math
import os
import sys
import time
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log (e.g. no CUDA on a CPU machine)

import keras

from nets.models import (
    PRETRAINED_ENCODER,
    build_model,
    check_model_settings,
    letterbox_size,
    output_margin,
)
from nets.unet import UnetVariant
from utils.callbacks import CheckpointSaver, EvalCallback, LossHistory
from utils.checkpoint import save_weights_atomically
from utils.config import format_config, run_main
from utils.dataloader import build_eval_dataset
from utils.dataset_check import check_dataset
from utils.demo_data import DEMO_CLASSES, make_demo_dataset
from utils.distribute import check_global_batch, choose_strategy, weights_digest
from utils.images import split_samples
from utils.losses import build_loss
from utils.precision import set_precision
from utils.training import fit_phase, plan_phases
from utils.weights.formats import weights_variant
from utils.weights.matching import Loading, load_weights, report_loading
from utils.weights.mismatch import check_starting_weights
from utils.weights.sources import resolve_model_path


@dataclass
class TrainConfig:
    num_classes: int = 4  # classes including the background (the demo data has 4)
    model: str = "unet"  # network: unet | fcn8 (VGG16) | unet_classic (valid convolutions) | unet_small (from scratch)
    backbone: str = "vgg"  # encoder of model=unet: vgg | resnet50
    model_path: str = "auto"  # start from: auto | imagenet | hed | a weights file | "" (random init)
    input_shape: list[int] = field(default_factory=lambda: [64, 64])  # network input (height width), multiples of 32 *
    precision: str = "auto"  # fp32 | mixed_bfloat16 | mixed_float16 | auto (bf16 on AMX/AVX512-BF16 CPUs, fp16 on GPUs)
    init_epoch: int = 0  # epoch to start at: set it with model_path=a checkpoint to resume a run
    freeze_epoch: int = 3  # epochs 1..freeze_epoch train with the encoder frozen (when freeze_train)
    freeze_batch_size: int = 4  # batch size while the encoder is frozen
    unfreeze_epoch: int = 24  # total epochs: the rest train the whole network
    unfreeze_batch_size: int = 4  # batch size while the whole network trains
    freeze_train: bool = True  # start with the encoder frozen
    init_lr: float = 4e-4  # peak learning rate at batch size 16 (scaled by batch / 16, clamped)
    min_lr: float = 1e-6  # learning rate at the end of the run, at batch size 16
    optimizer_type: str = "adam"  # adam | sgd
    momentum: float = 0.9  # adam beta_1 / sgd momentum
    weight_decay: float = 0.0  # decoupled weight decay (AdamW / SGDW); 0 = off
    lr_decay_type: str = "cos"  # cos (warm-up + cosine) | step
    save_period: int = 5  # also keep the weights of every save_period-th epoch
    save_dir: str = "logs"  # where weights, curves and history go
    eval_flag: bool = True  # compute val mIoU during training (also picks best_epoch_weights by mIoU)
    eval_period: int = 1  # ... every eval_period epochs, and at the last
    vocdevkit_path: str = "VOCdevkit"  # dataset root holding VOC2007/
    dice_loss: bool = True  # add Dice loss (helps with few, small foreground classes)
    focal_loss: bool = False  # focal loss instead of cross-entropy
    cls_weights: list[float] = field(default_factory=list)  # per-class loss weights, e.g. 1 2 3; empty = all 1
    num_workers: int = 0  # data-loading threads; 0 = chosen by tf.data
    seed: int = 11  # seed for shuffling, augmentation and initialisation
    train_gpu: list[int] = field(default_factory=lambda: [0])  # GPU ids; 2+ train together (docs/distribute.md)


def validate_config(config: TrainConfig) -> None:
    """Raises ValueError for settings that cannot work, before anything slow starts."""
    choices = {"backbone": ("vgg", "resnet50"), "optimizer_type": ("adam", "sgd"), "lr_decay_type": ("cos", "step")}
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise ValueError(f"{name}={getattr(config, name)!r}: expected one of {', '.join(allowed)}.")
    check_model_settings(config.model, config.input_shape, config.backbone)
    if config.cls_weights and len(config.cls_weights) != config.num_classes:
        raise ValueError(
            f"cls_weights has {len(config.cls_weights)} values but num_classes={config.num_classes}: "
            "give one weight per class, or none."
        )
    if not 0 <= config.init_epoch < config.unfreeze_epoch:
        raise ValueError(f"init_epoch={config.init_epoch}: expected 0 <= init_epoch < unfreeze_epoch.")


def ensure_demo_data(vocdevkit_path: str) -> None:
    """Writes the demo dataset when the dataset folder holds no images and no labels at all.

    A folder other than the default must exist: a mistyped path is an error, not a place for demo data.
    """
    if not os.path.isdir(vocdevkit_path) and vocdevkit_path != TrainConfig.vocdevkit_path:
        raise ValueError(
            f"vocdevkit_path={vocdevkit_path!r}: no such folder. Expected a dataset root holding VOC2007/ "
            "(JPEGImages, SegmentationClass, ImageSets/Segmentation); check the path."
        )
    voc = os.path.join(vocdevkit_path, "VOC2007")
    folders = [os.path.join(voc, name) for name in ("JPEGImages", "SegmentationClass")]
    if any(
        os.path.isdir(f) and any(not n.startswith(".") and n != "README.md" for n in os.listdir(f)) for f in folders
    ):
        return
    print(
        f"\n*** {voc}/JPEGImages has no images: writing the built-in DEMO dataset there ***\n"
        f"    classes: {', '.join(DEMO_CLASSES)} (num_classes={len(DEMO_CLASSES)}).\n"
        "    To train on your own data, put images in VOC2007/JPEGImages and class-index PNG labels in\n"
        "    VOC2007/SegmentationClass, run python voc_annotation.py and set num_classes\n"
        "    (README: Train on your own data).\n"
    )
    make_demo_dataset(vocdevkit_path)


def make_callbacks(config: TrainConfig, val_samples, letterbox_to):
    """The chief's callbacks, in order: val mIoU (on images letterboxed into letterbox_to, nets.models.letterbox_size),
    loss history and curves, checkpoints, TensorBoard.

    Returns:
        (callbacks, the LossHistory, the CheckpointSaver).
    """
    history = LossHistory(config.save_dir)
    callbacks = [history]
    if config.eval_flag:
        eval_batch = config.unfreeze_batch_size
        eval_data = build_eval_dataset(val_samples, letterbox_to, eval_batch, config.num_workers)
        num_batches = math.ceil(len(val_samples) / eval_batch)
        callbacks.insert(
            0, EvalCallback(eval_data, num_batches, config.num_classes, config.eval_period, config.unfreeze_epoch)
        )
    monitor = "val_miou" if config.eval_flag else "val_loss"
    checkpoints = CheckpointSaver(config.save_dir, config.save_period, monitor, resume=config.init_epoch > 0)
    callbacks += [checkpoints, keras.callbacks.TensorBoard(history.run_dir, write_graph=False)]
    print(f"Logs: {history.run_dir}; best_epoch_weights chosen by {monitor}")
    return callbacks, history, checkpoints


def train(config: TrainConfig) -> None:
    strategy, cluster, placement = choose_strategy(config.train_gpu)  # before any TensorFlow op
    print("Config:\n" + format_config(config))
    validate_config(config)
    ensure_demo_data(config.vocdevkit_path)
    batch_sizes = [config.unfreeze_batch_size] + ([config.freeze_batch_size] if config.freeze_train else [])
    check_dataset(config.vocdevkit_path, config.num_classes, min_train=max(batch_sizes), min_val=1)
    train_samples, val_samples = (split_samples(config.vocdevkit_path, split) for split in ("train", "val"))
    print(f"Data: {len(train_samples)} train, {len(val_samples)} val samples in {config.vocdevkit_path}")
    print(f"Devices: {placement}")
    for batch_size in batch_sizes:
        check_global_batch(batch_size, strategy)

    print(set_precision(config.precision))
    keras.utils.set_random_seed(config.seed)
    weights_path, source = resolve_model_path(config.model_path, config.backbone, config.model)
    variant, known = weights_variant(weights_path) if weights_path else (UnetVariant(), "")
    with strategy.scope():  # variables mirrored on every replica
        model = build_model(config.model, config.input_shape, config.num_classes, config.backbone, variant)
        loading = load_weights(model, weights_path) if weights_path else Loading()
    print(report_loading(source, loading))
    if weights_path:
        check_starting_weights(model, weights_path, loading, config.model, config.backbone)
    if variant != UnetVariant():
        print(f"  trained as: {variant.describe()} ({known}); the checkpoints record it")
    if config.freeze_train and config.model not in PRETRAINED_ENCODER:
        print(f"Note: model={config.model} has no pretrained encoder; the freeze phase trains the whole network.")
    margin = output_margin(model)
    if margin:
        output = [side - 2 * margin for side in config.input_shape]
        print(f"Model: {config.input_shape} in, {output} out; labels cropped to the output, prediction by overlap-tile")

    loss = build_loss(config.cls_weights or [1.0] * config.num_classes, config.dice_loss, config.focal_loss)
    # Only the chief evaluates and writes logs/; the other workers train and write nothing.
    callbacks, history, checkpoints = [], None, None
    if cluster.is_chief:
        callbacks, history, checkpoints = make_callbacks(config, val_samples, letterbox_size(model))
    started, epoch = time.time(), config.init_epoch
    try:
        with strategy.scope():
            for phase in plan_phases(config):
                shard = (cluster.index, cluster.count)
                fit_phase(model, config, loss, phase, (train_samples, val_samples), callbacks, shard)
                epoch = phase.end_epoch
    except KeyboardInterrupt:
        if not cluster.is_chief:
            sys.exit(130)
        epoch = history.rows[-1]["epoch"] if history.rows else config.init_epoch
        path = checkpoints.path("last_epoch_weights")
        save_weights_atomically(model, path)
        print(
            f"\nInterrupted after epoch {epoch}; weights saved to {path}. Resume with:\n"
            f"  python {' '.join(sys.argv)} --model_path {path} --init_epoch {epoch}"
        )
        sys.exit(130)
    if cluster.count > 1:
        print(f"Worker {cluster.index}: weights digest {weights_digest(model)} (the same on every worker)")
    where = f"Weights in {config.save_dir}/" if cluster.is_chief else "The chief writes the weights."
    print(f"Done: {epoch} epochs in {(time.time() - started) / 60:.1f} min. {where}")


if __name__ == "__main__":
    run_main(train, TrainConfig, __doc__)
