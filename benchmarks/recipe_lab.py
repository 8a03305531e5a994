"""A lab for training recipes: how fast a recipe learns the demo (val mIoU after each epoch) and what its steps cost.

    $ python benchmarks/recipe_lab.py --recipes base dec_lr=10 --epochs 8
    $ ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/recipe_lab.py --precision fp32 --recipes ...

Each recipe is a name with `key=value` changes to the base recipe (Recipe's fields below), e.g.
`lr=1e-3,decoder_bn=1`. The data are the demo's (written to --vocdevkit_path when absent), held in memory with the
horizontal flip as the only augmentation; the network is train.py's VGG16-UNet from the HED weights; the loss
train.py's (CE + Dice). The step runs in a tf.function of its own, so that the encoder and the decoder can take
their own learning rates (two Adams) and the encoder can stay frozen for a number of epochs. It is a screen: the
recipes it finds are then confirmed with train.py itself (benchmarks/train_quality.py).
"""

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402
from PIL import Image  # noqa: E402

import nets.unet  # noqa: E402
import utils.augmentation.draws as draws  # noqa: E402
from nets.encoders import ENCODER_PREFIXES  # noqa: E402
from nets.models import Network  # noqa: E402
from utils.augmentation.options import Augmentation  # noqa: E402
from utils.augmentation.pixels import HSV_JITTER  # noqa: E402
from utils.dataloader import Pipeline, build_train_dataset  # noqa: E402
from utils.dataset.demo import make_demo_dataset  # noqa: E402
from utils.losses import build_loss  # noqa: E402
from utils.metrics import confusion_matrix, per_class_iou  # noqa: E402
from utils.precision import set_precision  # noqa: E402
from utils.weights.building import build_with_weights  # noqa: E402
from utils.weights.sources import resolve_model_path  # noqa: E402


@dataclasses.dataclass
class Recipe:
    lr: float = 1e-4  # the decoder's peak rate (Adam)
    enc_lr: float = -1.0  # the encoder's peak rate; -1: the decoder's
    batch: int = 4
    frozen: int = 0  # epochs with the encoder frozen
    warmup: float = 1.0  # epochs of linear warm-up from lr / 10
    decoder_bn: int = 0  # BatchNormalization after each decoder convolution
    min_lr: float = 1e-6
    side: int = 64  # the network's input side (the images are resized to it; val mIoU at the label's size)
    aug: int = 1  # 1: train.py's augmentation (utils/augmentation/draws.py); 0: the horizontal flip only
    scale_low: float = 0.25  # aug 1: the fit scale range (draws.SCALE_RANGE)
    scale_high: float = 2.0
    aspect: float = 0.3  # aug 1: the aspect jitter (draws.ASPECT_JITTER)
    jitter: float = 1.0  # aug 1: the share of samples jittered (Augmentation.jitter)
    hsv: float = 1.0  # aug 1: the colour jitter's strength, times draws.HSV_JITTER


def parse_recipe(text: str) -> tuple[str, Recipe]:
    name, _, changes = text.partition(":")
    recipe = Recipe()
    for change in filter(None, (changes or name).split(",")):
        if "=" not in change:
            continue
        key, value = change.split("=")
        setattr(recipe, key, type(getattr(recipe, key))(float(value)) if key != "lr" else float(value))
    return name, recipe


def load_split(vocdevkit_path: str, split: str):
    voc = os.path.join(vocdevkit_path, "VOC2007")
    with open(os.path.join(voc, "ImageSets", "Segmentation", f"{split}.txt")) as f:
        ids = f.read().split()
    samples = [
        (os.path.join(voc, "JPEGImages", f"{i}.jpg"), os.path.join(voc, "SegmentationClass", f"{i}.png")) for i in ids
    ]
    images = np.stack([np.asarray(Image.open(os.path.join(voc, "JPEGImages", f"{i}.jpg"))) for i in ids])
    labels = np.stack([np.asarray(Image.open(os.path.join(voc, "SegmentationClass", f"{i}.png"))) for i in ids])
    return images.astype(np.float32), labels.astype(np.int32), samples


def decoder_stage_with_bn(x, skip, filters, upsampling, name):
    x = layers.UpSampling2D(2, interpolation=upsampling, name=f"{name}_upsample")(x)
    if skip is not None:
        x = layers.Concatenate(name=f"{name}_concat")([skip, x])
    for j in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{j + 1}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{j + 1}")(x)
        x = layers.ReLU(name=f"{name}_relu{j + 1}")(x)
    return x


def build(recipe: Recipe, num_classes: int):
    original = nets.unet.apply_decoder_stage
    if recipe.decoder_bn:
        nets.unet.apply_decoder_stage = decoder_stage_with_bn
    try:
        path, source = resolve_model_path("hed", "vgg")
        network = Network("unet", "vgg", num_classes, (recipe.side, recipe.side))
        return build_with_weights(network, path, source, complete=False)
    finally:
        nets.unet.apply_decoder_stage = original


def rate(epoch: float, recipe: Recipe, peak: float, total: int) -> float:
    if epoch < recipe.warmup:
        return peak / 10 + (peak - peak / 10) * epoch / recipe.warmup
    progress = min((epoch - recipe.warmup) / max(total - recipe.warmup, 1e-6), 1.0)
    return recipe.min_lr + 0.5 * (peak - recipe.min_lr) * (1 + np.cos(np.pi * progress))


