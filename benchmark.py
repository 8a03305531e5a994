r"""Where the time goes on this machine: training, the data pipeline and prediction, in fp32 and mixed precision.

    $ python benchmark.py                                  # 256x256, batch 4, fp32 and auto, about 16 min on 2 cores
    $ python benchmark.py --input_shape 512 512 --batch_size 8 --json gpu.json    # on a GPU
    $ python benchmark.py --precision fp32 mixed_bfloat16 --steps 10

For each precision it measures, on the real VGG16-UNet (or --backbone resnet50, or another --model):
    train step, bare        model.fit on one in-memory batch, repeated: the model's own speed
    train step, end to end  the same through train.py's pipeline from a generated VOC tree: decoding,
                            augmentation and all (the two take turns, round by round)
    forward, bare           the compiled inference call on a batch of val images in memory (batch_size and 1)
    forward, ONNX Runtime   the same batch through the model exported by export.py and run by onnxruntime
                            (float32 only; shown when requirements-export.txt is installed)
    forward, OpenVINO       the same through export.py's OpenVINO IR on OpenVINO's CPU plugin, in float32
    detect_image, backend onnx / openvino
                            Unet.detect_image on those exports (Unet(backend=...)): the whole prediction path
    detect_image            Unet.detect_image on one image: letterbox, model, restore, blend
    detect_image, TTA       the same with test-time augmentation (--tta hflip vflip: 3 copies in one call)
    detect_image, ensemble  the same with --ensemble: two weights files' probabilities averaged (here one file twice)
    get_miou path           get_miou.py's prediction of the val split, a batch per call, PNGs written
    slide                   scale_mode slide on an image of 4 x 4 windows (overlap 0.25), batch_size windows a
                            call: windows/s against the bare forward's images/s at the same batch size
                            (these take turns call by call)
and once, as it does not depend on the precision, the data pipeline alone at --pipeline_shape with train.py's
default augmentation, and again with every option on (ALL_OPTIONS: rotation, multiples of 90 degrees, vertical flip,
shear, elastic deformation and the UNet weight map; --pipeline_only measures just these two).

--networks measures every model x backbone instead (benchmarks/network_table.py; at 256², batch 4, about 25 minutes
on 2 cores): its parameters and GFLOPs per image; train.py's training step in each precision, first and later
steps, as GFLOP/s and as a share of NumPy's float32 4096² matrix product timed in the same run (the machine's own
rate); and the bare forward pass's images/s (the README's table), the networks taking turns call by call.
With --image_bands 3 or 4 the images are 16-bit TIFFs of that many bands (the demo generator's bands
variant) instead of 8-bit RGB JPEGs, and the network takes them (a --model_path records its own).

Rates are images (samples) per second; GFLOP/s count 2 x multiply-accumulates of the
convolutions, x3 for a training step (forward, and backward for inputs and weights). They are set against
an estimated peak (cores x base clock x FLOPs/cycle of the ISA, or a GPU's published figure; turbo clocks
can beat it) and against the matmul ceiling, a 2048^2 matmul (8192^2 on a GPU) timed in the same dtype.

Rates are total images over total time. The shares (end to end / bare, detect_image / bare, ...) compare the
fastest calls (training: rounds) of each kind, as timeit advises: on a shared machine a neighbour's load comes
and goes within a second and can halve the rate of any call, so even call-by-call totals swing by 10 % from
run to run, while the fastest calls show what the code itself costs. A pipeline that cannot keep up slows every
round, the fastest too, so it still shows. The get_miou pass's start (building the pipeline) is its own figure.
"""

import importlib.util
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log (e.g. no CUDA on a CPU machine)

import cv2
import keras
import numpy as np
import tensorflow as tf

