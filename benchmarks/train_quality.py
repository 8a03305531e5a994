"""Wall time and val mIoU of the reference training runs, each run as a user runs train.py.

    $ python benchmarks/train_quality.py                      # all cases
    $ python benchmarks/train_quality.py --cases demo --json demo.json
    $ python benchmarks/train_quality.py --cases membrane membrane_slide --seeds 11 1 2   # mean of 3 seeds

With --seeds, each case runs once per seed (train.py --seed) and the table ends with each case's mean: on a
val split of a few images (membrane's 5) one seed against another moves the mIoU by about a point.

Cases:
    demo             python train.py with the committed defaults, from an empty dataset folder (the demo
                     data is written as on a fresh clone; its time is included).
    membrane         the ISBI 2012 membrane set (../shared/datasets/membrane), 256x256, 10 epochs, batch 2,
                     default encoder weights; skipped when the dataset is absent.
    membrane_random  the same from random initialisation (--model_path "").
    membrane_defaults the membrane set with --plan false: the settings' defaults (64x64 fit, 24 epochs).
    membrane_fit64   the defaults' 64x64 fit with the rest planned: with a budget, its epochs fill it.
    membrane_hand    the membrane case's hand settings (256x256, batch 2, nothing frozen) with its epochs left to the
                     plan: with --train_flags "--time_budget 20", as many as fit 20 minutes.
    membrane_planned the membrane set with only --vocdevkit_path and --num_classes: the plan sets the rest (give a
                     budget with --train_flags "--time_budget 20").
    membrane_fp32    the membrane case in fp32: its mIoU against the membrane case's (mixed precision where
                     `precision auto` picks it) says what mixed precision costs in accuracy.
    membrane_fcn8, membrane_unet_small
                     the membrane case with --model fcn8 / unet_small (same schedule, 256x256).
    membrane_unet_mobilenetv2, membrane_deeplabv3plus_resnet50, membrane_deeplabv3plus_vgg
                     the membrane case with --backbone mobilenetv2 / --model deeplabv3plus (same schedule, 256x256).
                     Offline their encoders start at random (no ImageNet file), as unet_small does; deeplabv3plus on
                     vgg starts from the HED weights, as the membrane case.
    membrane_unet_mobilenetv2_lr, membrane_deeplabv3plus_resnet50_lr
                     the same two from random with a learning rate for training from scratch (SCRATCH_LR: 1e-3
                     at batch 2 instead of the default's 1e-4).
    membrane_unet_classic
                     the membrane case with --model unet_classic at 444x444 in, 260x260 out (its valid size
                     nearest 256 out), predicting the val images by overlap-tile.
    membrane_slide   the membrane case in scale_mode slide: 256x256 crops of the 512x512 images, val mIoU by the
                     sliding window at full resolution (same schedule, same number of steps).
    membrane_grey    the membrane case with --input_channels 1: its (grey) images as one band, the first
                     convolution's pretrained RGB kernels summed.
    membrane16       the membrane images written as 16-bit grey PNGs in a narrow range (value x 16 + 1000, as
                     microscopes write them) into a temporary tree, same schedule: compare with membrane_grey.
    membrane_40, membrane_40_recipe, membrane_unet_classic_40, membrane_unet_classic_40_recipe
                     the membrane and membrane_unet_classic cases at 40 epochs, without and with the UNet paper's
                     recipe (PAPER_RECIPE: elastic deformation, alpha 10 px, and the weight map, w0 10, sigma 5,
                     the cells (class 0) as the objects).
    membrane_sigmoid the membrane case with --head sigmoid (one output, binary cross-entropy + the foreground's
                     Dice). With --sweep, get_miou.py then scores thresholds on the val split for each 2-class case.
    membrane_folds   the membrane case on 3 folds of its train split (give --train_flags "--fold i"; --keep the runs
                     for benchmarks/ensemble_quality.py, which scores them and their ensemble on the val split).
    demo_defects     the demo with rare defects (make_demo_dataset defects=0.15: a 5th class, spots of 5-9 px, in 15 %
                     of the images, 0.3 % of the pixels), 12 epochs, the rest planned: for the rare-class pieces.
    demo_4band, demo_4band_rgb
                     the demo with the demo generator's bands variant (16-bit TIFFs): ellipses are drawn in a 4th
                     band only, the other shapes in R, G and B only; trained on all 4 bands or on R, G, B alone (the
                     same images), the ellipse class's IoU says whether the network sees the 4th band.
    dubai_planned    the Dubai aerial set (../shared/datasets/dubai: 58 train / 14 val tiles up to 2149x2062, five
                     classes and an ignored one) with only --vocdevkit_path and --num_classes: the plan sets the rest.
    dubai_defaults   the same with --plan false: the settings' defaults (64x64 fit, 24 epochs), planned by nobody.
    dubai_fit64      the defaults' 64x64 fit with the rest planned: with a budget, its epochs fill it.
    large_fit, large_slide
                     the large-image demo (utils/dataset/demo.py, large: 120 images of 1024x1024, 40-100 shapes of
                     10-40 pixels each), 256x256 input, 20 epochs of batch 4 (480 steps), scale_mode fit against
                     slide; written to benchmarks/large_demo/ once (seeded) and reused.
"""

