r"""Train a segmentation network on a VOC-format dataset: a UNet (the default) or DeepLabV3+ on a VGG16, ResNet50,
MobileNetV2 or EfficientNetV2-B0 encoder, FCN-8s, the original valid-padding UNet or a small UNet.

Edit the defaults in TrainConfig below, or override any of them with flags:

    $ python train.py                                   # trains on the built-in demo data (made on first run)
    $ python train.py --num_classes 21 --input_shape 512 512 --precision auto
    $ python train.py --vocdevkit_path ../shared/datasets/membrane --num_classes 2 --input_shape 256 256 \
          --freeze_train false --unfreeze_epoch 10 --unfreeze_batch_size 2
    $ python train.py --model fcn8 --input_shape 256 256                              # FCN-8s on the VGG16 encoder
    $ python train.py --backbone mobilenetv2           # a light UNet: its step 8-12x faster than the VGG16-UNet's (CPU)
    $ python train.py --model deeplabv3plus --backbone resnet50 --input_shape 512 512          # natural scenes
    $ python train.py --model unet_classic --input_shape 444 444     # the original UNet: 444 in, 260 out
    $ python train.py --resume logs                     # continue the run in logs/ exactly where it stopped
    $ python train.py --resume logs --unfreeze_epoch 50  # ... and train it longer
    $ python train.py -h                                # every setting with its default

* input_shape: multiples of 32; for unet_small and deeplabv3plus, of 16; for unet_classic, 188 + 16k (its input
tile; the output is 184 smaller, and prediction covers whole images by overlap-tile).
* input_channels: found from the images (grey 1, RGB 3, a multi-band TIFF its bands); images of other bit depths than
8 are stretched per band by their robust range, measured on the train split and recorded with the weights. 1 or 3
converts RGB to grey or grey to RGB.
* head sigmoid: for 2-class data, one output P(class 1) trained with binary cross-entropy (+ the foreground's Dice);
predict.py and get_miou.py then draw class 1 where P > threshold (their setting, default 0.5; get_miou.py can sweep it).
head multilabel: classes that overlap, one sigmoid each (num_classes = those classes, up to 7, no background), from
per-class masks that voc_annotation.py packs (utils/multilabel.py); binary cross-entropy per class (+ Dice, Tversky).
* early_stop_patience: early stopping in the frozen phase unfreezes at the next epoch; in the unfrozen phase it ends
the run (best_epoch_weights is the best epoch's). lr_decay_type plateau lowers the learning rate instead. Both count
epochs since the best value of val mIoU (val loss with eval_flag false) within the phase, and resume exactly.
* weight_map: the UNet paper's w(x) = cls_weights[class] + w0 exp(-(d1 + d2)^2 / 2 sigma^2), d1 and d2 the distances
to the nearest and second-nearest object: the connected regions of the object classes (weight_map_objects; on the
membrane set the cells, class 0). It weights cross-entropy or focal loss; Dice stays unweighted.
* jitter: each sample is jittered in scale (fit: its longer side 0.25-2 x the input's; slide: 0.9-1.1 x image_scale),
aspect (x 0.7-1.3) and colour (HSV; a brightness gain for other images) with this probability, the others are placed
as prediction sees them (fit: letterboxed). Planned from the run's length: none up to 10 epochs, all from 24.
* noise, blur, contrast, low_resolution, gamma: nnU-Net's photometric augmentation, each given to this share of the
samples, in each band's own range (8-bit, 16-bit and N-band images alike); nnU-Net's: --noise 0.1 --blur 0.2
--contrast 0.15 --low_resolution 0.25 --gamma 0.3 (utils/augmentation/photometric.py).
* elastic_alpha: the UNet paper's elastic deformation, a smooth random displacement field, resampled with the affine
augmentation in one pass. The paper's: --elastic_alpha 10 --elastic_sigma 286 on 572 px tiles.
* fold: voc_annotation.py --num_folds k writes k folds (fold{i}_train.txt, fold{i}_val.txt); --fold i trains on fold
i into save_dir/fold_i. python cross_validate.py trains every fold and reports the cross-validated figures.
* scale_mode: fit letterboxes each whole image into input_shape (right for photos, VOC); slide keeps images at their
own resolution (times image_scale) and trains on input_shape crops, drawn on labelled content often enough that
rare classes are seen, and predicts by a sliding window of input_shape with `overlap`, blended: right for large
images with small or thin structures (aerial, microscopy, pathology). auto: slide for unet_classic, else fit.

Outputs go to save_dir (logs/): best_epoch_weights.weights.h5, last_epoch_weights.weights.h5, every
save_period epochs ep{epoch}-loss{loss}[-val_loss{val_loss}].weights.h5 (the val loss where it ran; each records
the settings it was trained with, so prediction needs none typed in), the two newest resumable checkpoints
resume_epoch{epoch}.weights.h5 (weights, optimizer state and the run's state), and a loss_<date>/ folder with the
loss and mIoU curves, history.csv and TensorBoard events. A save_dir that holds an earlier run is refused: resume
it, or choose another.
"""

import time

STARTED = time.time()  # the run's start, which a time budget counts from

import contextlib
import functools
import math
import os
import shlex
import sys
from dataclasses import asdict, dataclass, field, replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log (e.g. no CUDA on a CPU machine)

import keras

