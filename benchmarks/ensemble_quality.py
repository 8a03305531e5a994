"""The val mIoU of each of several trained runs and of their ensemble (predict.py / get_miou.py --ensemble), each
scored by get_miou.py as a user scores it: is the ensemble above the mean single model, and by how much?

    $ python benchmarks/train_quality.py --cases membrane --seeds 11 1 2 --keep runs/
    $ python benchmarks/ensemble_quality.py --runs runs/membrane_11 runs/membrane_1 runs/membrane_2 \\
          --vocdevkit_path ../shared/datasets/membrane
    $ python benchmarks/ensemble_quality.py --runs logs/fold_0 logs/fold_1 logs/fold_2 --vocdevkit_path ... --split test

Each run's best_epoch_weights.weights.h5 is scored on the split (post-processing off), then all of them together;
the time per image of each get_miou.py pass is shown beside its mIoU (the ensemble's cost).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEST = "best_epoch_weights.weights.h5"


def scored(weights: list, voc: str, split: str, extra: list, work: str) -> tuple:
    """(mIoU, seconds) of get_miou.py on the split with the first weights file and the others as its ensemble."""
    out = tempfile.mkdtemp(dir=work)
    command = [sys.executable, os.path.join(ROOT, "get_miou.py"), "--model_path", weights[0], "--vocdevkit_path", voc]
    command += ["--split", split, "--miou_out_path", out, "--postprocess", "none", *extra]
    command += ["--ensemble", *weights[1:]] if len(weights) > 1 else []
    started = time.time()
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"get_miou.py failed:\n{result.stderr[-3000:]}")
    with open(os.path.join(out, "summary.json")) as f:
        return json.load(f)["mIoU"], time.time() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="run folders (train.py's save_dir) of one network")
    parser.add_argument("--vocdevkit_path", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--get_miou_flags", default="", help='more get_miou.py flags, e.g. "--tta hflip vflip"')
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    weights = [os.path.join(run, BEST) for run in args.runs]
    missing = [path for path in weights if not os.path.isfile(path)]
    if missing or len(weights) < 2:
        raise SystemExit(f"Expected two or more run folders holding {BEST}; missing: {missing}")
    extra = args.get_miou_flags.split()
    with tempfile.TemporaryDirectory() as work:
        singles = [scored([path], args.vocdevkit_path, args.split, extra, work) for path in weights]
        ensemble = scored(weights, args.vocdevkit_path, args.split, extra, work)
    mean = sum(miou for miou, _ in singles) / len(singles)
    for run, (miou, seconds) in zip(args.runs, singles):
        print(f"{run:<40} mIoU {miou:6.2f}   {seconds:6.1f} s")
    print(f"{'mean single model':<40} mIoU {mean:6.2f}   (lowest {min(m for m, _ in singles):.2f})")
    gain = ensemble[0] - mean
    print(f"{f'ensemble of {len(weights)}':<40} mIoU {ensemble[0]:6.2f}   {ensemble[1]:6.1f} s   ({gain:+.2f} points)")
    if args.json:
        report = {"runs": args.runs, "singles": [m for m, _ in singles], "mean_single": mean, "ensemble": ensemble[0]}
        with open(args.json, "w") as f:
            json.dump(
                {**report, "gain": gain, "seconds": {"singles": [s for _, s in singles], "ensemble": ensemble[1]}}, f
            )


if __name__ == "__main__":
    main()