import argparse
import csv
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils.dataset.demo import make_demo_dataset  # noqa: E402 (after the path to the repository is set)
from utils.dataset.folds import make_folds  # noqa: E402
from utils.files.images import index_images, read_split  # noqa: E402

MEMBRANE = os.path.join(ROOT, "..", "shared", "datasets", "membrane")
DUBAI = os.path.join(ROOT, "..", "shared", "datasets", "dubai")
DUBAI_ARGS = ["--vocdevkit_path", DUBAI, "--num_classes", "5"]
MEMBRANE_ARGS = ["--vocdevkit_path", MEMBRANE, "--num_classes", "2", "--input_shape", "256", "256"]
MEMBRANE_ARGS += ["--freeze_train", "false", "--unfreeze_epoch", "10", "--unfreeze_batch_size", "2"]
MEMBRANE_40 = [*MEMBRANE_ARGS, "--unfreeze_epoch", "40"]  # the later flag wins
DEEPLAB_RESNET50 = ["--model", "deeplabv3plus", "--backbone", "resnet50"]
SCRATCH_LR = ["--init_lr", "8e-3"]  # 1e-3 at batch 2 (Adam's ceiling): a learning rate for training from scratch
PAPER_RECIPE = ["--elastic_alpha", "10", "--weight_map", "--weight_map_objects", "0"]
CLASSIC = ["--model", "unet_classic", "--input_shape", "444", "444"]
SWEEP = ["0.3", "0.35", "0.4", "0.45", "0.5", "0.55", "0.6", "0.65", "0.7"]
LARGE_DEMO = os.path.join(ROOT, "benchmarks", "large_demo")
LARGE_ARGS = ["--num_classes", "4", "--input_shape", "256", "256", "--freeze_epoch", "3", "--unfreeze_epoch", "20"]
LARGE_ARGS += ["--freeze_batch_size", "4", "--unfreeze_batch_size", "4", "--eval_period", "5"]


def large_demo(scale_mode: str) -> list:
    """train.py's flags for a large-image case; the dataset is written on first use."""
    if not os.path.isdir(os.path.join(LARGE_DEMO, "VOC2007")):
        make_demo_dataset(LARGE_DEMO, num_images=120, size=1024, seed=0, large=True)
    return ["--vocdevkit_path", LARGE_DEMO, *LARGE_ARGS, "--scale_mode", scale_mode]


def membrane16(work: str) -> list:
    """train.py's flags for the membrane case on its images written as 16-bit grey (value x 16 + 1000)."""
    voc, source = os.path.join(work, "membrane16", "VOC2007"), os.path.join(MEMBRANE, "VOC2007")
    os.makedirs(os.path.join(voc, "JPEGImages"))
    for sample_id, path in index_images(os.path.join(source, "JPEGImages")).items():
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L")).astype(np.uint16)
        Image.fromarray(grey * 16 + 1000).save(os.path.join(voc, "JPEGImages", f"{sample_id}.png"))
    for folder in ("SegmentationClass", "ImageSets"):
        shutil.copytree(os.path.join(source, folder), os.path.join(voc, folder))
    return ["--vocdevkit_path", os.path.dirname(voc), *MEMBRANE_ARGS[2:]]  # MEMBRANE_ARGS' other flags