from benchmarks.network_table import format_network_table, format_training_table, measure_networks, ratio
from benchmarks.profiling import (
    StepTimer,
    count_flops,
    machine_description,
    matmul_gflops,
    peak_gflops,
    seconds_of,
)
from nets.models import build_model, check_model_settings, output_margin
from unet import Unet
from utils.augmentation.options import Augmentation
from utils.config import format_config, given_flags, run_main
from utils.dataloader import Pipeline, build_train_dataset
from utils.dataset.demo import make_demo_dataset
from utils.files.bands import Bands, image_array, read_input, survey
from utils.files.image_files import read_image
from utils.files.images import read_split, split_samples
from utils.letterbox import letterbox
from utils.losses import build_loss
from utils.phases import Phase, compile_phase
from utils.precision import PRECISIONS, choose_precision
from utils.prediction.onnx_model import OnnxModel, write_onnx
from utils.prediction.openvino_model import OpenvinoModel, write_openvino
from utils.prediction.path import SlidePath
from utils.prediction.scores import class_scores
from utils.scale import Scale, resolve_scale_mode
from utils.training.learning_rate import EpochSchedule
from utils.training.optimizers import make_optimizer
from utils.weight_map import WeightMap
from utils.weights.checkpoint import ModelSettings, check_recorded, read_settings, save_weights

# Rows of the table: (key, label, format); rates are per second.
ROWS = [
    ("train_bare", "train step, bare (img/s)", "{:.2f}"),
    ("train_end_to_end", "train step, end to end (img/s)", "{:.2f}"),
    ("train_end_to_end_share", "  end to end / bare (fastest)", "{:.1%}"),
    ("train_gflops", "  achieved GFLOP/s (bare)", "{:.0f}"),
    ("train_peak_share", "  share of estimated peak", "{:.1%}"),
    ("train_matmul_share", "  share of matmul ceiling", "{:.1%}"),
    ("forward_bare", "forward, bare, batch (img/s)", "{:.2f}"),
    ("forward_bare_single", "forward, bare, batch 1 (img/s)", "{:.2f}"),
    ("forward_onnx", "forward, ONNX Runtime, batch (img/s)", "{:.2f}"),
    ("forward_onnx_share", "  / bare forward, batch (fastest)", "{:.1%}"),
    ("forward_openvino", "forward, OpenVINO (CPU, f32), batch (img/s)", "{:.2f}"),
    ("forward_openvino_share", "  / bare forward, batch (fastest)", "{:.1%}"),
    ("detect_image", "detect_image (img/s)", "{:.2f}"),
    ("detect_image_share", "  / bare forward, batch 1 (fastest)", "{:.1%}"),
    ("detect_image_tta", "detect_image, TTA hflip vflip: 3 copies, 1 call (img/s)", "{:.2f}"),
    ("detect_image_tta_share", "  / detect_image (fastest)", "{:.1%}"),
    ("detect_image_ensemble", "detect_image, ensemble of 2 weights files (img/s)", "{:.2f}"),
    ("detect_image_ensemble_share", "  / detect_image (fastest)", "{:.1%}"),
    ("detect_image_onnx", "detect_image, backend onnx (img/s)", "{:.2f}"),
    ("detect_image_onnx_share", "  / detect_image (fastest)", "{:.1%}"),
    ("detect_image_openvino", "detect_image, backend openvino (img/s)", "{:.2f}"),
    ("detect_image_openvino_share", "  / detect_image (fastest)", "{:.1%}"),
    ("get_miou_path", "get_miou path (img/s)", "{:.2f}"),
    ("get_miou_path_share", "  / bare forward, batch (fastest)", "{:.1%}"),
    ("get_miou_start_s", "  start of the pass (s, once)", "{:.2f}"),
    ("slide", "slide, windows of a large image (windows/s)", "{:.2f}"),
    ("slide_share", "  / bare forward, batch (fastest)", "{:.1%}"),
    ("forward_gflops", "  achieved GFLOP/s (bare, batch)", "{:.0f}"),
    ("forward_peak_share", "  share of estimated peak", "{:.1%}"),
    ("forward_matmul_share", "  share of matmul ceiling", "{:.1%}"),
    ("peak_gflops", "estimated peak GFLOP/s", "{:.0f}"),
    ("matmul_gflops", "matmul ceiling GFLOP/s", "{:.0f}"),
]
# The pipeline's second row: every augmentation option of train.py on, elastic as the UNet paper's, and the weight map.
ALL_OPTIONS = (Augmentation(30.0, True, True, 10.0, 10.0, 128.0), WeightMap(10.0, 5.0, (1, 2, 3)))
# Test-time augmentation as measured: the flips (every network takes them; scales need a same-padding one).
TTA_WORDS = ["hflip", "vflip"]
# Rows where mixed / fp32 is a speed-up worth a column.
SPEEDUP_ROWS = (
    "train_bare",
    "train_end_to_end",
    "forward_bare",
    "forward_bare_single",
    "detect_image",
    "get_miou_path",
    "slide",
)


