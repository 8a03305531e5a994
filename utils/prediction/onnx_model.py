"""ONNX: a Keras model written as model.onnx (tf2onnx), and such a file run by onnxruntime, shaped like the Keras
model for the prediction path."""

import numpy as np
import tensorflow as tf

from utils.files.paths import check_file
from utils.prediction.runtime import RuntimeModel
from utils.weights.checkpoint import SETTINGS_ATTR, ModelSettings

ONNX_OPSET = 17


class OnnxModel(RuntimeModel):
    """model.onnx run by onnxruntime, behind what the prediction path uses of a Keras model (RuntimeModel)."""

    def __init__(self, path: str):
        try:
            import onnxruntime
        except ImportError:
            raise ValueError("backend='onnx' needs onnxruntime: pip install -r requirements-export.txt") from None
        check_file(
            path, "model_path", "an ONNX file", (".onnx",), "Export one with python export.py (model.onnx in export/)."
        )
        try:
            self.session = onnxruntime.InferenceSession(path, providers=onnxruntime.get_available_providers())
        except Exception as error:  # onnxruntime raises its own exception types for bad files
            raise ValueError(f"{path}: not an ONNX model that onnxruntime can load ({str(error)[:200]}).") from None
        source, target = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input_name = source.name
        # (None, H, W, bands) and (None, H', W', C); the batch is dynamic, and so are H and W (None) in the exports
        # of export.py: then pinned (pin) to the size the prediction path runs it at.
        self.input_shape = (None, *(d if isinstance(d, int) else None for d in source.shape[1:]))
        self.output_shape = (None, *(d if isinstance(d, int) else None for d in target.shape[1:]))
        metadata = self.session.get_modelmeta().custom_metadata_map
        # The settings export.py recorded (None for a file exported before they were): what the network was.
        self.settings = ModelSettings.from_json(metadata[SETTINGS_ATTR]) if SETTINGS_ATTR in metadata else None

    def run(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: images.astype(np.float32)})[0]


def write_onnx(model, path: str, settings: ModelSettings = None) -> None:
    """model.onnx through tf2onnx: a dynamic batch of float32 (B, H, W, bands) images named `images` (H and W
    dynamic too for a model built at (None, None): nets.models.dynamic_network); the ModelSettings, when given, go
    into the file's metadata (as a weights file's attribute)."""
    try:
        import tf2onnx
    except ImportError:
        raise ValueError(
            "formats includes onnx, which needs tf2onnx and onnxruntime: pip install -r requirements-export.txt "
            "(or leave onnx out of --formats)."
        ) from None
    spec = [tf.TensorSpec([None, *model.input_shape[1:]], tf.float32, name="images")]
    call = tf.function(lambda images: model(images, training=False))
    proto, _ = tf2onnx.convert.from_function(call, input_signature=spec, opset=ONNX_OPSET)
    if settings:
        entry = proto.metadata_props.add()
        entry.key, entry.value = SETTINGS_ATTR, settings.to_json()
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