def membrane_folds(work: str) -> list:
    """train.py's flags for the membrane case on a copy of its split files with 3 folds of its train split
    (make_folds, seed 0; the images linked, not copied): give --fold i in --train_flags. The val split stays out of
    every fold, so the folds' ensemble is scored on it (benchmarks/ensemble_quality.py)."""
    voc, source = os.path.join(work, "membrane_folds", "VOC2007"), os.path.join(MEMBRANE, "VOC2007")
    os.makedirs(os.path.join(voc, "ImageSets", "Segmentation"))
    for folder in ("JPEGImages", "SegmentationClass"):
        os.symlink(os.path.abspath(os.path.join(source, folder)), os.path.join(voc, folder))
    splits = os.path.join(source, "ImageSets", "Segmentation")
    for name in ("train", "val", "trainval"):
        shutil.copy(os.path.join(splits, f"{name}.txt"), os.path.join(voc, "ImageSets", "Segmentation"))
    for name, ids in make_folds(read_split(os.path.join(splits, "train.txt")), 3, seed=0).items():
        with open(os.path.join(voc, "ImageSets", "Segmentation", f"{name}.txt"), "w") as f:
            f.write("\n".join(ids) + "\n")
    return ["--vocdevkit_path", os.path.dirname(voc), *MEMBRANE_ARGS[2:]]


def demo_defects(work: str) -> list:
    """train.py's flags for the demo with rare defects (utils/dataset/demo.py: a 5th class of small spots in 15 % of
    the images), 12 epochs given, the rest planned."""
    make_demo_dataset(os.path.join(work, "VOCdevkit"), defects=0.15)
    return ["--vocdevkit_path", os.path.join(work, "VOCdevkit"), "--num_classes", "5", "--unfreeze_epoch", "12"]


def demo_bands(work: str, bands: int) -> list:
    """train.py's flags for the demo on the generator's bands variant (4 bands, or their R, G, B)."""
    make_demo_dataset(os.path.join(work, "VOCdevkit"), bands=bands)
    return ["--vocdevkit_path", os.path.join(work, "VOCdevkit")]