def run_recipe(name: str, recipe: Recipe, data, epochs: int, seed: int, num_classes: int) -> dict:
    keras.utils.set_random_seed(seed)
    (train_x, train_y, samples), (val_x, val_y, _) = data
    draws.SCALE_RANGE, draws.ASPECT_JITTER = (recipe.scale_low, recipe.scale_high), recipe.aspect
    draws.HSV_JITTER = tuple(recipe.hsv * j for j in HSV_JITTER)
    pipeline = Pipeline((64, 64), augmentation=Augmentation(jitter=recipe.jitter))
    batches = iter(build_train_dataset(samples, pipeline, recipe.batch, seed)) if recipe.aug else None
    model = build(recipe, num_classes)
    encoder = [v for layer in model.layers if layer.name.startswith(ENCODER_PREFIXES) for v in layer.trainable_weights]
    encoder_ids = {id(v) for v in encoder}
    decoder = [v for v in model.trainable_weights if id(v) not in encoder_ids]
    enc_peak = recipe.enc_lr if recipe.enc_lr > 0 else recipe.lr
    enc_opt, dec_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
    enc_opt.build(encoder)
    dec_opt.build(decoder)
    loss_fn = build_loss([1.0] * num_classes, dice_loss=True)
    side = recipe.side

    def step_fn(x, y, train_encoder):
        with tf.GradientTape() as tape:
            probabilities = model(x, training=True)
            if side != y.shape[1]:
                probabilities = tf.image.resize(probabilities, y.shape[1:3])
            loss = loss_fn(y, probabilities)
            scaled = loss
        variables = (encoder + decoder) if train_encoder else decoder
        grads = tape.gradient(scaled, variables)
        if train_encoder:
            enc_opt.apply(grads[: len(encoder)], encoder)
            dec_opt.apply(grads[len(encoder) :], decoder)
        else:
            dec_opt.apply(grads, decoder)
        return loss

    frozen_step = tf.function(lambda x, y: step_fn(x, y, False), jit_compile=False)
    full_step = tf.function(lambda x, y: step_fn(x, y, True), jit_compile=False)
    predict = tf.function(lambda x: model(x, training=False))
    rng = np.random.default_rng(seed)
    steps = len(train_x) // recipe.batch
    curve, step_seconds = [], {"frozen": [], "full": []}
    started = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(train_x))
        kind = "frozen" if epoch < recipe.frozen else "full"
        step = frozen_step if kind == "frozen" else full_step
        losses = []
        for s in range(steps):
            fraction = epoch + s / steps
            dec_opt.learning_rate.assign(rate(fraction, recipe, recipe.lr, epochs))
            enc_opt.learning_rate.assign(rate(fraction, recipe, enc_peak, epochs))
            if batches is not None:
                x, y = next(batches)
                x, y = tf.cast(x, tf.float32), tf.cast(y, tf.int32)
            else:
                batch = order[s * recipe.batch : (s + 1) * recipe.batch]
                x, y = train_x[batch], train_y[batch]
                flip = rng.random(len(batch)) < 0.5
                x[flip], y[flip] = x[flip, :, ::-1], y[flip, :, ::-1]
            if side != x.shape[1]:
                x = tf.image.resize(x, (side, side), antialias=True)
            t = time.perf_counter()
            losses.append(float(step(x, y)))
            step_seconds[kind].append(time.perf_counter() - t)
        matrix = np.zeros((num_classes, num_classes), np.int64)
        for i in range(0, len(val_x), 16):
            x = val_x[i : i + 16]
            if side != x.shape[1]:
                x = tf.image.resize(x, (side, side), antialias=True)
            p = predict(x)
            if side != val_y.shape[1]:
                p = tf.image.resize(p, val_y.shape[1:3])
            matrix += confusion_matrix(val_y[i : i + 16], np.argmax(np.asarray(p), -1), num_classes)
        miou = float(np.nanmean(per_class_iou(matrix))) * 100
        curve.append(round(miou, 2))
        print(
            f"{name} epoch {epoch + 1}/{epochs} [{kind}] loss {np.mean(losses):.3f} val mIoU {miou:.2f} %", flush=True
        )
    median = {k: float(np.median(v[1:])) if len(v) > 1 else None for k, v in step_seconds.items()}
    return {
        "name": name,
        "recipe": dataclasses.asdict(recipe),
        "seed": seed,
        "curve": curve,
        "median_step_s": median,
        "seconds": time.perf_counter() - started,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=["base"])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[11])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--vocdevkit_path", default="/tmp/lab/VOCdevkit")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    print(set_precision(args.precision))
    if not os.path.isdir(os.path.join(args.vocdevkit_path, "VOC2007")):
        make_demo_dataset(args.vocdevkit_path)
    data = load_split(args.vocdevkit_path, "train"), load_split(args.vocdevkit_path, "val")
    results = []
    for seed in args.seeds:
        for text in args.recipes:
            name, recipe = parse_recipe(text)
            results.append(run_recipe(name, recipe, data, args.epochs, seed, 4))
            r = results[-1]
            print(json.dumps({k: r[k] for k in ("name", "seed", "curve", "median_step_s", "seconds")}), flush=True)
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
