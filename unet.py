"""The Unet predictor: loads trained weights once and segments images. predict.py and get_miou.py use it.

The weights file says what network it is (train.py records it); the settings in UnetConfig can be overridden
per instance:

    from PIL import Image
    from unet import Unet

    unet = Unet(model_path="logs/best_epoch_weights.weights.h5")
    unet.detect_image(Image.open("img/shapes_1.jpg")).save("out.png")   # mask blended with the image
    unet.get_miou_png(Image.open("img/shapes_1.jpg"))                    # class ids at the image's size
"""

import os
import time
from dataclasses import dataclass, field, fields, replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log (e.g. no CUDA on a CPU machine)

import numpy as np
from PIL import Image

from nets.ensemble import build_ensemble
from nets.folding import fold_batch_norms
from nets.heads import multilabel_count
from nets.models import Network, check_model_settings, output_shape
from nets.unet import UnetVariant, model_variant
from utils.config import format_config
from utils.files.bands import Bands, display_image, image_array
from utils.files.images import check_num_classes
from utils.multilabel import set_names
from utils.precision import set_precision
from utils.prediction.backends import BACKENDS, choose_backend
from utils.prediction.inputs import build_predict_dataset
from utils.prediction.onnx_model import OnnxModel
from utils.prediction.openvino_model import OpenvinoModel
from utils.prediction.path import prediction_path
from utils.prediction.postprocess import PostProcessing, read_postprocessing, sidecar_path
from utils.prediction.scores import ClassScores, check_threshold, predict_function
from utils.prediction.tta import TestTimeAugmentation
from utils.scale import Scale, check_scale_settings, resolve_scale_mode
from utils.visualize import MIX_TYPES, class_names, count_table, palette_image, render_image, value_colours
from utils.weights.building import build_member, build_with_weights
from utils.weights.checkpoint import ModelSettings, check_recorded, read_settings, settings_for
from utils.weights.mismatch import check_trained_weights_file


@dataclass
class UnetConfig:
    model_path: str = "logs/best_epoch_weights.weights.h5"  # weights written by train.py (they record the settings)
    num_classes: int | None = None  # classes including the background; None = as the weights file records
    model: str | None = None  # network: unet | deeplabv3plus | fcn8 | unet_classic | unet_small; None = as recorded
    backbone: str | None = None  # vgg | resnet50 | mobilenetv2 | efficientnetv2b0; None = as recorded
    input_shape: list[int] | None = None  # network input (height width); None = as trained; others work too
    scale_mode: str | None = None  # fit (image into input_shape) | slide (own size, sliding window); None = as trained
    image_scale: float | None = None  # slide: images at this scale; None = as trained
    overlap: float = 0.25  # slide: share of a window that the next one overlaps (blended)
    threshold: float = 0.5  # 2 classes: class 1 where its probability > threshold (trades precision for recall)
    tta: list[str] = field(default_factory=list)  # test-time augmentation: hflip, vflip, scales (0.75 1.25)
    mix_type: int = 0  # 0 = mask blended with the image, 1 = mask only, 2 = image with the background removed
    colors: list[str] = field(default_factory=list)  # one #rrggbb per class; empty = VOC palette (generated beyond 21)
    display_bands: list[int] = field(default_factory=list)  # bands drawn as R G B (e.g. 3 2 1); empty = first three
    precision: str = "auto"  # fp32 | mixed_bfloat16 | mixed_float16 | auto (as in train.py)
    backend: str = "auto"  # keras (weights) | onnx (a model.onnx) | openvino (an openvino/model.xml) from export.py |
    # auto: the fastest that export.py measured for these weights on this machine, else keras (prediction/backends.py)
    ensemble: list[str] = field(default_factory=list)  # more weights files of this network: probabilities averaged
    postprocess: str = "auto"  # auto: as recorded beside model_path (get_miou.py --postprocess choose) | none


# What a weights file that records no settings (from before they were recorded, or from another repo) is taken
# as, unless the settings are given: the demo's network.
UNRECORDED = {
    "model": "unet",
    "backbone": "vgg",
    "num_classes": 4,
    "input_shape": [64, 64],
    "scale_mode": "auto",
    "image_scale": 1.0,
}


def unet_settings(config) -> dict:
    """The UnetConfig fields of a script's config (predict.py's and get_miou.py's extend UnetConfig)."""
    return {f.name: getattr(config, f.name) for f in fields(UnetConfig)}


