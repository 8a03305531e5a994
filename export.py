r"""Export a trained model for deployment, each format checked against the Keras model on real images.

The settings default to UnetConfig in unet.py (the weights file records the network's); the rest to ExportConfig:

    $ python export.py                                   # logs/best_epoch_weights.weights.h5 -> export/
    $ python export.py --model_path logs/best_epoch_weights.weights.h5 \
          --parity_images ../shared/datasets/membrane/VOC2007/JPEGImages --formats savedmodel tflite_fp16

Formats (written to export_dir):
    savedmodel    saved_model/, TensorFlow's SavedModel (keras Model.export): serve(images) for TF Serving / TF.js.
    onnx          model.onnx (tf2onnx, opset 17; needs pip install -r requirements-export.txt), of any input height and
                  width the network takes (multiples of its stride; unet_classic: 188 + 16k), checked at two of them
                  besides input_shape; unet.py runs it with onnxruntime: Unet(backend="onnx",
                  model_path="export/model.onnx"), at its input_shape.
    openvino      openvino/model.xml + model.bin, OpenVINO's IR for Intel CPUs, GPUs and NPUs (openvino.convert_model of
                  the SavedModel; needs pip install -r requirements-export.txt); Unet(backend="openvino") runs it
    tflite_fp32   model_fp32.tflite
    tflite_fp16   model_fp16.tflite, float16 weights (half the size)
    tflite_int8   model_int8.tflite, full-integer int8 (weights, activations, input and output; a quarter of the
                  size), its ranges calibrated on up to calibration_count images of the train split of
                  vocdevkit_path; checked on its val split as predicted: classes agree on >= 98 % of the pixels and
                  the mIoU is within 1 point of the float model's

Every exported model takes what the network takes: float32 (B, H, W, C) at input_shape (the letterboxed image; for
unet_classic one input tile), its C bands' values as the image files hold them (8-bit RGB: [0, 255]; 16-bit and float
images are stretched by the ranges recorded in the network's first layer, which the export carries), and returns
float32 softmax probabilities. The batch is
dynamic in the SavedModel and the ONNX model (H and W: input_shape, but any size in the ONNX model; an ensemble's
is of input_shape), 1 in the TFLite files. After
each export the parity check runs the Keras model and the export on letterboxed real images and prints the
largest probability difference and the share of pixels whose class agrees; it fails (exit 1) past 1e-4 /
99.9 % for the float32 formats, 99.9 % for float16 and 99 % for int8.

After onnx and openvino pass, the Keras network (at speed_precision, prediction's precision) and their runtimes are
timed on the parity images, taking turns, and the figures are recorded beside the weights file
(<weights>.backends.json). predict.py and get_miou.py, whose backend is auto unless given, then run the fastest of
them on this machine (utils/prediction/backends.py).
"""

import os
import random
import sys
import time
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log (e.g. no CUDA on a CPU machine)

import numpy as np
import tensorflow as tf

from nets.dynamic import any_size_twin
from nets.folding import fold_batch_norms
from nets.heads import label_value_count, multilabel_count
from nets.models import build_model, nearby_sizes
from unet import Unet, UnetConfig, unet_settings
from utils.config import run_main
from utils.files.atomic import check_writable
from utils.files.bands import Bands, read_input
from utils.files.images import IGNORE_LABEL, IMAGE_SUFFIXES, image_files, load_label, split_samples
from utils.letterbox import letterbox
from utils.metrics import class_iou, confusion_matrix, nan_mean
from utils.precision import choose_precision
from utils.prediction.backends import write_speed_record
from utils.prediction.onnx_model import OnnxModel, write_onnx
from utils.prediction.openvino_model import OpenvinoModel, write_openvino
from utils.prediction.path import prediction_path
from utils.prediction.scores import ClassScores, output_class_ids
from utils.prediction.tflite_model import TfliteModel, tflite_bytes

INT8_AGREEMENT, INT8_MIOU = 0.98, 1.0  # tflite_int8 on the val split: the least agreement, the most mIoU points off