CASES = {
    "demo": lambda work: ["--vocdevkit_path", os.path.join(work, "VOCdevkit")],
    "membrane": lambda work: MEMBRANE_ARGS,
    "membrane_planned": lambda work: MEMBRANE_ARGS[:4],  # the dataset and the classes: the plan sets the rest
    "membrane_defaults": lambda work: [*MEMBRANE_ARGS[:4], "--plan", "false"],
    "membrane_fit64": lambda work: [*MEMBRANE_ARGS[:4], "--input_shape", "64", "64", "--scale_mode", "fit"],
    "membrane_hand": lambda work: MEMBRANE_ARGS[:-4] + MEMBRANE_ARGS[-2:],  # its epochs left to the budget
    "membrane_random": lambda work: [*MEMBRANE_ARGS, "--model_path", ""],
    "membrane_fp32": lambda work: [*MEMBRANE_ARGS, "--precision", "fp32"],
    "membrane_fcn8": lambda work: [*MEMBRANE_ARGS, "--model", "fcn8"],
    "membrane_unet_classic": lambda work: [*MEMBRANE_ARGS, "--model", "unet_classic", "--input_shape", "444", "444"],
    "membrane_unet_small": lambda work: [*MEMBRANE_ARGS, "--model", "unet_small"],
    "membrane_unet_mobilenetv2": lambda work: [*MEMBRANE_ARGS, "--backbone", "mobilenetv2"],
    "membrane_deeplabv3plus_resnet50": lambda work: [
        *MEMBRANE_ARGS,
        "--model",
        "deeplabv3plus",
        "--backbone",
        "resnet50",
    ],
    "membrane_deeplabv3plus_vgg": lambda work: [*MEMBRANE_ARGS, "--model", "deeplabv3plus"],
    "membrane_unet_mobilenetv2_lr": lambda work: [*MEMBRANE_ARGS, "--backbone", "mobilenetv2", *SCRATCH_LR],
    "membrane_deeplabv3plus_resnet50_lr": lambda work: [*MEMBRANE_ARGS, *DEEPLAB_RESNET50, *SCRATCH_LR],
    "membrane_slide": lambda work: [*MEMBRANE_ARGS, "--scale_mode", "slide"],
    "membrane_grey": lambda work: [*MEMBRANE_ARGS, "--input_channels", "1"],
    "membrane16": membrane16,
    "membrane_40": lambda work: MEMBRANE_40,
    "membrane_40_recipe": lambda work: [*MEMBRANE_40, *PAPER_RECIPE],
    "membrane_unet_classic_40": lambda work: [*MEMBRANE_40, *CLASSIC],
    "membrane_unet_classic_40_recipe": lambda work: [*MEMBRANE_40, *CLASSIC, *PAPER_RECIPE],
    "membrane_sigmoid": lambda work: [*MEMBRANE_ARGS, "--head", "sigmoid"],
    "dubai_planned": lambda work: DUBAI_ARGS,  # the plan sets the rest (a budget: --train_flags "--time_budget 20")
    "dubai_defaults": lambda work: [*DUBAI_ARGS, "--plan", "false"],
    "dubai_fit64": lambda work: [*DUBAI_ARGS, "--input_shape", "64", "64", "--scale_mode", "fit"],
    "demo_defects": demo_defects,
    "membrane_folds": membrane_folds,
    "demo_4band": lambda work: demo_bands(work, 4),
    "demo_4band_rgb": lambda work: demo_bands(work, 3),
    "large_fit": lambda work: large_demo("fit"),
    "large_slide": lambda work: large_demo("slide"),
}


def threshold_sweep(work: str, args: list) -> dict:
    """get_miou.py --thresholds SWEEP on a 2-class case's best_epoch_weights: the best threshold and its mIoU."""
    voc = args[args.index("--vocdevkit_path") + 1]
    weights, out = os.path.join(work, "logs", "best_epoch_weights.weights.h5"), os.path.join(work, "miou")
    command = [sys.executable, os.path.join(ROOT, "get_miou.py"), "--model_path", weights, "--vocdevkit_path", voc]
    result = subprocess.run([*command, "--miou_out_path", out, "--thresholds", *SWEEP], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"get_miou.py failed:\n{result.stderr[-3000:]}")
    with open(os.path.join(out, "summary.json")) as f:
        sweep = json.load(f)["threshold_sweep"]
    best = max(sweep, key=lambda row: row["mIoU"])
    at_half = [row["mIoU"] for row in sweep if row["threshold"] == 0.5]
    return {
        "best_threshold": best["threshold"],
        "best_threshold_miou": round(best["mIoU"], 2),
        "miou_at_0.5": round(at_half[0], 2),
    }