@dataclass
class BenchmarkConfig:
    input_shape: list[int] = field(default_factory=lambda: [256, 256])  # network input (height width)
    batch_size: int = 4  # images per training step and per batched prediction
    num_classes: int = 21  # classes of the model (21 as for VOC)
    model: str = "unet"  # network: unet | deeplabv3plus | fcn8 | unet_classic | unet_small (as in train.py)
    backbone: str = "vgg"  # encoder of unet / deeplabv3plus: vgg | resnet50 | mobilenetv2 | efficientnetv2b0
    model_path: str = ""  # a weights file from train.py: benchmark its network (model, backbone, num_classes)
    precision: list[str] = field(default_factory=lambda: ["fp32", "auto"])  # each is measured (auto: as train.py)
    optimizer_type: str = "adam"  # optimizer of the training steps: adam | sgd (as in train.py)
    steps: int = 20  # timed training steps (of each kind), after the warm-up
    calls: int = 40  # timed calls of each inference measure, taking turns call by call (shared machines are noisy)
    repeats: int = 5  # rounds of the training measurements, taking turns
    warmup: int = 3  # untimed steps / calls first (tracing, autotuning)
    pipeline_shape: list[int] = field(default_factory=lambda: [512, 512])  # input shape of the pipeline-only run
    pipeline_batches: int = 50  # timed batches of the pipeline-only run
    pipeline_only: bool = False  # measure the data pipeline rows only (a minute, not a quarter of an hour)
    networks: bool = False  # measure every model x backbone instead: training step, first step, forward pass
    network_steps: int = 3  # --networks: timed training steps of each network (median), after 2 warm-up; 0: none
    image_bands: int = 0  # 0: 8-bit RGB JPEGs; 3 or 4: 16-bit TIFFs of that many bands (a model_path: as recorded)
    json: str = ""  # also write the results to this JSON file


def random_images(rng, shape: tuple, bands: Bands) -> np.ndarray:
    """Random images (B, H, W, bands.channels) of the pipeline's type, over the bands' range."""
    if bands.eight_bit:
        return rng.integers(0, 256, (*shape, bands.channels), np.uint8)
    low, high = np.array(bands.ranges).T
    return rng.uniform(low, high, (*shape, bands.channels)).astype(np.float32)