from nets.heads import check_head, label_value_count, multilabel_count
from nets.models import PRETRAINED_ENCODER, Network, check_model_settings, model_margin, output_margin
from nets.unet import model_variant
from utils.augmentation.options import Augmentation
from utils.augmentation.photometric import Photometric
from utils.callbacks import CheckpointSaver, EvalCallback, LossHistory, NonFiniteGuard, Watch
from utils.config import format_config, given_flags, given_settings, run_main
from utils.dataloader import Pipeline, Shard, oversampled_count
from utils.dataset.check import check_count, check_dataset
from utils.dataset.demo import DEMO_CLASSES, DEMO_MINUTES, is_demo_dataset, make_demo_dataset
from utils.dataset.fingerprint import describe_fingerprint, train_fingerprint
from utils.files.bands import Bands, survey
from utils.files.images import Splits, check_num_classes, dataset_class_names, split_samples
from utils.losses import build_loss, check_tversky
from utils.multilabel import check_packed_head, set_names
from utils.phases import PhasePlan, Run, fit_phase
from utils.planning.budget import (
    Estimate,
    Fitted,
    Workload,
    estimate,
    fit_budget,
    frozen_epochs,
    phase_lengths,
    plan_eval_period,
    refit_epochs,
)
from utils.planning.machine import this_machine
from utils.planning.plan import load_plan, make_plan, save_plan
from utils.planning.rules import Planned, plan_jitter
from utils.planning.speed import measure_apart
from utils.precision import set_precision
from utils.prediction.inputs import build_eval_dataset
from utils.prediction.path import prediction_path
from utils.prediction.scores import ClassScores
from utils.prediction.sliding import window_starts
from utils.scale import Scale, check_scale_settings, describe_scale, resolve_scale_mode
from utils.training.distribute import check_global_batch, choose_strategy, weights_digest
from utils.training.history import new_run_dir
from utils.training.learning_rate import LearningRates
from utils.training.precise_bn import calibration_samples
from utils.training.resumable import find_resumable, restore_seed_generators, resumable_checkpoints
from utils.training.runs import prepare_save_dir, resumed_config, run_dir_of, save_dir_lock
from utils.training.stopping import WatchRules
from utils.training.timeline import Timeline
from utils.training.val_images import ValImages
from utils.visualize import value_colours
from utils.weight_map import WeightMap
from utils.weights.building import build_with_weights
from utils.weights.checkpoint import EpochFiles, ModelSettings, save_weights, settings_for
from utils.weights.sources import resolve_model_path


@dataclass
class TrainConfig:
    num_classes: int = 4  # classes including the background (the demo data has 4)
    model: str = "unet"  # network: unet | deeplabv3plus | fcn8 (VGG16) | unet_classic | unet_small (from scratch)
    backbone: str = "vgg"  # encoder of unet / deeplabv3plus: vgg | resnet50 | mobilenetv2 | efficientnetv2b0
    head: str = "softmax"  # softmax (argmax over the classes) | sigmoid: 2 classes, one output | multilabel *
    model_path: str = "auto"  # start from: auto | imagenet | hed | a weights file | "" (random init)
    input_shape: list[int] = field(default_factory=lambda: [64, 64])  # network input (height width), multiples of 32 *
    input_channels: int = 0  # bands of the input: 0 = as the images have them (1 grey, 3 RGB, N); 1 or 3 convert *
    scale_mode: str = "auto"  # fit: image into input_shape | slide: own size, crops + sliding window | auto *
    image_scale: float = 1.0  # slide: images at this scale (e.g. 0.5 for very large aerial tiles)
    overlap: float = 0.25  # slide: share of a window that the next one overlaps, for val mIoU
    precision: str = "auto"  # fp32 | mixed_bfloat16 | mixed_float16 | auto (bf16 on AMX/AVX512-BF16 CPUs, fp16 on GPUs)
    resume: str = ""  # continue a run exactly: its save_dir, or one of its resume_epoch*.weights.h5 files
    init_epoch: int = 0  # start at this epoch from model_path's weights, with a fresh optimizer (resume is exact)
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
    lr_decay_type: str = "cos"  # cos (warm-up + cosine) | step | plateau (reduced when val mIoU stops improving)
    plateau_patience: int = 3  # plateau: epochs without a better val mIoU (val loss without eval) before a reduction
    plateau_factor: float = 0.5  # plateau: the learning rate is multiplied by this, down to min_lr
    early_stop_patience: int = 0  # early stopping: end the phase after this many epochs without a better val mIoU *
    save_period: int = 5  # also keep the weights of every save_period-th epoch
    save_dir: str = "logs"  # where weights, curves and history go
    eval_flag: bool = True  # compute val mIoU during training (also picks best_epoch_weights by mIoU)
    eval_period: int = 1  # ... and the val loss, every eval_period epochs and at the last
    tensorboard_images: int = 4  # at each evaluation, this many val images to TensorBoard: image | label | prediction
    vocdevkit_path: str = "VOCdevkit"  # dataset root holding VOC2007/
    dice_loss: bool = True  # add Dice loss (helps with few, small foreground classes)
    focal_loss: bool = False  # focal loss instead of cross-entropy
    tversky_loss: bool = False  # add Tversky loss: a miss weighs tversky_beta, a false alarm tversky_alpha (thin, rare)
    tversky_alpha: float = 0.3  # Tversky: the false positives' weight (alpha = beta = 0.5 is Dice)
    tversky_beta: float = 0.7  # Tversky: the false negatives' weight
    lovasz_loss: bool = False  # add the Lovasz-softmax loss, a surrogate of the IoU itself (planned: on)
    cls_weights: list[float] = field(default_factory=list)  # per-class loss weights, e.g. 1 2 3; empty = all 1
    weight_map: bool = False  # UNet weight map: extra loss weight in the gaps between touching objects *
    weight_map_w0: float = 10.0  # weight map: w0, the weight at a gap of width 0 (the UNet paper's 10)
    weight_map_sigma: float = 5.0  # weight map: sigma in px, how fast it falls off with the gap (the paper's 5)
    weight_map_objects: list[int] = field(default_factory=list)  # weight map: the object classes; empty = all but 0
    rotation: float = 0.0  # augmentation: random rotation by up to +-rotation degrees; 0 = off
    rotate_90: bool = False  # augmentation: random rotation by a multiple of 90 degrees (aerial, microscopy)
    vertical_flip: bool = False  # augmentation: random vertical flip (the horizontal flip is always on)
    shear: float = 0.0  # augmentation: random shear by up to +-shear degrees; 0 = off
    elastic_alpha: float = 0.0  # augmentation: elastic deformation, px of random displacement (paper: 10); 0 = off *
    elastic_sigma: float = 128.0  # elastic deformation: px between the points of its coarse random grid (smoothness)
    jitter: float = 1.0  # augmentation: the share of samples jittered in scale, aspect and colour; the rest as seen *
    oversample: float = (
        0.0  # the share of each batch drawn from images holding an oversample_classes class (nnU-Net: 0.33)
    )
    oversample_classes: list[int] = field(default_factory=list)  # ... those classes; empty = every class but 0
    noise: float = 0.0  # augmentation: the share of samples given Gaussian noise; 0 = off (nnU-Net: 0.1) *
    blur: float = 0.0  # augmentation: ... a Gaussian blur, sigma 0.5-1 px (nnU-Net: 0.2)
    contrast: float = 0.0  # augmentation: ... a contrast change x 0.75-1.25 (nnU-Net: 0.15)
    low_resolution: float = 0.0  # augmentation: ... a lower resolution, x 0.5-1, and back (nnU-Net: 0.25)
    gamma: float = 0.0  # augmentation: ... a gamma of 0.7-1.5 (nnU-Net: 0.3)
    num_workers: int = 0  # data-loading threads; 0 = chosen by tf.data
    seed: int = 11  # seed for shuffling, augmentation and initialisation
    train_gpu: list[int] = field(default_factory=lambda: [0])  # GPU ids; 2+ train together (docs/distribute.md)
    plan: bool = True  # plan the settings not given from the data and this machine; false: the defaults above *
    time_budget: float = 0.0  # minutes for the whole run: epochs and evaluation planned to fit; 0 = no budget *
    plan_only: bool = False  # print the plan and the run's estimated time, then exit
    fold: int = -1  # train on fold i's splits (voc_annotation.py --num_folds), into save_dir/fold_i; -1: train, val *


