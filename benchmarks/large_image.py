r"""predict.py on one very large image, in scale modes fit and slide: its peak resident memory, and its mask
checked against a direct computation on a crop.

    $ python benchmarks/large_image.py                      # 10,000 x 10,000, 21-class VGG16-UNet at 512x512
    $ python benchmarks/large_image.py --size 4000 --modes slide

For each mode it writes a weights file of a 21-class VGG16-UNet (random weights, seeded: the memory and the
arithmetic do not depend on what was learnt) that records the mode, runs `python predict.py` on the image as a
user does (the prompt, `--mix_type 1` so that the saved colours are the class ids; then the default blend, to
measure its memory too), and reads each run's peak resident set size from the kernel (wait4, in a small go-between
process). The check: the class ids of a crop in the middle of the image, computed directly from the model's
outputs in float64 (fit: the letterboxed image through the model, bilinear up to full size by the textbook
formula; slide: every window over the crop, Gaussian-weighted and normalised), against predict.py's. Exit status 1
when the memory goal (--max_gb) is missed or less than 99.9 % of the crop agrees.
"""

import os
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from utils.config import run_main  # noqa: E402 (after the path to the repository is set)


@dataclass
class LargeImageConfig:
    size: int = 10000  # the image's side, in pixels
    num_classes: int = 21  # classes of the network (VOC's 21)
    input_shape: list[int] = field(default_factory=lambda: [512, 512])  # the network's input, and slide's window
    modes: list[str] = field(default_factory=lambda: ["fit", "slide"])  # scale modes to measure
    precision: str = "auto"  # as predict.py's default
    crop: int = 700  # side of the centre crop checked against the direct computation
    max_gb: float = 3.0  # the goal: peak resident memory of predict.py, in GB
    work_dir: str = "large_image_check"  # where the image, weights and outputs go


def write_image(path: str, size: int) -> None:
    """A size x size JPEG: a large-demo sample (1024 x 1024, many small shapes) mirrored out to the size."""
    from PIL import Image

    from utils.dataset.demo import make_large_sample

    sample, _ = make_large_sample(np.random.default_rng(0), 1024)
    repeats = -(-size // 1024)
    tiles = [[sample[:: 1 - 2 * (i % 2), :: 1 - 2 * (j % 2)] for j in range(repeats)] for i in range(repeats)]
    mosaic = np.concatenate([np.concatenate(row, axis=1) for row in tiles], axis=0)
    Image.fromarray(np.ascontiguousarray(mosaic[:size, :size])).save(path, quality=95)


# Starts the command from a small process and prints its peak resident set size. Linux folds the memory high-water
# mark of the process that spawns a command into the command's own (at exec), so measured straight from this
# script, which holds the image and a model, every figure would be at least this script's peak.
MEASURE = (
    "import os, subprocess, sys; child = subprocess.Popen(sys.argv[1:]); _, status, usage = os.wait4(child.pid, 0); "
    "print(f'peak_rss_kb {usage.ru_maxrss}'); sys.exit(os.waitstatus_to_exitcode(status))"
)


def peak_of(command: list, cwd: str, stdin: str) -> tuple:
    """Runs a command; returns (exit status, output, its peak resident set size in bytes) (wait4's rusage, read
    by a small go-between: MEASURE)."""
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *command],
        cwd=cwd,
        input=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output, _, last = result.stdout.rpartition("peak_rss_kb ")
    return result.returncode, output, int(last.split()[0]) * 1024  # Linux: kilobytes