def train_rates(model, config: BenchmarkConfig, loss, voc: str, bands: Bands) -> dict:
    """Images/s of training steps on one in-memory batch (bare) and through train.py's pipeline from files.

    Both run on the same model, compiled once by utils.phases.compile_phase as train.py compiles a phase;
    the end-to-end steps read the generated VOC tree through build_train_dataset exactly as fit_phase does. The
    two take turns, `repeats` rounds each (the first step of every round, which starts the iterator, is not
    timed). Each rate is total images over total time; the share compares the fastest rounds (module docstring).
    """
    height, width = config.input_shape
    margin = output_margin(model)
    rng = np.random.default_rng(0)
    images = random_images(rng, (config.batch_size, height, width), bands)
    labels = rng.integers(0, config.num_classes, (config.batch_size, *model.output_shape[1:3]), np.uint8)
    samples = split_samples(voc, "train")
    phase = Phase(first_epoch=0, end_epoch=1, batch_size=config.batch_size, frozen=False)
    schedule = EpochSchedule(0, len(samples) // config.batch_size, 1, 4e-4, 1e-6, "cos")  # as train.py's default
    compile_phase(model, loss, phase, make_optimizer(config.optimizer_type, schedule))
    scale = Scale(resolve_scale_mode("auto", config.model)).crop_scale  # train.py's default mode
    pipeline = build_train_dataset(samples, Pipeline((height, width), margin, scale, bands), config.batch_size, seed=0)
    in_memory = tf.data.Dataset.from_tensors((images, labels)).repeat()
    sources = {
        "train_bare": (model, in_memory),
        "train_end_to_end": (model, pipeline),
    }
    steps = max(2, config.steps // config.repeats)
    seconds = {name: [] for name in sources}  # per round
    for round_index in range(config.repeats + 1):  # round 0 warms up: tracing, autotuning
        for name, (trained, dataset) in sources.items():
            timer = StepTimer(warmup=config.warmup if round_index == 0 else 1)
            trained.fit(
                dataset, epochs=1, steps_per_epoch=timer.warmup + steps, callbacks=[timer], verbose=0, shuffle=False
            )
            if round_index:
                seconds[name].append(steps / timer.steps_per_second())
    rates = {name: config.batch_size * steps * config.repeats / sum(seconds[name]) for name in sources}
    rates["train_end_to_end_share"] = min(seconds["train_bare"]) / min(seconds["train_end_to_end"])
    return rates


def inference_rates(model, config: BenchmarkConfig, policy: str, voc: str, work: str, bands: Bands) -> dict:
    """Images/s of the bare compiled call, Unet.detect_image and Unet.write_masks (get_miou.py's path), on
    the same Unet.

    The four take turns call by call, `calls` calls each, so a neighbour's load on a shared machine weighs on
    all four alike. Each rate is total images over total time; each share of the bare call compares the
    fastest calls (module docstring).
    """
    weights = saved_weights(model, config, os.path.join(work, f"{policy}.weights.h5"), bands)
    precision = {"float32": "fp32"}.get(policy, policy)
    unet = Unet(model_path=weights, precision=precision, backend="keras")  # the exports are rows of their own
    augmented = Unet(model_path=weights, precision=precision, backend="keras", tta=TTA_WORDS)  # test-time augmentation
    # two networks' probabilities
    ensemble = Unet(model_path=weights, precision=precision, backend="keras", ensemble=[weights])
    ids = read_split(os.path.join(voc, "VOC2007", "ImageSets", "Segmentation", "val.txt"))
    samples = split_samples(voc, "val")
    # The bare calls see the same (letterboxed) val images as the others, and fetch their result to the host.
    inputs = [read_input(image, bands) for image, _ in samples[: config.batch_size]]
    batch = tf.stack([letterbox(image, config.input_shape, bands.fill)[0] for image in inputs])
    single = batch[:1]
    image = read_image(samples[0][0])
    out = os.path.join(work, "miou_out", policy)
    images = [image for image, _ in samples]
    list(unet.write_masks(ids[:1], images[:1], out, 1))  # traces the compiled calls
    # One pass over the val split (calls x batch_size images), a batch per call: its start (reading the split,
    # building the pipeline) is paid once, as in a get_miou.py run.
    predictions = unet.write_masks(ids, images, out, config.batch_size)
    # slide mode's path on the same model: an image of 4 x 4 windows (overlap 0.25), batch_size windows a call.
    slide = SlidePath(class_scores(unet.network), Scale("slide", 1.0, 0.25), config.batch_size).image_mask
    large = cv2.resize(image_array(image, bands), slide_size(config.input_shape, output_margin(model)))
    large = large.reshape(*large.shape[:2], bands.channels)  # OpenCV drops a single band's axis
    calls = {  # name: (function, images per call)
        "forward_bare": (lambda: unet.predict(batch).numpy(), config.batch_size),
        "get_miou_path": (lambda: [next(predictions) for _ in range(config.batch_size)], config.batch_size),
        "forward_bare_single": (lambda: unet.predict(single).numpy(), 1),
        "detect_image": (lambda: unet.detect_image(image), 1),
        "detect_image_tta": (lambda: augmented.detect_image(image), 1),
        "detect_image_ensemble": (lambda: ensemble.detect_image(image), 1),
        "slide": (lambda: slide(large), 16),
    }
    for backend, path in exported_files(unet, policy, work).items():  # the float32 exports, as export.py writes them
        runtime = OnnxModel(path) if backend == "onnx" else OpenvinoModel(path)
        exported = Unet(model_path=path, backend=backend, precision=precision)  # the policy stays float32
        calls[f"forward_{backend}"] = (lambda r=runtime: r.run(batch.numpy()), config.batch_size)
        calls[f"detect_image_{backend}"] = (lambda e=exported: e.detect_image(image), 1)
    seconds = taking_turns(calls, config.calls, warmed=("get_miou_path",))
    rates = {name: images * config.calls / sum(seconds[name]) for name, (_, images) in calls.items()}
    shares = {"detect_image": "forward_bare_single", "get_miou_path": "forward_bare", "forward_onnx": "forward_bare"}
    shares["detect_image_tta"] = shares["detect_image_ensemble"] = "detect_image"
    shares["forward_openvino"] = "forward_bare"
    shares["detect_image_onnx"] = shares["detect_image_openvino"] = "detect_image"
    shares["slide"] = "forward_bare"
    for name, bare in shares.items():  # seconds per image of the fastest calls
        if name in seconds:
            rates[f"{name}_share"] = (min(seconds[bare]) / calls[bare][1]) / (min(seconds[name]) / calls[name][1])
    # The pass's start (building the pipeline, reading the split) is in its first call: reported on its own.
    rates["get_miou_start_s"] = seconds["get_miou_path"][0] - min(seconds["get_miou_path"])
    return rates


def saved_weights(model, config: BenchmarkConfig, path: str, bands: Bands) -> str:
    """The model saved as train.py saves weights (its settings recorded, in train.py's default scale mode)."""
    shape, scale_mode = tuple(config.input_shape), resolve_scale_mode("auto", config.model)
    settings = ModelSettings(
        config.model, config.backbone, config.num_classes, shape, scale_mode=scale_mode, bands=bands
    )
    save_weights(model, path, settings, epoch=0)
    return path


def taking_turns(calls: dict, rounds: int, warmed=()) -> dict:
    """{name: seconds of each call}: every function called once untimed (tracing; not those `warmed` already), then
    `rounds` rounds, each calling every function once, so that a neighbour's load weighs on all alike."""
    for name, (function, _) in calls.items():
        if name not in warmed:  # a warmed pass must not lose a batch
            function()
    seconds = {name: [] for name in calls}
    for _ in range(rounds):
        for name, (function, _) in calls.items():
            seconds[name].append(seconds_of(function))
    return seconds


def slide_size(input_shape, margin: int) -> tuple:
    """(width, height) of an image that slide mode covers with exactly 4 x 4 windows at overlap 0.25: the window's
    output side plus 3 strides of 3/4 of it."""
    height, width = (side - 2 * margin for side in input_shape)
    return width + 3 * (width * 3 // 4), height + 3 * (height * 3 // 4)


def exported_files(unet: Unet, policy: str, work: str) -> dict:
    """{backend: file} of the Unet's network exported as export.py exports it (ONNX, of any input size; OpenVINO's IR
    of its SavedModel), its settings recorded: for the float32 policy, each whose optional package is installed
    (requirements-export.txt); {} otherwise (their rows show '-')."""
    if policy != "float32":
        return {}
    files = {}
    if all(importlib.util.find_spec(name) for name in ("tf2onnx", "onnxruntime")):
        files["onnx"] = os.path.join(work, "model.onnx")
        write_onnx(unet.network, files["onnx"], unet.settings)
    if importlib.util.find_spec("openvino"):
        saved_model, files["openvino"] = os.path.join(work, "saved_model"), os.path.join(work, "openvino", "model.xml")
        unet.network.export(saved_model, verbose=False)
        write_openvino(saved_model, files["openvino"], unet.settings)
    return files


def pipeline_rate(config: BenchmarkConfig, voc: str, augmentation=Augmentation(), weight_map=None) -> dict:
    """Samples/s of build_train_dataset alone (decode + augmentation, with the weight map when given) and the bytes of
    a batch's targets."""
    samples = split_samples(voc, "trainval")
    bands = survey([image for image, _ in samples])
    shape = tuple(config.pipeline_shape)
    pipeline = Pipeline(shape, bands=bands, augmentation=augmentation, weight_map=weight_map)
    dataset = build_train_dataset(samples, pipeline, config.batch_size, seed=0)
    batches = iter(dataset)
    for _ in range(config.warmup):
        images, labels = next(batches)
    start = time.perf_counter()
    for _ in range(config.pipeline_batches):
        images, labels = next(batches)
    elapsed = time.perf_counter() - start
    del batches  # a live tf.data iterator can hold up the interpreter's exit
    # What a float64 one-hot with an extra "ignore" channel (the Keras Sequence loaders' targets) would take.
    one_hot_bytes = labels.shape.num_elements() * (config.num_classes + 1) * 8
    return {
        "pipeline_samples_per_s": config.pipeline_batches * config.batch_size / elapsed,
        "pipeline_shape": list(config.pipeline_shape),
        "target_bytes_per_batch": labels.numpy().nbytes,
        "target_dtype": labels.dtype.name,
        "float64_one_hot_bytes_per_batch": one_hot_bytes,
    }


def measure_precision(config: BenchmarkConfig, policy: str, flops: int, voc: str, work: str, bands: Bands) -> dict:
    """Every per-precision figure of the module docstring, for the Keras dtype policy `policy`, on images of
    `bands`."""
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = build_model(config.model, config.input_shape, config.num_classes, config.backbone, bands=bands)
    result = inference_rates(model, config, policy, voc, work, bands)
    loss = build_loss([1.0] * config.num_classes, dice_loss=True)  # train.py's default: CE + Dice
    result.update(train_rates(model, config, loss, voc, bands))

    peak, peak_basis = peak_gflops(policy)
    result["train_gflops"] = 3 * flops * result["train_bare"] / 1e9
    result["forward_gflops"] = flops * result["forward_bare"] / 1e9
    result.update(peak_gflops=peak, peak_basis=peak_basis, matmul_gflops=matmul_gflops(policy))
    result["train_matmul_share"] = result["train_gflops"] / result["matmul_gflops"]
    result["forward_matmul_share"] = result["forward_gflops"] / result["matmul_gflops"]
    if peak:
        result["train_peak_share"] = result["train_gflops"] / peak
        result["forward_peak_share"] = result["forward_gflops"] / peak
    keras.backend.clear_session()
    return result


def format_pipeline(report: dict, batch_size: int) -> str:
    """The two pipeline rows: train.py's default augmentation, and every option on."""
    pipeline, every = report["pipeline"], report["pipeline_all_options"]
    return (
        f"\ndata pipeline alone at {pipeline['pipeline_shape']}, default augmentation: "
        f"{pipeline['pipeline_samples_per_s']:.0f} samples/s; targets {pipeline['target_dtype']}, "
        f"{pipeline['target_bytes_per_batch'] / 2**20:.2f} MiB per batch of {batch_size} "
        f"(a float64 one-hot: {pipeline['float64_one_hot_bytes_per_batch'] / 2**20:.0f} MiB)\n"
        f"data pipeline alone, every option on (rotation, 90 degrees, vertical flip, shear, elastic, weight map): "
        f"{every['pipeline_samples_per_s']:.0f} samples/s "
        f"({every['pipeline_samples_per_s'] / pipeline['pipeline_samples_per_s']:.2f} of the default's); "
        f"targets {every['target_dtype']} (ids and weights)"
    )


def format_results(results: dict) -> str:
    """The per-precision figures side by side, with a mixed / fp32 column when both were measured."""
    policies = list(results)
    speedup = "float32" in policies and len(policies) > 1
    header = ["", *policies] + (["mixed / fp32"] if speedup else [])
    lines = []
    for key, label, style in ROWS:
        cells = [style.format(results[p][key]) if results[p].get(key) is not None else "-" for p in policies]
        if speedup:
            mixed = results[policies[-1]].get(key)
            ratio = mixed / results["float32"][key] if key in SPEEDUP_ROWS and mixed else None
            cells.append(f"{ratio:.2f}x" if ratio else "")
        lines.append([label, *cells])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        for row in [header, *lines]
    )


def network_of(config: BenchmarkConfig) -> BenchmarkConfig:
    """With model_path, the network that the weights file records (a flag contradicting it is refused); the
    rates do not depend on the weights' values, so the models are measured with fresh ones."""
    if not config.model_path:
        return config
    recorded = read_settings(config.model_path) if os.path.isfile(config.model_path) else None
    if recorded is None:
        raise ValueError(
            f"model_path={config.model_path!r}: not a weights file that records its settings (train.py's do). "
            "Give model, backbone and num_classes instead."
        )
    given = given_flags(BenchmarkConfig) & {"model", "backbone", "num_classes"}
    check_recorded(config.model_path, recorded, {name: getattr(config, name) for name in given})
    bands = recorded.bands
    if bands.channels not in (3, 4) or (bands.eight_bit and bands.channels != 3):
        raise ValueError(
            f"{config.model_path} takes {bands.describe()}; benchmark.py makes 8-bit RGB images or 16-bit ones of 3 or "
            "4 bands only. Give model, backbone and num_classes (and --image_bands) instead."
        )
    image_bands = 0 if bands.eight_bit else bands.channels
    network = {"model": recorded.model, "backbone": recorded.backbone, "num_classes": recorded.num_classes}
    return replace(config, **network, image_bands=image_bands)


def network_table(config: BenchmarkConfig, policies: list) -> dict:
    """benchmark.py --networks: the README's table of every model x backbone, and the light encoder's ratio."""
    measured = measure_networks(
        config.input_shape, config.num_classes, config.batch_size, policies, config.calls, config.network_steps
    )
    rows = measured["rows"]
    versions = f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
    print(f"\n{time.strftime('%Y-%m-%d')}, {machine_description()}, {versions}")
    print(f"{config.input_shape}, batch {config.batch_size}, {config.num_classes} classes")
    if config.network_steps:
        print(f"\nTraining step (train.py's: Adam, CE + Dice; the median of {config.network_steps} after 2 more):\n")
        print(format_training_table(rows, policies, measured["matmul_gflops"]))
    print(f"\nForward pass of prediction's network ({config.calls} calls each, median):\n")
    print(format_network_table(rows, policies))
    light, vgg = ("unet", "mobilenetv2"), ("unet", "vgg")
    for policy in policies:
        print(
            f"unet + mobilenetv2 / unet + vgg, {policy}: {ratio(rows, policy, light, vgg):.2f}x "
            f"(fastest calls: {ratio(rows, policy, light, vgg, 'fastest_images_per_s'):.2f}x)"
        )
    return {"machine": machine_description(), "networks": rows, "matmul_gflops": measured["matmul_gflops"]}


def check_config(config: BenchmarkConfig) -> None:
    """Raises ValueError for settings that cannot work, before anything is measured."""
    check_model_settings(config.model, config.input_shape, config.backbone)
    check_model_settings("unet", config.pipeline_shape)  # the pipeline alone: train.py's default augmentation
    if config.steps < 2 or config.warmup < 1 or config.calls < 1 or config.repeats < 1 or config.network_steps < 0:
        raise ValueError(
            f"steps={config.steps}, warmup={config.warmup}, calls={config.calls}, repeats={config.repeats}, "
            f"network_steps={config.network_steps}: expected steps >= 2, network_steps >= 0 and the others >= 1."
        )
    if config.image_bands not in (0, 3, 4):
        raise ValueError(f"image_bands={config.image_bands}: expected 0 (8-bit RGB JPEGs), 3 or 4 (16-bit TIFFs).")
    if config.optimizer_type not in ("adam", "sgd"):
        raise ValueError(f"optimizer_type={config.optimizer_type!r}: expected adam or sgd.")
    unknown = [p for p in config.precision if p not in PRECISIONS]
    if unknown:
        raise ValueError(f"precision {unknown}: expected some of {', '.join(PRECISIONS)}.")


def write_json(report: dict, path: str) -> None:
    if path:
        with open(path, "w") as f:
            json.dump(report, f, indent=2)


def main(config: BenchmarkConfig) -> None:
    config = network_of(config)
    check_config(config)
    print("Benchmark:\n" + format_config(config))
    choices = {}
    for precision in config.precision:
        policy, reason = choose_precision(precision)
        choices.setdefault(policy, reason)
    print("Precisions: " + "; ".join(f"{policy} ({why})" for policy, why in choices.items()))
    if config.networks:
        write_json(network_table(config, list(choices)), config.json)
        return

    bands = Bands(
        config.image_bands or 3, "uint16" if config.image_bands else "uint8", ((0.0, 1.0),) * config.image_bands
    )
    network = build_model(config.model, config.input_shape, config.num_classes, config.backbone, bands=bands)
    flops, margin = count_flops(network), output_margin(network)
    del network
    keras.backend.clear_session()
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "config": asdict(config),
        "gflops_per_image": flops / 1e9,
    }
    print(f"Machine: {report['machine']}\nModel: {flops / 1e9:.1f} GFLOPs per {config.input_shape} image (forward)")

    with tempfile.TemporaryDirectory() as work:
        # Images at the input size, so the rates are the network's and not a resize's.
        num_train = 2 * config.steps * config.batch_size
        num_val = config.calls * config.batch_size  # one pass of the get_miou path
        voc = os.path.join(work, "VOCdevkit")
        # A tiling model (unet_classic) gets images of its output's size: one tile each, as the bare call.
        size = max(config.input_shape) - 2 * margin
        val_share, bands = num_val / (num_train + num_val), config.image_bands
        make_demo_dataset(voc, num_train + num_val, size, val_share=val_share, bands=bands)
        pipeline_voc = os.path.join(work, "pipeline")
        make_demo_dataset(pipeline_voc, 32, max(config.pipeline_shape), bands=bands)
        report["pipeline"] = pipeline_rate(config, pipeline_voc)
        report["pipeline_all_options"] = pipeline_rate(config, pipeline_voc, *ALL_OPTIONS)
        if config.pipeline_only:
            print(format_pipeline(report, config.batch_size))
            return
        bands = survey([image for image, _ in split_samples(voc, "train")])  # as train.py finds them, once
        report["results"] = {policy: measure_precision(config, policy, flops, voc, work, bands) for policy in choices}

    print_report(report, config, flops)
    write_json(report, config.json)
    if config.json:
        print(f"Results in {config.json}")


def print_report(report: dict, config: BenchmarkConfig, flops: int) -> None:
    print(f"\n{report['date']}, {report['machine']}, TensorFlow {report['tensorflow']}, Keras {report['keras']}")
    name = f"{config.backbone} UNet" if config.model == "unet" else config.model
    print(f"{name}, {config.input_shape}, batch {config.batch_size}, {flops / 1e9:.1f} GFLOPs/image\n")
    print(format_results(report["results"]))
    print(format_pipeline(report, config.batch_size))
    for policy, result in report["results"].items():
        print(f"peak {policy}: {result['peak_basis']}")


if __name__ == "__main__":
    run_main(main, BenchmarkConfig, __doc__)