def check_multilabel(config: TrainConfig) -> None:
    """head multilabel: ValueError naming the settings on that take one class a pixel."""
    pieces = ("focal_loss", "lovasz_loss", "weight_map", "cls_weights", "oversample")
    refused = [name for name in pieces if config.head == "multilabel" and getattr(config, name)]
    if refused:
        raise ValueError(
            f"head=multilabel with {', '.join(refused)}: each takes one class a pixel, and a multilabel pixel may "
            "hold several. Its loss is binary cross-entropy per class, with --dice_loss and --tversky_loss: turn the "
            "others off."
        )


def validate_config(config: TrainConfig) -> None:
    """Raises ValueError for settings that cannot work, before anything slow starts."""
    choices = {
        "optimizer_type": ("adam", "sgd"),
        "lr_decay_type": ("cos", "step", "plateau"),
    }
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise ValueError(f"{name}={getattr(config, name)!r}: expected one of {', '.join(allowed)}.")
    check_num_classes(config.num_classes, allow_one=config.head == "multilabel")
    check_model_settings(config.model, config.input_shape, config.backbone)
    check_scale_settings(config.scale_mode, config.image_scale, config.overlap)
    resolve_scale_mode(config.scale_mode, config.model)  # fit is refused for a network with a margin
    if config.cls_weights and len(config.cls_weights) != config.num_classes:
        raise ValueError(
            f"cls_weights has {len(config.cls_weights)} values but num_classes={config.num_classes}: "
            "give one weight per class, or none."
        )
    check_head(config.head, config.num_classes)
    check_multilabel(config)
    if config.tversky_loss:
        check_tversky(config.tversky_alpha, config.tversky_beta)
    if not 0 <= config.oversample < 1 or not all(0 <= c < config.num_classes for c in config.oversample_classes):
        raise ValueError(
            f"oversample={config.oversample}, oversample_classes={config.oversample_classes}: expected a share of "
            f"each batch in 0-1 (nnU-Net's 0.33) and classes from 0 to {config.num_classes - 1}."
        )
    augmentation_of(config).check()
    if config.weight_map:
        weight_map_of(config).check(config.num_classes)
    for name in ("early_stop_patience", "plateau_patience"):
        if getattr(config, name) < 0:
            raise ValueError(
                f"{name}={getattr(config, name)}: expected epochs, 0 or more (early_stop_patience 0: off)."
            )
    if not config.init_lr > 0 or not 0 <= config.min_lr <= config.init_lr:
        raise ValueError(
            f"init_lr={config.init_lr}, min_lr={config.min_lr}: expected 0 < init_lr and 0 <= min_lr <= init_lr "
            "(learning rates at batch size 16, e.g. --init_lr 4e-4 --min_lr 1e-6)."
        )
    if not 0 < config.plateau_factor < 1:
        raise ValueError(f"plateau_factor={config.plateau_factor}: expected a factor between 0 and 1, e.g. 0.5.")
    if config.input_channels < 0:
        raise ValueError(f"input_channels={config.input_channels}: expected 0 (as the images are) or 1 or more.")
    if not 0 <= config.init_epoch < config.unfreeze_epoch:
        raise ValueError(f"init_epoch={config.init_epoch}: expected 0 <= init_epoch < unfreeze_epoch.")
    for name in ("freeze_batch_size", "unfreeze_batch_size", "eval_period", "save_period", "unfreeze_epoch"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name}={getattr(config, name)}: expected 1 or more.")
    if config.freeze_train and not 0 <= config.freeze_epoch <= config.unfreeze_epoch:
        raise ValueError(
            f"freeze_epoch={config.freeze_epoch}, unfreeze_epoch={config.unfreeze_epoch}: the frozen epochs are part "
            "of the total, so expected 0 <= freeze_epoch <= unfreeze_epoch (or freeze_train false)."
        )


