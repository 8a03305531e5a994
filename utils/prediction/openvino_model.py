"""OpenVINO: export.py's SavedModel converted to OpenVINO's IR (model.xml + model.bin, by openvino.convert_model,
as OpenVINO's documentation converts a Keras 3 model), and such a file run by OpenVINO's CPU plugin, shaped like
the Keras model for the prediction path (as onnx_model.OnnxModel is)."""

import numpy as np

from utils.files.paths import check_file
from utils.prediction.runtime import RuntimeModel
from utils.weights.checkpoint import SETTINGS_ATTR, ModelSettings


def openvino_module():
    """The openvino package, or a ValueError saying how to install it."""
    try:
        import openvino
    except ImportError:
        raise ValueError(
            "OpenVINO needs its package: pip install -r requirements-export.txt (or leave openvino out of --formats)."
        ) from None
    return openvino


def write_openvino(saved_model: str, path: str, settings: ModelSettings = None) -> None:
    """model.xml (and model.bin beside it) converted from a SavedModel; the ModelSettings, when given, in its
    runtime info (as a weights file's attribute). Any input height and width (-1) when the SavedModel's are None."""
    openvino = openvino_module()
    model = openvino.convert_model(saved_model)
    if settings:
        model.set_rt_info(settings.to_json(), SETTINGS_ATTR)
    openvino.save_model(model, path, compress_to_fp16=False)  # float32 weights (save_model halves them by default)


class OpenvinoModel(RuntimeModel):
    """model.xml compiled for OpenVINO's CPU plugin, behind what the prediction path uses of a Keras model
    (RuntimeModel)."""

    def __init__(self, path: str):
        openvino = openvino_module()
        check_file(path, "model_path", "an OpenVINO IR file", (".xml",), "Export one with python export.py.")
        core = openvino.Core()
        model = core.read_model(path)
        # float32 arithmetic: on a CPU with bf16 units the plugin's default is bf16 (0.1 % of pixels off on the tiny
        # test model; the export's parity is held to float32's).
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        source, target = model.inputs[0].get_partial_shape(), model.outputs[0].get_partial_shape()
        self.input_shape = (None, *(d.get_length() if d.is_static else None for d in list(source)[1:]))
        self.output_shape = (None, *(d.get_length() if d.is_static else None for d in list(target)[1:]))
        recorded = model.has_rt_info(SETTINGS_ATTR)
        self.settings = ModelSettings.from_json(model.get_rt_info(SETTINGS_ATTR).astype(str)) if recorded else None

    def run(self, images: np.ndarray) -> np.ndarray:
        return np.asarray(self.compiled(np.asarray(images, np.float32))[0], np.float32)
