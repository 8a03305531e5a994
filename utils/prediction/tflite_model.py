"""A TFLite file run by TensorFlow's interpreter, shaped like the Keras model for the prediction path (as
onnx_model.OnnxModel is), and the conversions export.py writes: float32, float16 weights, and full-integer int8
calibrated on real images."""

import warnings

import numpy as np
import tensorflow as tf

from utils.prediction.runtime import RuntimeModel

# TF 2.21 still ships tf.lite's interpreter; its successor is the ai_edge_litert package.
warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")


def tflite_bytes(saved_model: str, name: str, calibration=None) -> bytes:
    """A TFLite flatbuffer converted from the SavedModel: tflite_fp32, tflite_fp16 (float16 weights) or tflite_int8,
    full-integer (int8 weights, activations, input and output), its ranges calibrated on `calibration` (float32
    images (N, H, W, C) as the network takes them, one at a time)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    if name == "tflite_fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    if name == "tflite_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type, converter.inference_output_type = tf.int8, tf.int8
    return converter.convert()


class TfliteModel(RuntimeModel):
    """A TFLite model behind what the prediction path uses of a Keras model (RuntimeModel), one invocation per image
    (its batch is 1). An int8 model's input is quantised and its output dequantised with the file's own scale and
    zero point."""

    def __init__(self, content: bytes):
        self.interpreter = tf.lite.Interpreter(model_content=content)
        self.interpreter.allocate_tensors()
        self.source, self.target = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        self.input_shape = (None, *self.source["shape"][1:])
        self.output_shape = (None, *self.target["shape"][1:])

    def run(self, images: np.ndarray) -> np.ndarray:
        outputs = []
        for image in np.asarray(images, np.float32):
            scale, zero = self.source["quantization"]
            if self.source["dtype"] != np.float32:  # int8: q = round(x / scale) + zero, within the type's range
                limits = np.iinfo(self.source["dtype"])
                image = np.clip(np.round(image / scale) + zero, limits.min, limits.max).astype(self.source["dtype"])
            self.interpreter.set_tensor(self.source["index"], image[None])
            self.interpreter.invoke()
            output = self.interpreter.get_tensor(self.target["index"])[0]
            scale, zero = self.target["quantization"]
            outputs.append((output.astype(np.float32) - zero) * scale if scale else output)
        return np.stack(outputs).astype(np.float32)
