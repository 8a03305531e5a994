"""The Unet predictor: loads trained weights once and segments images. predict.py and get_miou.py use it.

Edit the defaults in UnetConfig to match your training run, or override them per instance:

    from PIL import Image
    from unet import Unet

    unet = Unet(model_path="logs/best_epoch_weights.weights.h5", num_classes=2)
    unet.detect_image(Image.open("img/shapes_1.jpg")).save("out.png")   # mask blended with the image
    unet.get_miou_png(Image.open("img/shapes_1.jpg"))                    # class ids at the image's size
"""

import os
import time
from dataclasses import dataclass, field, fields, replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log (e.g. no CUDA on a CPU machine)

import numpy as np
from PIL import Image

from nets.models import build_model, check_model_settings, letterbox_size, output_shape
from nets.unet import UnetVariant
from utils.config import format_config
from utils.dataloader import build_predict_dataset
from utils.images import to_rgb
from utils.onnx_model import OnnxModel
from utils.precision import set_precision
from utils.prediction import predict_function, segment_function, segment_image_function
from utils.visualize import MIX_TYPES, class_colours, class_names, count_table, palette_image, render
from utils.weights.formats import weights_variant
from utils.weights.mismatch import check_trained_weights_file, load_trained_weights


@dataclass
class UnetConfig:
    model_path: str = "logs/best_epoch_weights.weights.h5"  # weights written by train.py
    num_classes: int = 4  # classes including the background, as in training (the demo data has 4)
    model: str = "unet"  # network, as in training: unet | fcn8 | unet_classic | unet_small
    backbone: str = "vgg"  # vgg | resnet50, as in training
    input_shape: list[int] = field(default_factory=lambda: [64, 64])  # network input (height width), as in training
    mix_type: int = 0  # 0 = mask blended with the image, 1 = mask only, 2 = image with the background removed
    colors: list[str] = field(default_factory=list)  # one #rrggbb per class; empty = VOC palette (generated beyond 21)
    precision: str = "auto"  # fp32 | mixed_bfloat16 | mixed_float16 | auto (as in train.py)
    backend: str = "keras"  # keras (model_path: weights) | onnx (model_path: a model.onnx from export.py)


def unet_settings(config) -> dict:
    """The UnetConfig fields of a script's config (predict.py's and get_miou.py's extend UnetConfig)."""
    return {f.name: getattr(config, f.name) for f in fields(UnetConfig)}


def load_onnx(config: UnetConfig) -> OnnxModel:
    """The ONNX model of model_path, checked against input_shape, num_classes and model."""
    model = OnnxModel(config.model_path)
    expected = output_shape(config.model, config.input_shape, config.num_classes)
    if list(model.input_shape[1:3]) != list(config.input_shape) or tuple(model.output_shape[1:]) != expected:
        raise ValueError(
            f"{config.model_path} takes {list(model.input_shape[1:3])} and gives {list(model.output_shape[1:])}, but "
            f"input_shape={config.input_shape} and num_classes={config.num_classes} (model={config.model}) give "
            f"{list(expected)}. Set them as for the export."
        )
    print(f"Loaded {config.model_path} (onnxruntime: {', '.join(model.session.get_providers())})")
    return model


def load_keras_model(config: UnetConfig):
    """The network of config with model_path's weights, built as the file was trained (UnetVariant)."""
    check_trained_weights_file(config.model_path)
    variant, known = weights_variant(config.model_path)
    model = build_model(config.model, config.input_shape, config.num_classes, config.backbone, variant)
    loading = load_trained_weights(model, config.model_path, config.model, config.backbone, config.num_classes)
    by_place = f", {len(loading.by_topology)} of them by place (unnamed in the file)" if loading.by_topology else ""
    print(f"Loaded {len(loading.loaded)} layers from {config.model_path}{by_place}")
    if variant != UnetVariant():
        print(f"  as trained: {variant.describe()} ({known})")
    return model