def watching(config: TrainConfig) -> bool:
    """Whether early stopping or the plateau acts on the validation metric (then, without a budget, every epoch is
    evaluated unless eval_period is given)."""
    return bool(config.early_stop_patience) or config.lr_decay_type == "plateau"


def check_watch_settings(config: TrainConfig, num_workers: int) -> None:
    """Early stopping and the plateau act on every worker alike; with several workers only the chief computes
    val mIoU, so they must go by val loss."""
    if watching(config) and config.eval_flag and num_workers > 1:
        raise ValueError(
            f"early_stop_patience / lr_decay_type plateau with {num_workers} workers: only the chief computes val "
            "mIoU, so the workers could not stop or lower the learning rate together. Set eval_flag false (they go "
            "by val loss, which every worker computes), or train on one machine."
        )


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


def make_callbacks(config: TrainConfig, val_samples, model, settings: ModelSettings, state, watch):
    """The chief's callbacks, in order: val mIoU (at the images' own size, by the prediction path), loss history,
    the Watch (early stopping, plateau LR), checkpoints (which write the history's files after the epoch's
    weights, and carry the Watch's state), TensorBoard. A resumed run (state: its checkpoint's RunState) continues
    its run folder, history and best value.

    Returns:
        (callbacks, the LossHistory).
    """
    run_dir = run_dir_of(state, config.save_dir) if state else new_run_dir(config.save_dir)
    history = LossHistory(run_dir, state.history if state else ())
    callbacks = [history, watch]
    if config.eval_flag:
        eval_batch = config.unfreeze_batch_size
        path = prediction_path(ClassScores(model, head=config.head), scale_of(config))
        eval_data = build_eval_dataset(val_samples, path.letterbox, eval_batch, config.num_workers, settings.bands)
        num_batches = math.ceil(len(val_samples) / eval_batch)
        colours = value_colours(config.num_classes, config.head)
        images = ValImages(config.tensorboard_images, os.path.join(run_dir, "images"), settings.bands, colours)
        values, multilabel = (
            label_value_count(config.num_classes, config.head),
            multilabel_count(config.num_classes, config.head),
        )
        evaluation = EvalCallback(
            eval_data, num_batches, values, config.eval_period, config.unfreeze_epoch, path, images, multilabel
        )
        callbacks.insert(0, evaluation)
    best, resumed_epoch = (state.best, state.epoch) if state else ({}, 0)
    files = EpochFiles(config.save_dir, settings, config.save_period)
    run_config = {**asdict(config), "resume": ""}
    checkpoints = CheckpointSaver(files, monitor_of(config), run_config, history, best, resumed_epoch, watch)
    callbacks += [checkpoints, keras.callbacks.TensorBoard(history.run_dir, write_graph=False)]
    print(f"Logs: {history.run_dir}; best_epoch_weights chosen by {monitor_of(config)}")
    return callbacks, history


def network_of(config: TrainConfig) -> Network:
    """The network the run trains."""
    return Network(config.model, config.backbone, config.num_classes, tuple(config.input_shape), config.head)


def phase_plan_of(config: TrainConfig) -> PhasePlan:
    """The frozen and unfrozen phases' epochs and batches (fields of the same names)."""
    return PhasePlan(**{name: getattr(config, name) for name in PhasePlan.__dataclass_fields__})


def learning_rates_of(config: TrainConfig) -> LearningRates:
    """The learning rate over the run and the optimizer it drives."""
    return LearningRates(
        init_lr=config.init_lr,
        min_lr=config.min_lr,
        decay_type=config.lr_decay_type,
        total_epochs=config.unfreeze_epoch,
        plateau_factor=config.plateau_factor,
        plateau_patience=config.plateau_patience,
        optimizer_type=config.optimizer_type,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )


def scale_of(config: TrainConfig) -> Scale:
    """How images meet the network (scale_mode resolved)."""
    return Scale(config.scale_mode, config.image_scale, config.overlap)


def pipeline_of(config: TrainConfig, margin: int, bands) -> Pipeline:
    """How the run's batches are made, for a network whose output is `margin` pixels smaller on each side."""
    shape, crop_scale = tuple(config.input_shape), scale_of(config).crop_scale
    augmentation, weight_map = augmentation_of(config), weight_map_of(config)
    return Pipeline(shape, margin, crop_scale, bands, config.num_workers, augmentation, weight_map, config.oversample)


def augmentation_of(config: TrainConfig) -> Augmentation:
    """The augmentation options (fields of the same names), the photometric shares among them."""
    photometric = Photometric(**{name: getattr(config, name) for name in Photometric.__dataclass_fields__})
    named = [name for name in Augmentation.__dataclass_fields__ if name != "photometric"]
    return Augmentation(**{name: getattr(config, name) for name in named}, photometric=photometric)