def run_case(name: str, seed=None, sweep: bool = False, flags=(), keep: str = "") -> dict:
    """Runs train.py for one case in a fresh folder (with --seed when seed is given, and `flags` after the case's
    own); returns its wall time and mIoU figures (with sweep, for a 2-class case, the best threshold's too:
    threshold_sweep). With `keep`, the run's logs folder is copied to keep/<case>_<seed> (for
    benchmarks/ensemble_quality.py)."""
    with tempfile.TemporaryDirectory() as work:
        os.makedirs(os.path.join(work, "VOCdevkit"))  # empty, as in a fresh clone: the demo case fills it
        args = CASES[name](work)
        command = [sys.executable, os.path.join(ROOT, "train.py"), *args, "--save_dir", work + "/logs"]
        command += ([] if seed is None else ["--seed", str(seed)]) + list(flags)
        print(f"[{name}] {' '.join(command)}", flush=True)
        started = time.time()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.time() - started
        if result.returncode:
            raise SystemExit(f"[{name}] failed:\n{result.stderr[-3000:]}")
        (history,) = glob.glob(os.path.join(work, "logs", "**", "loss_*", "history.csv"), recursive=True)  # fold_i/
        with open(os.path.join(os.path.dirname(history), "timing.json")) as f:
            timing = json.load(f)  # where the run's time went (train.py's closing table)
        with open(history) as f:
            rows = [row for row in csv.DictReader(f) if row["val_miou"]]
        weights = [line for line in result.stdout.splitlines() if line.startswith("Weights:")]
        per_class = [line for line in result.stdout.splitlines() if "val mIoU" in line and "per class:" in line]
        # Keras' progress bar: each epoch's time over its steps (the validation loss included), in ms
        steps = sorted(int(ms) for ms in re.findall(r"(\d+)ms/step", result.stdout))
        precision = [line for line in result.stdout.splitlines() if line.startswith("Precision:")]
        lines = result.stdout.splitlines()
        first = next((i for i, line in enumerate(lines) if line.startswith("Plan for")), None)
        last = next((i for i, line in enumerate(lines) if line.startswith("Estimated time")), None)
        plan = lines[first : last + 1] if first is not None and last is not None else []
        plan += [line for line in lines if line.startswith("Budget:")]  # the epochs fitted again after the frozen phase
        two_classes = args[args.index("--num_classes") + 1] == "2" if "--num_classes" in args else False
        thresholds = threshold_sweep(work, args) if sweep and two_classes else {}
        if keep:
            shutil.copytree(os.path.join(work, "logs"), os.path.join(keep, f"{name}_{seed}"), dirs_exist_ok=True)
    return {
        "case": name,
        "seed": seed,
        "precision": precision[0].split()[1] if precision else "",
        "wall_minutes": round(wall / 60, 2),
        "epochs": int(rows[-1]["epoch"]),
        "final_val_miou": round(float(rows[-1]["val_miou"]), 2),
        "best_val_miou": round(max(float(r["val_miou"]) for r in rows), 2),
        "weights": weights[0] if weights else "",
        "final_per_class_iou": per_class[-1].split("per class:")[1].strip(" )") if per_class else "",
        "median_epoch_ms_per_step": steps[len(steps) // 2] if steps else None,
        "flags": " ".join(flags),
        "plan": plan,
        "timing": timing,
        **thresholds,
    }


def mean_row(rows: list) -> dict:
    """A case's mean over its seeds, in a result's fields."""
    figures = ("wall_minutes", "final_val_miou", "best_val_miou")
    mean = {key: round(sum(r[key] for r in rows) / len(rows), 2) for key in figures}
    return {**rows[0], **mean, "seed": f"mean of {len(rows)}"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--seeds", nargs="+", type=int, help="run each case once per seed (train.py --seed)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--sweep", action="store_true", help="2-class cases: get_miou.py's threshold sweep after")
    parser.add_argument("--train_flags", default="", help='more train.py flags for every case, e.g. "--time_budget 9"')
    parser.add_argument("--keep", default="", help="copy each run's logs folder to KEEP/<case>_<seed>")
    args = parser.parse_args()
    results, table = [], []
    for name in args.cases:
        shared = MEMBRANE if name.startswith("membrane") else DUBAI if name.startswith("dubai") else ""
        if shared and not os.path.isdir(shared):
            print(f"[{name}] skipped: {shared} not found")
            continue
        flags = shlex.split(args.train_flags)
        runs = [run_case(name, seed, args.sweep, flags, args.keep) for seed in args.seeds or [None]]
        for run in runs:
            print(json.dumps(run), flush=True)
        results += runs
        table += runs + ([mean_row(runs)] if len(runs) > 1 else [])
    header = f"{'case':<22} {'seed':<10} {'precision':<15} {'wall (min)':>10} {'epochs':>6}"
    print(f"\n{header} {'final mIoU':>10} {'best mIoU':>9}")
    for r in table:
        figures = f"{r['wall_minutes']:>10} {r['epochs']:>6} {r['final_val_miou']:>10} {r['best_val_miou']:>9}"
        seed = "default" if r["seed"] is None else str(r["seed"])
        print(f"{r['case']:<22} {seed:<10} {r['precision']:<15} {figures}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