def bilinear_reference(probabilities: np.ndarray, size: tuple, rows: slice, columns: slice) -> np.ndarray:
    """float64 rows x columns of probabilities (H, W, C) resized to size (h, w), bilinear with half-pixel centres,
    by the textbook formula (no TensorFlow)."""

    def axis(out_indices, in_size, out_size):
        position = np.clip((out_indices + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)
        low = np.floor(position).astype(int)
        return low, np.minimum(low + 1, in_size - 1), position - low

    y0, y1, wy = axis(np.arange(rows.start, rows.stop), probabilities.shape[0], size[0])
    x0, x1, wx = axis(np.arange(columns.start, columns.stop), probabilities.shape[1], size[1])
    p = probabilities.astype(np.float64)
    top = p[y0][:, x0] * (1 - wx)[None, :, None] + p[y0][:, x1] * wx[None, :, None]
    bottom = p[y1][:, x0] * (1 - wx)[None, :, None] + p[y1][:, x1] * wx[None, :, None]
    return top * (1 - wy)[:, None, None] + bottom * wy[:, None, None]


def reference_ids(unet, image: np.ndarray, mode: str, rows: slice, columns: slice) -> np.ndarray:
    """The class ids of image[rows, columns], computed directly (module docstring)."""
    from utils.letterbox import letterbox
    from utils.prediction.sliding import window_starts

    height, width = image.shape[:2]
    size = tuple(unet.config.input_shape)
    if mode == "fit":
        canvas, box = letterbox(image, size)
        probabilities = unet.predict(canvas.numpy()[None]).numpy()[0]
        top, left, resized_height, resized_width = box.numpy()
        crop = probabilities[top : top + resized_height, left : left + resized_width]
        return np.argmax(bilinear_reference(crop, (height, width), rows, columns), axis=-1)
    total = np.zeros((rows.stop - rows.start, columns.stop - columns.start, unet.config.num_classes))
    weight = np.zeros(total.shape[:2] + (1,))
    profile = [np.exp(-0.5 * ((np.arange(s) + 0.5 - s / 2) / (s / 8)) ** 2) for s in size]
    gauss = np.outer(*profile)[..., None]
    for top in window_starts(height, size[0], unet.config.overlap):
        for left in window_starts(width, size[1], unet.config.overlap):
            y = slice(max(top, rows.start), min(top + size[0], rows.stop))
            x = slice(max(left, columns.start), min(left + size[1], columns.stop))
            if y.start >= y.stop or x.start >= x.stop:
                continue
            window = unet.predict(image[None, top : top + size[0], left : left + size[1]]).numpy()[0]
            inside = (slice(y.start - top, y.stop - top), slice(x.start - left, x.stop - left))
            at = (
                slice(y.start - rows.start, y.stop - rows.start),
                slice(x.start - columns.start, x.stop - columns.start),
            )
            total[at] += gauss[inside] * window[inside]
            weight[at] += gauss[inside]
    return np.argmax(total / weight, axis=-1)


def main(config: LargeImageConfig) -> None:
    import keras
    from PIL import Image

    from nets.models import build_model
    from unet import Unet
    from utils.files.bands import Bands, read_input
    from utils.visualize import class_colours
    from utils.weights.checkpoint import ModelSettings, save_weights

    os.makedirs(config.work_dir, exist_ok=True)
    work = os.path.abspath(config.work_dir)
    image_path = os.path.join(work, f"large_{config.size}.jpg")
    if not os.path.isfile(image_path):
        write_image(image_path, config.size)
    keras.utils.set_random_seed(0)
    model = build_model("unet", config.input_shape, config.num_classes)  # random weights: the same every run
    image = read_input(image_path, Bands())  # 8-bit RGB, as predict.py reads it for this network
    middle = config.size // 2
    rows = columns = slice(middle - config.crop // 2, middle + config.crop // 2)
    failed, lines = False, []
    for mode in config.modes:
        weights = os.path.join(work, f"{mode}.weights.h5")
        settings = ModelSettings("unet", "vgg", config.num_classes, tuple(config.input_shape), scale_mode=mode)
        save_weights(model, weights, settings, epoch=1)
        peaks = {}
        for mix_type in (1, 0):
            command = [sys.executable, os.path.join(ROOT, "predict.py"), "--model_path", weights, "--show", "false"]
            command += ["--mix_type", str(mix_type), "--precision", config.precision]
            status, output, peak = peak_of(command, work, image_path + "\n")
            if status:
                raise SystemExit(f"predict.py failed ({mode}, mix_type {mix_type}):\n{output[-3000:]}")
            peaks[mix_type] = peak
            saved = os.path.join(work, "img_out", os.path.basename(image_path).replace(".jpg", ".png"))
            if mix_type == 1:  # the colours are the class ids
                with Image.open(saved) as result:
                    colours = np.asarray(result.convert("RGB"))[rows, columns]
        palette = class_colours(config.num_classes).astype(np.int64)
        codes = (colours.astype(np.int64) * [65536, 256, 1]).sum(-1)
        lookup = {int(code): index for index, code in enumerate((palette * [65536, 256, 1]).sum(-1))}
        predicted = np.vectorize(lookup.get)(codes)
        unet = Unet(model_path=weights, precision=config.precision, backend="keras")
        agreement = float((reference_ids(unet, image, mode, rows, columns) == predicted).mean())
        worst = max(peaks.values()) / 1e9
        failed |= worst > config.max_gb or agreement < 0.999
        lines.append(
            f"{mode:<6} peak resident memory {peaks[1] / 1e9:.2f} GB (mask) / {peaks[0] / 1e9:.2f} GB (blend); "
            f"centre {config.crop}x{config.crop} crop against the direct computation: {agreement:.4%} agree"
        )
    network = f"{config.num_classes}-class VGG16-UNet at {config.input_shape[0]}x{config.input_shape[1]}"
    print(f"\npredict.py on a {config.size}x{config.size} RGB image, {network}, precision {config.precision}")
    print(f"(goal: under {config.max_gb} GB)")
    print("\n".join(lines))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    run_main(main, LargeImageConfig, __doc__)