def loss_of(config: TrainConfig):
    """The loss the settings choose (utils/losses.py's build_loss)."""
    class_weights = config.cls_weights or [1.0] * config.num_classes
    tversky = (config.tversky_alpha, config.tversky_beta) if config.tversky_loss else None
    parts = (config.dice_loss, config.focal_loss, config.head, config.weight_map, tversky, config.lovasz_loss)
    return build_loss(class_weights, *parts)


def weight_map_of(config: TrainConfig):
    """The UNet weight map (None when weight_map is off); its objects default to every class but 0."""
    if not config.weight_map:
        return None
    objects = tuple(config.weight_map_objects) or tuple(range(1, config.num_classes))
    return WeightMap(config.weight_map_w0, config.weight_map_sigma, objects)


def watch_rules_of(config: TrainConfig) -> WatchRules:
    """Early stopping's and the plateau's settings, on the run's monitor."""
    plateau = config.plateau_patience if config.lr_decay_type == "plateau" else 0
    return WatchRules(monitor_of(config), config.early_stop_patience, plateau, config.plateau_factor)


def monitor_of(config: TrainConfig) -> str:
    """What best_epoch_weights, early stopping and the plateau go by: val mIoU, or val loss without evaluation."""
    return "val_miou" if config.eval_flag else "val_loss"


def starting_config(config: TrainConfig):
    """The settings to train with and the checkpoint to resume from: a resumed run's come from its checkpoint.

    Returns:
        (config, resumable checkpoint path or None, its RunState or None).
    """
    if not config.resume:
        if config.fold >= 0:  # each fold into a folder of its own
            config = replace(config, save_dir=os.path.join(config.save_dir, f"fold_{config.fold}"))
        return config, None, None
    checkpoint, state = find_resumable(config.resume)
    save_dir = os.path.dirname(os.path.abspath(checkpoint))
    config = resumed_config(config, state, given_flags(TrainConfig), save_dir)
    print(f"Resuming {checkpoint}: {state.epoch} of {config.unfreeze_epoch} epochs done; the run's settings follow.")
    return config, checkpoint, state


def starting_weights(config: TrainConfig, checkpoint):
    """(weights file or None, where from) the network starts with: the resumable checkpoint's, or model_path's; and
    the config to train with. With plan false, when model_path auto finds no pretrained weights for the encoder
    (offline), the model trains whole from the first epoch (freeze_train false): freezing an untrained encoder would
    only hold the decoder back; an empty model_path is the user's choice, and keeps their phases. With plan true the
    plan decides it (utils/planning/rules.py: plan_start)."""
    if checkpoint:
        return (checkpoint, f"resumable checkpoint {checkpoint}"), config
    weights = resolve_model_path(config.model_path, config.backbone, config.model)
    if weights[0] is None and config.freeze_train and config.model in PRETRAINED_ENCODER and not config.plan:
        if config.model_path == "auto":
            print(
                "Note: the encoder starts from random weights, so it is not frozen: freeze_train false, one phase. "
                "From random weights a higher learning rate trains faster (e.g. --init_lr 8e-3; docs/networks.md)."
            )
            config = replace(config, freeze_train=False)
        else:
            print("Note: model_path is empty, so the frozen phase freezes a random encoder (freeze_train false: not).")
    return weights, config


def build_starting_model(config: TrainConfig, strategy, checkpoint, weights, bands):
    """The network for images of `bands` with its starting weights (reported): (file or None, where from)."""
    weights_path, source = weights
    scope = strategy.scope()
    model = build_with_weights(network_of(config), weights_path, source, complete=False, scope=scope, bands=bands)
    if checkpoint:
        restore_seed_generators(model, checkpoint)  # dropout goes on drawing as in the run that stopped
    return model


def train(config: TrainConfig) -> None:
    """A run, holding its save_dir (utils/training/runs.py: save_dir_lock) from its check to its end."""
    with contextlib.ExitStack() as held:
        run(config, held)


@dataclass
class Setup:
    """A run's settings and devices, before any data is read: the config to train with, the resumable checkpoint
    and its RunState (a resumed run), the tf.distribute strategy, this process's Cluster and the devices in words,
    and the starting weights (file or None, where from)."""

    config: TrainConfig
    checkpoint: str | None
    state: object
    strategy: object
    cluster: object
    placement: str
    weights: tuple


def set_up(config: TrainConfig, held: contextlib.ExitStack) -> Setup:
    """The run's Setup; the chief holds the save_dir (its lock) from here to the run's end."""
    config, checkpoint, state = starting_config(config)  # reads files only: before any TensorFlow op
    strategy, cluster, placement = choose_strategy(config.train_gpu)
    validate_config(config)
    weights, config = starting_weights(config, checkpoint)
    if cluster.is_chief and not config.plan_only:
        # held before anything there is touched: another run's temporaries are not strays
        held.enter_context(save_dir_lock(config.save_dir))
        prepare_save_dir(config.save_dir, continuing=state is not None or config.init_epoch > 0)
    return Setup(config, checkpoint, state, strategy, cluster, placement, weights)


@dataclass(frozen=True)
class Data:
    """The checked dataset: its train and val samples, the train images' Bands, each val image's (height, width) as
    shown upright (what an evaluation's sliding window covers) and the classes each train label holds."""

    train: list
    val: list
    bands: Bands
    val_sizes: list
    holds: list = field(default_factory=list)  # per train sample, the set of class ids its label holds