def exported_model(config: UnetConfig):
    """model_path opened by its runtime for an exported backend (onnx, openvino); None for keras weights (and auto,
    whose record of speeds is of a weights file)."""
    if config.backend not in BACKENDS:
        raise ValueError(f"backend={config.backend!r}: expected one of {', '.join(BACKENDS)}.")
    runtime = {"onnx": OnnxModel, "openvino": OpenvinoModel}.get(config.backend)
    return runtime(config.model_path) if runtime else None


def recorded_settings(config: UnetConfig, onnx: OnnxModel = None):
    """The ModelSettings that model_path records (a weights file's attribute, an ONNX file's metadata), or None.
    An ONNX file exported before the settings were recorded still tells its input size and classes.

    Args:
        onnx: model_path already opened, for backend onnx or openvino (opened here when not given).
    """
    if config.backend in ("auto", "keras"):
        check_trained_weights_file(config.model_path)
        return read_settings(config.model_path)
    onnx = onnx or exported_model(config)
    if onnx.settings:
        return onnx.settings
    tiles = onnx.output_shape[1] != onnx.input_shape[1]
    model = config.model or ("unet_classic" if tiles else "unet")
    shape, scale_mode = tuple(onnx.input_shape[1:3]), resolve_scale_mode("auto", model)
    channels = onnx.output_shape[-1]  # one: a sigmoid head's P(class 1)
    head, num_classes = ("sigmoid", 2) if channels == 1 else ("softmax", channels)
    return ModelSettings(model, config.backbone or "vgg", num_classes, shape, scale_mode=scale_mode, head=head)


def resolve_settings(config: UnetConfig, recorded) -> UnetConfig:
    """The config with each unset (None) network setting taken from the file's recorded settings, or from
    UNRECORDED for a file that records none. A setting given explicitly that contradicts the file is refused;
    input_shape may differ (the networks are convolutional: another input size works, checked per model), and so
    may overlap (a prediction setting).

    Raises:
        ValueError: naming the setting, the value given and the value the file was trained with.
    """
    if config.scale_mode == "auto":  # the network's own mode: as the file records it
        config = replace(config, scale_mode=None)
    source = recorded and {name: getattr(recorded, name) for name in UNRECORDED}
    if source:
        source["input_shape"] = list(source["input_shape"])
    if recorded:
        given = {name: getattr(config, name) for name in ("model", "backbone", "num_classes", "scale_mode")}
        given["image_scale"] = config.image_scale
        check_recorded(config.model_path, recorded, {name: value for name, value in given.items() if value is not None})
    filled = {name: value for name, value in (source or UNRECORDED).items() if getattr(config, name) is None}
    config = replace(config, **filled)
    check_num_classes(config.num_classes, allow_one=recorded and recorded.head == "multilabel")
    check_model_settings(config.model, config.input_shape, config.backbone)
    check_scale_settings(config.scale_mode, config.image_scale, config.overlap)
    return replace(config, scale_mode=resolve_scale_mode(config.scale_mode, config.model))


def check_onnx(config: UnetConfig, model: OnnxModel, head: str) -> OnnxModel:
    """The ONNX model of model_path, checked against input_shape, num_classes, model and head; a dynamic-size one
    (export.py's) is taken at input_shape."""
    expected = output_shape(config.model, config.input_shape, config.num_classes, head)
    if model.dynamic and model.output_shape[-1] == expected[-1]:
        model.pin(config.input_shape, expected[:2])
    if list(model.input_shape[1:3]) != list(config.input_shape) or tuple(model.output_shape[1:]) != expected:
        raise ValueError(
            f"{config.model_path} takes {list(model.input_shape[1:3])} and gives {list(model.output_shape[1:])}, but "
            f"input_shape={config.input_shape} and num_classes={config.num_classes} (model={config.model}) give "
            f"{list(expected)}. Set them as for the export."
        )
    runtime = (
        f"onnxruntime: {', '.join(model.session.get_providers())}" if config.backend == "onnx" else "OpenVINO, CPU"
    )
    print(f"Loaded {config.model_path} ({runtime})")
    return model


def recorded_postprocessing(config: UnetConfig, names) -> PostProcessing:
    """The post-processing recorded beside model_path (postprocess auto; said when there is one), or none."""
    if config.postprocess not in ("auto", "none", "choose"):
        raise ValueError(f"postprocess={config.postprocess!r}: expected auto, none (or, in get_miou.py, choose).")
    found = read_postprocessing(config.model_path) if config.postprocess == "auto" else None
    if not found:
        return PostProcessing()
    chosen, record = found
    print(
        f"Post-processing: {chosen.describe(class_names(names, config.num_classes)[0])} (chosen on "
        f"{record.get('split_file') or record.get('chosen_on', 'a val split')}; {sidecar_path(config.model_path)}; "
        "--postprocess none: without)"
    )
    if "ensemble" in record and list(record["ensemble"]) != list(config.ensemble):
        print(
            f"  Note: it was chosen for the ensemble {record['ensemble']}, and this run's is {list(config.ensemble)}."
        )
    return chosen