FORMATS = ("savedmodel", "onnx", "openvino", "tflite_fp32", "tflite_fp16", "tflite_int8")
# format -> (largest |probability difference| allowed or None, smallest share of pixels whose class agrees)
TOLERANCES = {
    "savedmodel": (1e-4, 0.999),
    "onnx": (1e-4, 0.999),
    "openvino": (1e-4, 0.999),
    "tflite_fp32": (1e-4, 0.999),
    "tflite_fp16": (None, 0.999),
    "tflite_int8": (None, 0.99),
}


@dataclass
class ExportConfig(UnetConfig):
    precision: str = "fp32"  # exports are float32 graphs (TFLite quantises its own way)
    export_dir: str = "export"  # where the exported files go
    formats: list[str] = field(default_factory=lambda: list(FORMATS))  # savedmodel onnx tflite_fp32 _fp16 _int8
    parity_images: str = "VOCdevkit/VOC2007/JPEGImages"  # a folder of real images for the parity check
    parity_count: int = 8  # images of it to check on
    vocdevkit_path: str = "VOCdevkit"  # tflite_int8: calibrated on its train split, checked on its val split
    calibration_count: int = 64  # tflite_int8: train images its ranges are calibrated on
    backend: str = "keras"  # what is exported: a Keras weights file from train.py
    speed_precision: str = "auto"  # onnx, openvino: Keras is timed beside them at this precision (predict.py's)


def parity_paths(folder: str, count: int) -> list:
    """Up to `count` images of the folder for the parity check; a ValueError when it has none."""
    paths = image_files(folder)[:count]
    if not paths:
        raise ValueError(
            f"parity_images={folder!r}: no images there (expected {', '.join(IMAGE_SUFFIXES)}). The parity check "
            "needs real images: point parity_images at a folder of them, e.g. your dataset's JPEGImages."
        )
    return paths


def parity_batch(paths, input_shape, bands: Bands) -> np.ndarray:
    """float32 (N, H, W, C): the images, as the network takes them (bands), letterboxed as the predictor feeds them."""
    images = [letterbox(read_input(p, bands), tuple(input_shape), bands.fill)[0].numpy() for p in paths]
    return np.stack(images).astype(np.float32)


def parity(reference: np.ndarray, exported: np.ndarray, name: str, head: str = "softmax") -> tuple:
    """(passed, a line saying so): the largest |probability difference| and the class agreement of an export."""
    largest = float(np.abs(reference - exported).max())
    agreement = float((output_class_ids(reference, head) == output_class_ids(exported, head)).mean())
    limit, share = TOLERANCES[name]
    passed = agreement >= share and (limit is None or largest <= limit)
    wanted = f"<= {limit:g}, " if limit is not None else ""
    line = f"  {name:12s} max |dprob| {largest:.2e}, classes agree on {agreement:.4%} of pixels "
    return passed, line + f"(wanted {wanted}>= {share:.1%}): {'ok' if passed else 'FAILED'}"


def dynamic_twin(unet: Unet):
    """The trained network built for any input size (None, None), holding its weights (unfolded: the reference)."""
    s = unet.settings

    def build(size):
        return build_model(s.model, size, s.num_classes, s.backbone, s.variant, unet.bands, s.head)

    return any_size_twin(build, unet.model)


def onnx_parity(unet: Unet, paths, path: str, images, reference) -> tuple:
    """Writes model.onnx (of any input size but for an ensemble) and returns (parity()'s results: at input_shape and,
    for a dynamic model, at nearby_sizes against the Keras network built at any size; the file's OnnxModel)."""
    twin = None if unet.config.ensemble else dynamic_twin(unet)
    write_onnx(fold_batch_norms(twin) if twin else unet.network, path, unet.settings)  # settings, as the weights'
    onnx, head = OnnxModel(path), unet.settings.head
    results = [parity(reference, onnx.run(images), "onnx", head)]
    for size in nearby_sizes(unet.config.model, unet.config.input_shape) if twin else []:
        resized = parity_batch(paths, size, unet.bands)
        passed, line = parity(twin(resized, training=False).numpy(), onnx.run(resized), "onnx", head)
        results.append((passed, line.replace("onnx        ", f"  at {size[0]}x{size[1]}", 1)))
    return results, onnx