def read_dataset(config: TrainConfig) -> Data:
    """The checked dataset. A planned batch is chosen to fit the train split; a given one is checked against it."""
    given_batch = not config.plan or {"freeze_batch_size", "unfreeze_batch_size"} & given_settings(config)
    min_train = max(phase_plan_of(config).batch_sizes()) if given_batch else 1
    splits = Splits.of_fold(config.fold)
    check_packed_head(os.path.join(config.vocdevkit_path, "VOC2007"), config.head, config.num_classes)
    values = label_value_count(config.num_classes, config.head)  # a multilabel label's values are sets of classes
    checked = check_dataset(config.vocdevkit_path, values, min_train, min_val=1, splits=splits)
    train_samples, val_samples = (split_samples(config.vocdevkit_path, split) for split in (splits.train, splits.val))
    print(f"Data: {len(train_samples)} train, {len(val_samples)} val samples in {config.vocdevkit_path}")
    bands = survey([image for image, _ in train_samples], config.input_channels, checked.kinds)
    headers, holds = checked.headers, [checked.judgement.classes_held(label) for _, label in train_samples]
    return Data(train_samples, val_samples, bands, [headers[image].size[::-1] for image, _ in val_samples], holds)


def oversampled_of(config: TrainConfig, data: Data, names: list) -> list:
    """The train samples whose labels hold an oversampled class (oversample_classes; none given: every class but the
    background), said in a line; ValueError when oversample is on and no train label holds one."""
    if not config.oversample:
        return []
    classes = set(config.oversample_classes or range(1, config.num_classes))
    chosen = [sample for sample, held in zip(data.train, data.holds) if held & classes]
    named = ", ".join(f"{c} ({names[c]})" for c in sorted(classes))
    if not chosen:
        raise ValueError(
            f"oversample={config.oversample}: no train label holds class {named}. Choose classes the train split has "
            "(--oversample_classes), or --oversample 0."
        )
    forced = oversampled_count(config.oversample, config.unfreeze_batch_size)
    print(
        f"Oversampling: {forced} of each batch's {config.unfreeze_batch_size} images drawn from the {len(chosen)} of "
        f"{len(data.train)} train images that hold class {named}"
    )
    return chosen


def planned_config(config: TrainConfig, setup: Setup, data: Data, names: list) -> tuple:
    """(config, Fitted or None): the config with the plan's settings where the user gave none (utils/planning/):
    the plan is printed with its reasons, the run's estimated time, and plan.json in save_dir; and, when a budget
    fitted the epochs, the fit, to fit them again after the frozen phase (refit_after_frozen). A resumed run keeps
    its plan; plan false keeps the defaults."""
    if not config.plan or setup.state is not None:
        return config, None
    fingerprint = train_fingerprint(config.vocdevkit_path, Splits.of_fold(config.fold).train)
    names = set_names(names) if config.head == "multilabel" and names else names  # its values: sets of classes
    print("Fingerprint of the train split:\n" + describe_fingerprint(fingerprint, names))
    machine, given = this_machine(), {name: getattr(config, name) for name in given_settings(config)}
    pretrained = setup.weights[0] is not None and config.model in PRETRAINED_ENCODER
    plan = make_plan(fingerprint, machine, network_of(config), pretrained, names, given)
    config = replace(config, **plan.settings())
    frozen_batch = config.freeze_batch_size if config.freeze_train and config.model in PRETRAINED_ENCODER else 0
    speed = measure_apart(network_of(config), config.unfreeze_batch_size, data.bands, config.save_dir, frozen_batch)
    cost = estimate(speed, workload_of(config, data))
    budget, ceiling = budget_of(config, set(given))
    fitted = None
    if budget:
        if setup.cluster.count > 1:
            raise ValueError(
                f"time_budget with {setup.cluster.count} workers: each would measure its own speed and plan its own "
                "epochs. Give --unfreeze_epoch (and --eval_period) instead, the same on every worker."
            )
        most = config.unfreeze_epoch if ceiling else 0
        left = budget * 60 - (time.time() - STARTED)
        plan.add(fit_budget(cost, left, budget, most, frozen_phase(config, set(given))))
        config = replace(config, time_budget=budget)
        if "unfreeze_epoch" not in given:
            fitted = Fitted(cost, budget, plan.settings()["eval_period"], most)
    elif "eval_period" not in given and not watching(config):  # evaluation a small share of the run, budget or not
        plan.add({"eval_period": plan_eval_period(cost)})
    epochs = plan.settings()["unfreeze_epoch"]  # fitted, planned or given: the phases and the jitter follow it
    plan.add(phase_lengths(epochs, plan.settings()["freeze_train"]))
    plan.add({"jitter": plan_jitter(epochs)})
    config = replace(config, **plan.settings())
    print(f"Plan for {machine.describe()}; measured: {speed.describe(config.unfreeze_batch_size)}")
    print(plan.describe())
    print(describe_time(cost, config, time.time() - STARTED))
    if not config.plan_only and setup.cluster.is_chief:
        save_plan(plan, config.save_dir)
    return config, fitted


def settled_config(config: TrainConfig, setup: Setup, data: Data, names: list) -> tuple:
    """(config, Fitted or None): the settings the run trains with, planned (planned_config), resolved and checked,
    then printed; and the budget's fit, if it fitted the epochs."""
    config, fitted = planned_config(config, setup, data, names)
    config = replace(config, scale_mode=resolve_scale_mode(config.scale_mode, config.model))
    validate_config(config)  # the planned settings too
    check_count(data.train, max(phase_plan_of(config).batch_sizes()), "the train split (train.txt)")
    for batch_size in phase_plan_of(config).batch_sizes():
        check_global_batch(batch_size, setup.strategy)
    check_watch_settings(config, setup.cluster.count)
    print("Config:\n" + format_config(config))
    return config, fitted