class Unet:
    """Segments images with a trained network (any `model`); every method goes through the same prediction path:

    scale_mode fit: RGB uint8 -> letterbox to input_shape -> model (compiled call; it preprocesses for its
    backbone itself) -> crop the letterbox -> resize the probabilities to the original size -> argmax.
    scale_mode slide: RGB uint8 at image_scale -> input_shape windows, `overlap` apart, through the model ->
    blended probabilities -> argmax (utils/prediction/sliding.py); the classic UNet's overlap-tile is this with its
    margin.
    """

    def __init__(self, **overrides):
        unknown = sorted(set(overrides) - {f.name for f in fields(UnetConfig)})
        if unknown:
            raise ValueError(
                f"Unet got unknown settings {unknown}; expected some of {[f.name for f in fields(UnetConfig)]}."
            )
        config = replace(UnetConfig(), **overrides)
        weights_path = config.model_path  # what a post-processing record is beside (backend auto may take an export)
        choice = choose_backend(config.backend, config.model_path, config.precision, bool(config.ensemble))
        config = replace(config, backend=choice.backend, model_path=choice.model_path)
        onnx = exported_model(config)  # an export's runtime (onnx, openvino), opened once; None for keras
        recorded = recorded_settings(config, onnx)
        self.config = config = resolve_settings(config, recorded)
        self.class_names = list(recorded.class_names) if recorded else []  # background first; [] = unnamed
        self.bands = recorded.bands if recorded else Bands()  # what the images are: 8-bit RGB unless recorded
        head = recorded.head if recorded else "softmax"
        if config.mix_type not in MIX_TYPES:
            raise ValueError(
                f"mix_type={config.mix_type}: expected 0 (blend), 1 (mask only) or 2 (background removed)."
            )
        check_threshold(config.threshold, config.num_classes, head)
        tta = TestTimeAugmentation.parse(config.tta)
        self.colours = value_colours(config.num_classes, head, config.colors)
        self.multilabel = multilabel_count(config.num_classes, head)  # overlapping classes a mask's bits hold, or 0
        print("Unet:\n" + format_config(config))
        if choice.reason:
            print(f"Backend: {choice.reason}")
        precision = set_precision(config.precision)
        print(precision if config.backend == "keras" else f"Precision: float32 (the {config.backend} export's)")
        described = Network(config.model, config.backbone, config.num_classes, tuple(config.input_shape), head)
        if onnx is not None:
            self.model = check_onnx(config, onnx, head)
        else:
            self.model = build_with_weights(described, config.model_path, bands=self.bands)  # the file checked above
        variant = model_variant(self.model) if config.backend == "keras" else UnetVariant()
        self.scale = Scale(config.scale_mode, config.image_scale, config.overlap)
        # What the network is, as a weights file records it (export.py writes it into model.onnx too).
        self.settings = settings_for(described, variant, self.class_names, self.bands, self.scale)
        # What every prediction runs: the network with its batch normalisations folded into its convolutions
        # (nets/folding.py; the network itself when it has none, and the ONNX model as it is); an ensemble's
        # networks averaged (nets/ensemble.py).
        self.network = fold_batch_norms(self.model) if config.backend == "keras" else self.model
        if config.ensemble:
            if config.backend != "keras":
                raise ValueError(f"ensemble with backend={config.backend}: ensembles run on keras weights files.")
            members = [build_member(path, config.model_path, recorded, described) for path in config.ensemble]
            self.network = build_ensemble([self.network] + [fold_batch_norms(member) for member in members])
            print(f"Ensemble: the probabilities of {len(members) + 1} networks averaged")
        self.make_paths(ClassScores(self.network, config.threshold, tta, head))
        if tta.copies > 1:
            print(f"Test-time augmentation: {tta.describe()}, one call")
        self.postprocessing = recorded_postprocessing(replace(config, model_path=weights_path), self.class_names)
        if not self.bands.eight_bit or self.bands.channels != 3:
            print(f"Images: {self.bands.describe()}")

    def make_paths(self, scores: ClassScores) -> None:
        """The compiled prediction functions, around the network as class scores (a sigmoid head's p as two classes;
        2 classes at the threshold; the copies of test-time augmentation)."""
        self.scores = scores
        self.predict = predict_function(scores)  # the bare model call, for benchmarks
        self.path = prediction_path(scores, self.scale, self.bands)

    def set_threshold(self, threshold: float) -> None:
        """Class 1 where its probability > threshold, from the next call on (2-class networks): new compiled
        functions, the same network."""
        self.make_paths(ClassScores(self.network, threshold, self.scores.tta, self.scores.head))
        self.config = replace(self.config, threshold=threshold)

    def segment(self, images) -> list:
        """The prediction path for images in memory: arrays (h, w, bands) of any sizes, as the network takes them
        (image_array) -> class-id masks uint8 (h, w) at those sizes. One compiled call per image (letterbox, model,
        restore); for many files, segment_files batches them."""
        return [self.postprocessing.apply(np.asarray(self.path.image_mask(image))) for image in images]

    def probabilities(self, image):
        """The class probabilities of an image (h, w, bands) as the network takes it, at its size, a band of rows
        at a time: yields (top, float32 (rows, w, C)), summing to 1 over C (prediction/path.py)."""
        return self.path.probabilities(image)

    def picture(self, image: np.ndarray) -> np.ndarray:
        """uint8 (h, w, 3) to draw a prediction on, of an image as the network takes it: display_bands as R, G, B,
        16-bit and float images stretched to 8 bits (bands.display_image)."""
        return display_image(image, self.bands, self.config.display_bands)

    def segment_files(self, paths, batch_size: int = 4):
        """The batch entry point for image files: one compiled call per batch (prediction/inputs.build_predict_dataset
        says when the files are read ahead of the model and when in turn with it).

        Yields, in the order of `paths`: (path, image (h, w, bands) as the network takes it, mask uint8 (h, w), "")
        for a readable image, (path, None, None, why) for a file that cannot be read as an image or does not fit
        the network's bands.
        """
        paths = [os.fspath(path) for path in paths]  # str or pathlib.Path
        if not paths:
            return
        reads = self.path.reads_per_batch(batch_size)
        batches = build_predict_dataset(paths, self.path.letterbox, reads, bands=self.bands)
        queue = iter(paths)
        for canvases, boxes, sizes, images, errors in batches:
            masks = np.asarray(self.path.masks(self.path.batch_input(canvases, images), boxes, sizes))
            for image, mask, (height, width), error in zip(images.numpy(), masks, sizes.numpy(), errors.numpy()):
                path = next(queue)
                if error:
                    yield path, None, None, error.decode()
                else:
                    yield path, image[:height, :width], self.postprocessing.apply(mask[:height, :width]), ""

    def write_masks(self, ids, paths, folder: str, batch_size: int = 4):
        """Writes <folder>/<id>.png for each image file: class ids at the image's size in palette colours (the
        detection-results that get_miou.py scores), yielding each id once its file is written.

        Raises:
            ValueError: naming an image that cannot be read.
        """
        os.makedirs(folder, exist_ok=True)
        for sample_id, (path, _, mask, error) in zip(ids, self.segment_files(paths, batch_size)):
            if error:
                raise ValueError(f"{path}: cannot be predicted ({error}). Fix it, or remove it from the split.")
            self.mask_image(mask).save(os.path.join(folder, f"{sample_id}.png"))
            yield sample_id

    def detect_image(self, image, count: bool = False, name_classes=None) -> Image.Image:
        """The prediction drawn as mix_type says, at the image's size. With count, prints pixels and area % per class.

        Args:
            image: PIL image, or an array (h, w[, bands]) as image_files.read_image gives it.
        """
        array = image_array(image, self.bands)
        mask = self.segment([array])[0]
        if count:
            names, note = class_names(name_classes or self.class_names, self.config.num_classes)
            names = set_names(names) if self.scores.head == "multilabel" else names
            print("\n".join(filter(None, [note, count_table(mask, names)])))
        return render_image(self.picture(array), mask, self.colours, self.config.mix_type)

    def get_miou_png(self, image) -> Image.Image:
        """Class ids at the image's size, as a palette PNG image: pixel values are the ids, shown in class colours."""
        return self.mask_image(self.segment([image_array(image, self.bands)])[0])

    def mask_image(self, mask: np.ndarray) -> Image.Image:
        """A uint8 (h, w) mask of class ids as a palette image."""
        return palette_image(mask, self.colours)

    def get_FPS(self, image, test_interval: int = 100) -> float:
        """Seconds per image of the prediction path (letterbox, model, restore, argmax), after one warm-up call."""
        array = image_array(image, self.bands)
        self.segment([array])  # traces the compiled functions
        start = time.perf_counter()
        for _ in range(test_interval):
            self.segment([array])
        return (time.perf_counter() - start) / test_interval