def calibration_batch(config: ExportConfig, unet: Unet, fallback: list) -> tuple:
    """(images (N, H, W, C) letterboxed as the predictor feeds them, where from): up to calibration_count images of
    the train split, or of parity_images when the dataset has none."""
    train = os.path.join(config.vocdevkit_path, "VOC2007", "ImageSets", "Segmentation", "train.txt")
    if os.path.isfile(train):
        paths = [image for image, _ in split_samples(config.vocdevkit_path, "train")]
        paths = random.Random(0).sample(paths, min(config.calibration_count, len(paths)))
        return parity_batch(paths, unet.config.input_shape, unet.bands), f"{len(paths)} images of {train}"
    return parity_batch(fallback, unet.config.input_shape, unet.bands), f"{len(fallback)} parity images (no {train})"


def int8_on_val(config: ExportConfig, unet: Unet, content: bytes) -> list:
    """parity()'s results for the int8 model on the val split by the prediction path (letterbox or slide, restored
    to each image's size), against the float network's: the share of pixels whose class agrees (>= INT8_AGREEMENT)
    and the mIoU of both against the labels (within INT8_MIOU points); [] when the dataset has no val split."""
    if not os.path.isfile(os.path.join(config.vocdevkit_path, "VOC2007", "ImageSets", "Segmentation", "val.txt")):
        return []
    head, num_classes = unet.settings.head, unet.config.num_classes
    quantised = prediction_path(ClassScores(TfliteModel(content), head=head), unet.scale, unet.bands)
    values, multilabel = label_value_count(num_classes, head), multilabel_count(num_classes, head)
    matrices, agree, counted = [np.zeros((values, values), np.int64) for _ in range(2)], 0, 0
    samples = split_samples(config.vocdevkit_path, "val")
    for image_path, label_path in samples:
        image, label = read_input(image_path, unet.bands), load_label(label_path)
        if label[label != IGNORE_LABEL].max(initial=0) >= values:
            raise ValueError(
                f"{label_path}: class {label[label != IGNORE_LABEL].max()}, but the model has {values} classes: the "
                "int8 check runs on the val split of the model's own dataset. Point --vocdevkit_path at it."
            )
        masks = [np.asarray(unet.path.image_mask(image)), np.asarray(quantised.image_mask(image))]
        valid = label != IGNORE_LABEL
        agree, counted = agree + int((masks[0] == masks[1])[valid].sum()), counted + int(valid.sum())
        for matrix, mask in zip(matrices, masks):
            matrix += confusion_matrix(label, mask, values)
    float_miou, int8_miou = (100 * nan_mean(class_iou(m, multilabel)) for m in matrices)
    share = agree / max(counted, 1)
    passed = share >= INT8_AGREEMENT and abs(float_miou - int8_miou) <= INT8_MIOU
    line = f"    on the val split ({len(samples)} images, as predicted): classes agree on {share:.4%} of pixels "
    line += f"(wanted >= {INT8_AGREEMENT:.0%}); mIoU {int8_miou:.2f} against the float model's {float_miou:.2f} "
    return [(passed, line + f"(wanted within {INT8_MIOU:g}): {'ok' if passed else 'FAILED'}")]


def speed_rates(calls: dict, count: int, rounds: int = 5) -> dict:
    """{name: images/s of its fastest call}: each call on the same `count` images, taking turns call by call (the
    machine's load falls on all alike), after a warm-up call each (tracing, the runtime's first allocations)."""
    for call in calls.values():
        call()
    seconds = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
    return {name: count / min(times) for name, times in seconds.items()}