def workload_of(config: TrainConfig, data: Data) -> Workload:
    """What the run computes: its images, batch and (slide) the windows of a val image, on average over the val
    images: large images have many more than the median one (Dubai's val tiles at 0.75: 27 against 12)."""
    windows = 1.0
    if scale_of(config).slide and data.val_sizes:
        output = [side - 2 * model_margin(config.model) for side in config.input_shape]
        counts = [
            math.prod(len(window_starts(round(length * config.image_scale), o, config.overlap)) for length, o in pair)
            for pair in (zip(size, output) for size in data.val_sizes)
        ]
        windows = sum(counts) / len(counts)
    return Workload(
        len(data.train),
        len(data.val),
        config.unfreeze_batch_size,
        windows,
        len(calibration_samples(data.train)),
        config.freeze_batch_size,
        config.eval_flag,
    )


def frozen_phase(config: TrainConfig, given: set):
    """epochs -> how many of a run that long train with the encoder frozen: the given freeze_epoch, or the plan's
    (utils/planning/budget.py: frozen_epochs); none without freeze_train."""
    if not config.freeze_train:
        return lambda epochs: 0
    return (lambda epochs: config.freeze_epoch) if "freeze_epoch" in given else frozen_epochs


def budget_of(config: TrainConfig, given: set) -> tuple:
    """(minutes, ceiling): the run's time budget, and whether it only caps the planned epochs. A budget given fills
    itself with epochs; the demo's (DEMO_MINUTES, when the run trains on the demo data with none given) keeps the
    planned epochs and shortens them on a machine too slow for them."""
    if config.time_budget or not is_demo_dataset(config.vocdevkit_path) or "unfreeze_epoch" in given:
        return config.time_budget, False
    return DEMO_MINUTES, True


def describe_time(cost: Estimate, config: TrainConfig, elapsed: float) -> str:
    """The run's estimated time, against the budget when there is one."""
    frozen = config.freeze_epoch if config.freeze_train else 0
    minutes = (elapsed + cost.seconds(config.unfreeze_epoch, config.eval_period, frozen)) / 60
    evaluation = f"val mIoU and the val loss {cost.evaluation:.1f} s every {config.eval_period} epochs, "
    line = (
        f"Estimated time: {minutes:.1f} min ({config.unfreeze_epoch} epochs of about {cost.epoch:.1f} s, "
        f"{evaluation if cost.evaluation else ''}{elapsed:.0f} s so far)"
    )
    if config.time_budget and minutes > config.time_budget:
        line += f": over the time_budget of {config.time_budget:g} min, with the settings given"
    return line


def run(config: TrainConfig, held: contextlib.ExitStack) -> None:
    timeline = Timeline()  # where the run's time goes: printed at the end, and timing.json in the run folder
    with timeline.span("settings and devices"):
        setup = set_up(config, held)
    config, cluster, state = setup.config, setup.cluster, setup.state
    with timeline.span("demo data"):
        ensure_demo_data(config.vocdevkit_path)
    with timeline.span("dataset check"):
        data = read_dataset(config)
    train_samples, val_samples, bands = data.train, data.val, data.bands
    print(f"Images: {bands.describe()}")
    print(f"Devices: {setup.placement}")
    print(set_precision(config.precision))
    names = class_names_for(config)  # read once: the plan's tables and the checkpoints name the classes alike
    with timeline.span("plan"):
        config, fitted = settled_config(config, setup, data, names)
    oversampled = oversampled_of(config, data, names)  # as given, or as planned
    if config.plan_only:
        print("plan_only: nothing was trained.")
        return
    keras.utils.set_random_seed(config.seed)
    with timeline.span("model and weights"):
        model = build_starting_model(config, setup.strategy, setup.checkpoint, setup.weights, bands)
    if config.freeze_train and config.model not in PRETRAINED_ENCODER:
        print(f"Note: model={config.model} has no pretrained encoder; the freeze phase trains the whole network.")
    print(describe_scale(scale_of(config), config.input_shape, output_margin(model)))
    settings = settings_for(network_of(config), model_variant(model), names, bands, scale_of(config))

    loss = loss_of(config)
    watch = Watch(watch_rules_of(config), state.watch if state else None)
    callbacks, history = run_callbacks(config, val_samples, model, settings, setup, watch)
    start_epoch = state.epoch if state else config.init_epoch
    shard = Shard(cluster.index, cluster.count)
    work = Run(
        phase_plan_of(config),
        learning_rates_of(config),
        loss,
        train_samples,
        val_samples,
        pipeline_of(config, output_margin(model), bands),
        config.seed,
        start_epoch,
        setup.checkpoint,
        shard,
        timeline,
        config.eval_period if config.eval_flag else 1,  # without val mIoU the val loss is the monitor: every epoch
        oversampled,
    )
    refit = None
    if fitted and cluster.is_chief:  # a budget's epochs, fitted again after the frozen phase
        refit = functools.partial(refit_after_frozen, fitted=fitted, save_dir=config.save_dir, callbacks=callbacks)
    started = time.time()
    try:
        with setup.strategy.scope():
            work = train_phases(model, work, watch, callbacks, refit)
    except KeyboardInterrupt:
        if cluster.is_chief:
            report_interrupt(model, config, settings, history.rows[-1]["epoch"] if history.rows else start_epoch)
        sys.exit(130)
    report_end(model, work, config, cluster, watch, history, started)