class Unet:
    """Segments images with a trained network (any `model`); every method goes through the same prediction path:

    RGB uint8 -> letterbox to input_shape -> model (compiled call; it preprocesses for its backbone itself)
    -> crop the letterbox -> resize the probabilities to the original size -> argmax.
    unet_classic, whose output is smaller than its input, instead predicts at the image's own size by
    overlap-tile with mirrored borders (utils/tiling.py).
    """

    def __init__(self, **overrides):
        unknown = sorted(set(overrides) - {f.name for f in fields(UnetConfig)})
        if unknown:
            raise ValueError(
                f"Unet got unknown settings {unknown}; expected some of {[f.name for f in fields(UnetConfig)]}."
            )
        self.config = config = replace(UnetConfig(), **overrides)
        check_model_settings(config.model, config.input_shape, config.backbone)
        if config.mix_type not in MIX_TYPES:
            raise ValueError(
                f"mix_type={config.mix_type}: expected 0 (blend), 1 (mask only) or 2 (background removed)."
            )
        self.colours = class_colours(config.num_classes, config.colors)
        print("Unet:\n" + format_config(config))
        print(set_precision(config.precision))
        if config.backend == "onnx":
            self.model = load_onnx(config)
        elif config.backend == "keras":
            self.model = load_keras_model(config)
        else:
            raise ValueError(f"backend={config.backend!r}: expected keras or onnx.")
        self.predict = predict_function(self.model)  # the bare model call, for benchmarks
        self._segment_batch = segment_function(self.model)
        self._segment_image = segment_image_function(self.model)

    def segment(self, images) -> list:
        """The prediction path for images in memory: RGB uint8 arrays (h, w, 3) of any sizes -> class-id
        masks uint8 (h, w) at those sizes. One compiled call per image (letterbox, model, restore); for many
        files, segment_files batches them."""
        return [self._segment_image(image).numpy() for image in images]

    def segment_files(self, paths, batch_size: int = 4):
        """The batch entry point for image files: one compiled call per batch (dataloader.build_predict_dataset
        says when the files are read ahead of the model and when in turn with it).

        Yields, in the order of `paths`: (path, image uint8 (h, w, 3), mask uint8 (h, w), "") for a readable
        image, (path, None, None, why) for a file that cannot be read as an image.
        """
        paths = [os.fspath(path) for path in paths]  # str or pathlib.Path
        if not paths:
            return
        batches = build_predict_dataset(paths, letterbox_size(self.model), batch_size)
        queue = iter(paths)
        for canvases, boxes, sizes, images, errors in batches:
            masks = self._segment_batch(canvases, boxes, sizes).numpy()
            for image, mask, (height, width), error in zip(images.numpy(), masks, sizes.numpy(), errors.numpy()):
                path = next(queue)
                if error:
                    yield path, None, None, error.decode()
                else:
                    yield path, image[:height, :width], mask[:height, :width], ""

    def write_masks(self, ids, paths, folder: str, batch_size: int = 4):
        """Writes <folder>/<id>.png for each image file: class ids at the image's size in palette colours (the
        detection-results that get_miou.py scores), yielding each id once its file is written.

        Raises:
            ValueError: naming an image that cannot be read.
        """
        os.makedirs(folder, exist_ok=True)
        for sample_id, (path, _, mask, error) in zip(ids, self.segment_files(paths, batch_size)):
            if error:
                raise ValueError(f"{path}: not an image that can be read ({error}). Fix or remove it from the split.")
            self.mask_image(mask).save(os.path.join(folder, f"{sample_id}.png"))
            yield sample_id

    def detect_image(self, image, count: bool = False, name_classes=None) -> Image.Image:
        """The prediction drawn as mix_type says, at the image's size. With count, prints pixels and area % per class.

        Args:
            image: PIL image (any mode) or RGB uint8 array (h, w, 3).
        """
        rgb = to_rgb(image)
        mask = self.segment([rgb])[0]
        if count:
            names, note = class_names(name_classes or [], self.config.num_classes)
            print("\n".join(filter(None, [note, count_table(mask, names)])))
        return Image.fromarray(render(rgb, mask, self.colours, self.config.mix_type))

    def get_miou_png(self, image) -> Image.Image:
        """Class ids at the image's size, as a palette PNG image: pixel values are the ids, shown in class colours."""
        return self.mask_image(self.segment([to_rgb(image)])[0])

    def mask_image(self, mask: np.ndarray) -> Image.Image:
        """A uint8 (h, w) mask of class ids as a palette image."""
        return palette_image(mask, self.colours)

    def get_FPS(self, image, test_interval: int = 100) -> float:
        """Seconds per image of the prediction path (letterbox, model, restore, argmax), after one warm-up call."""
        rgb = to_rgb(image)
        self.segment([rgb])  # traces the compiled functions
        start = time.perf_counter()
        for _ in range(test_interval):
            self.segment([rgb])
        return (time.perf_counter() - start) / test_interval