def measure_backends(config: ExportConfig, unet: Unet, runtimes: dict, files: dict, images) -> str:
    """The CPU prediction's backends timed on the parity images: the Keras network at the precision prediction runs
    it (speed_precision; the export's own `unet` where that is its precision too, as on a CPU without bf16) and each
    exported runtime that passed parity. Recorded beside the weights file for backend auto (prediction/backends.py)
    when its folder is writable; returns the table, naming the fastest."""
    policy = choose_precision(config.speed_precision)[0]
    same = policy == choose_precision(config.precision)[0]
    keras_unet = unet if same else Unet(**{**unet_settings(config), "precision": config.speed_precision})
    calls = {"keras": lambda: keras_unet.predict(images).numpy()}
    rates = speed_rates({**calls, **{name: lambda run=run: run(images) for name, run in runtimes.items()}}, len(images))
    fastest = max(rates, key=rates.get)
    lines = [
        f"  {name + (f' ({policy})' if name == 'keras' else ''):<24} {rate:8.2f} img/s" for name, rate in rates.items()
    ]
    try:
        recorded = f"recorded in {write_speed_record(config.model_path, rates, files, policy)}: "
        recorded += "predict.py and get_miou.py take the fastest (--backend auto, their default)"
    except OSError as error:
        recorded = f"not recorded beside {config.model_path} ({error}); --backend {fastest} picks it"
    return "Speed on this machine (fastest of 5 calls each):\n" + "\n".join(lines) + f"\nFastest: {fastest}; {recorded}"


def main(config: ExportConfig) -> None:
    unknown = [name for name in config.formats if name not in FORMATS]
    if unknown or not config.formats:
        raise ValueError(f"formats={config.formats}: expected some of {', '.join(FORMATS)}.")
    if config.backend != "keras":
        raise ValueError(
            f"backend={config.backend!r}: export.py exports a Keras weights file from train.py (model_path); an ONNX "
            "file is already an export. Leave backend at keras and give the weights file."
        )
    paths = parity_paths(config.parity_images, config.parity_count)  # before the slow part: the model
    check_writable(config.export_dir, "export_dir", "export2")
    unet = Unet(**unet_settings(config))
    images = parity_batch(paths, unet.config.input_shape, unet.bands)
    # The trained network, as train.py left it; an ensemble (--ensemble: exported as one network) its own average.
    reference = (unet.network if config.ensemble else unet.model)(images, training=False).numpy()
    os.makedirs(config.export_dir, exist_ok=True)
    saved_model = os.path.join(config.export_dir, "saved_model")
    # The exports are of the prediction path's network (batch normalisations folded), checked against the reference.
    unet.network.export(saved_model, verbose=False)  # every TFLite file is converted from it
    lines, failed, head, runtimes, files = [], [], unet.settings.head, {}, {}
    for name in config.formats:
        if name == "savedmodel":
            loaded = tf.saved_model.load(saved_model)  # held: its functions reference its variables
            path, checks = saved_model, [parity(reference, loaded.serve(images).numpy(), name, head)]
        elif name == "onnx":
            path = os.path.join(config.export_dir, "model.onnx")
            checks, onnx = onnx_parity(unet, paths, path, images, reference)
            runtimes["onnx"], files["onnx"] = onnx.run, path  # the session parity ran, not a second one
        elif name == "openvino":
            path = os.path.join(config.export_dir, "openvino", "model.xml")
            write_openvino(saved_model, path, unet.settings)
            runtimes["openvino"], files["openvino"] = OpenvinoModel(path).run, path
            checks = [parity(reference, runtimes["openvino"](images), name, head)]
        else:
            calibration, source = calibration_batch(config, unet, paths) if name == "tflite_int8" else (None, "")
            model = tflite_bytes(saved_model, name, calibration)
            path = os.path.join(config.export_dir, f"model_{name.split('_')[1]}.tflite")
            with open(path, "wb") as f:
                f.write(model)
            checks = [parity(reference, TfliteModel(model).run(images), name, head)]
            checks += int8_on_val(config, unet, model) if name == "tflite_int8" else []
            path += f" (calibrated on {source})" if source else ""
        lines += [f"{checks[0][1]}\n    -> {path}"] + [line for _, line in checks[1:]]
        failed += [] if all(passed for passed, _ in checks) else [name]
    print(f"Parity on {len(images)} images of {config.parity_images}:\n" + "\n".join(lines))
    if failed:
        print(f"Export parity FAILED for {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)
    if runtimes and not config.ensemble:
        print(measure_backends(config, unet, runtimes, files, images))


if __name__ == "__main__":
    run_main(main, ExportConfig, __doc__)