def run_callbacks(config: TrainConfig, val_samples, model, settings: ModelSettings, setup: Setup, watch):
    """The run's callbacks and its LossHistory (None off the chief). Only the chief evaluates and writes logs/;
    the other workers train and write nothing (their Watch goes by val_loss, which every worker computes alike:
    check_watch_settings)."""
    guard = NonFiniteGuard(keras.mixed_precision.global_policy().name, config.init_lr, config.save_dir)
    if not setup.cluster.is_chief:
        return [guard, watch], None
    callbacks, history = make_callbacks(config, val_samples, model, settings, setup.state, watch)
    return [guard, *callbacks], history


def train_phases(model, run: Run, watch, callbacks: list, refit=None) -> Run:
    """The run's phases from where it starts, each fitted in turn (utils/phases.py); refit(run, frozen epochs, their
    steps' seconds) -> Run, when given, fits the epochs again after a frozen phase that this process trained from the
    run's start. Returns the Run as it ended."""
    for frozen in (True, False):  # planned again after the frozen phase: early stopping may have ended it
        phases = run.plan.phases(watch.state.unfrozen_from)
        todo = [p for p in phases if p.frozen == frozen and p.end_epoch > run.start_epoch]
        steps_seconds = 0.0
        for phase in todo:
            watch.start_phase(phase, phase is phases[-1], run.rates.for_batch(phase.batch_size)[1])
            steps_seconds += fit_phase(model, run, phase, callbacks)
        if watch.state.stopped:
            break
        unfrozen_next = todo and todo[-1].end_epoch < run.plan.unfreeze_epoch
        if frozen and unfrozen_next and refit and run.start_epoch == 0:
            run = refit(run, todo[-1].end_epoch, steps_seconds)
    return run


def refit_after_frozen(run: Run, frozen: int, seconds: float, fitted: Fitted, save_dir: str, callbacks: list) -> Run:
    """The run with its epochs fitted again after its frozen phase's steps took `seconds` (utils/planning/budget.py:
    refit_epochs). The unfrozen phase, the learning-rate schedule and the planned jitter follow them; so do val mIoU's
    last epoch, the settings the checkpoints record (what --resume continues) and plan.json."""
    epochs, scale = refit_epochs(fitted, frozen, seconds, fitted.minutes * 60 - (time.time() - STARTED))
    print(
        f"Budget: the frozen phase's steps took {seconds:.0f} s, {scale:.2f} times their estimate: {epochs} epochs "
        f"fit the time_budget of {fitted.minutes:g} min (planned: {run.plan.unfreeze_epoch})"
    )
    if epochs == run.plan.unfreeze_epoch:
        return run
    plan = load_plan(save_dir)  # the given settings win, as in the plan
    why = f"fitted again after the frozen phase (its steps {scale:.2f} times their estimate)"
    plan.add({"unfreeze_epoch": Planned(epochs, why), "jitter": plan_jitter(epochs)})
    save_plan(plan, save_dir)
    jitter = plan.settings()["jitter"]
    for callback in callbacks:
        if isinstance(callback, EvalCallback):
            callback.total_epochs = epochs
        if isinstance(callback, CheckpointSaver):
            callback.config.update(unfreeze_epoch=epochs, jitter=jitter)
    augmentation = replace(run.pipeline.augmentation, jitter=jitter)
    return replace(
        run,
        plan=replace(run.plan, unfreeze_epoch=epochs),
        rates=replace(run.rates, total_epochs=epochs),
        pipeline=replace(run.pipeline, augmentation=augmentation),
    )


def report_end(model, run: Run, config: TrainConfig, cluster, watch, history, started: float) -> None:
    """What the run did, in its time budget if it had one, and where its time went (timing.json in the run folder,
    on the chief)."""
    if cluster.count > 1:
        print(f"Worker {cluster.index}: weights digest {weights_digest(model)} (the same on every worker)")
    where = f"Weights in {config.save_dir}/" if cluster.is_chief else "The chief writes the weights."
    last = watch.state.stopped or run.plan.unfreeze_epoch
    print(f"Done: epochs {run.start_epoch + 1}-{last} in {(time.time() - started) / 60:.1f} min. {where}")
    if config.time_budget and not run.start_epoch:
        whole = (time.time() - STARTED) / 60
        within = "within" if whole <= config.time_budget else "over"
        print(f"The run took {whole:.2f} min from its start, {within} its time_budget of {config.time_budget:g} min.")
    print(run.timeline.format())
    if cluster.is_chief:
        run.timeline.write(os.path.join(history.run_dir, "timing.json"))


def class_names_for(config: TrainConfig) -> list:
    """The dataset's class names for the checkpoints, when they fit num_classes (else none: generic names)."""
    names = dataset_class_names(config.vocdevkit_path)
    if names and len(names) != config.num_classes:
        print(
            f"Note: {len(names)} class names in {config.vocdevkit_path} but num_classes={config.num_classes}: "
            "the checkpoints record none."
        )
        return []
    return names


def report_interrupt(model, config: TrainConfig, settings: ModelSettings, done: int) -> None:
    """Ctrl-C: the complete checkpoints stay as they are; the unfinished epoch's weights go to a file of their own,
    and the command that resumes from the last complete epoch is printed (quoted for a shell)."""
    path = os.path.join(config.save_dir, "interrupted_weights.weights.h5")
    save_weights(model, path, settings, done)
    print(f"\nInterrupted during epoch {done + 1}: its unfinished weights are in {path}.")
    if resumable_checkpoints(config.save_dir):
        command = shlex.join(["python", sys.argv[0], "--resume", config.save_dir])
        print(f"The checkpoints of epoch {done} are complete. Resume with:\n  {command}")
    else:
        print("No epoch was complete: nothing to resume; run the same command again to start over.")


if __name__ == "__main__":
    run_main(train, TrainConfig, __doc__)
