"""voc_annotation.py's time on a large dataset of published-format labels, and how well its --fix reproduces them.

    $ python benchmarks/label_survey.py                                   # 1,300 JPEG masks of 480 x 640
    $ python benchmarks/label_survey.py --format noisy_binary --count 300 --size 512 512

Writes the dataset (tests/label_writers.py: images and labels as such datasets publish them) into a temporary
folder, then runs, as a user would, `python voc_annotation.py` (the check: every file read once, the report, no
splits since the labels need --fix), `python voc_annotation.py --fix` (the check again, the corrected labels
written and surveyed again) and `--use_fixed` (the corrected labels checked as a clean dataset, label_preview.png
and the splits written), each timed by its wall clock. The fixed labels are compared with the truth the
writer kept: the share of pixels equal, and the class values found.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import label_writers  # noqa: E402 (after the path to the repository is set)

FORMATS = ("jpeg_masks", "noisy_binary", "palette_orders", "colour_masks", "jpeg_colour_masks")
COLOURS = ["--palette", *label_writers.AERIAL, "--ignore_colours", label_writers.UNLABELLED, label_writers.GAP]
FLAGS = {"colour_masks": COLOURS, "jpeg_colour_masks": COLOURS}


def timed(*args) -> tuple:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "voc_annotation.py"), *args], capture_output=True, text=True
    )
    return time.perf_counter() - started, result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", choices=FORMATS, default="jpeg_masks")
    parser.add_argument("--count", type=int, default=1300)
    parser.add_argument("--size", type=int, nargs=2, default=[480, 640], help="height width of each image")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        started = time.perf_counter()
        voc, truth = getattr(label_writers, args.format)(root, count=args.count, size=tuple(args.size))
        shape = f"{args.size[1]}x{args.size[0]}"
        print(f"Wrote {args.count} {args.format} pairs of {shape} in {time.perf_counter() - started:.0f} s")
        flags = ["--vocdevkit_path", voc, *FLAGS.get(args.format, [])]
        check_time, check = timed(*flags)
        fix_time, fix = timed(*flags, "--fix")
        use_time, use = timed("--vocdevkit_path", voc, "--use_fixed")
        for name, result in (("check", check), ("fix", fix), ("use_fixed", use)):
            if result.returncode not in (0, 2) or "Traceback" in result.stderr:
                sys.exit(f"voc_annotation.py ({name}) failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        folder = os.path.join(voc, "VOC2007", "SegmentationClass")  # the fixed labels, now in use
        originals = os.path.join(voc, "VOC2007", "SegmentationClass_original")
        equal = total = nearest_equal = 0
        values = set()
        for sample_id, expected in truth.items():
            fixed = np.asarray(Image.open(os.path.join(folder, f"{sample_id}.png")))
            equal, total = equal + int((fixed == expected).sum()), total + expected.size
            values |= set(np.unique(fixed).tolist())
            if args.format in FLAGS:
                (published,) = [n for n in os.listdir(originals) if os.path.splitext(n)[0] == sample_id]
                nearest = nearest_colour_ids(np.asarray(Image.open(os.path.join(originals, published)).convert("RGB")))
                nearest_equal += int((fixed == nearest).sum())
    print(f"voc_annotation.py (check):  {check_time:6.1f} s  exit {check.returncode}")
    print(f"voc_annotation.py --fix:    {fix_time:6.1f} s  exit {fix.returncode}")
    print(f"... --use_fixed (the check of the fixed labels, the preview and the splits written): {use_time:.1f} s")
    print(f"fixed labels equal to the truth: {100 * equal / total:.3f} % of {total} pixels; values {sorted(values)}")
    if args.format in FLAGS:
        share = 100 * nearest_equal / total
        print(f"... equal to each pixel's nearest listed colour in the published file: {share:.3f} %")
    print(f"CPU: {cpu_name()}")


def nearest_colour_ids(rgb: np.ndarray) -> np.ndarray:
    """A careful conversion of a colour mask: each pixel takes its nearest listed colour's class (ignore: 255)."""
    listed = [label_writers.rgb(c) for c in label_writers.AERIAL + [label_writers.UNLABELLED, label_writers.GAP]]
    ids = np.array(list(range(len(label_writers.AERIAL))) + [255, 255], np.uint8)
    distance = ((rgb[:, :, None, :].astype(np.int32) - np.array(listed)[None, None]) ** 2).sum(-1)
    return ids[distance.argmin(-1)]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    main()
