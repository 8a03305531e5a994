"""What benchmark.py measures against: FLOPs counted from a model's layers, the machine, and its peak FLOP/s."""

import math
import os
import platform
import re
import time

import keras
import numpy as np
import tensorflow as tf

from utils.precision import cpu_flags, cpuinfo, isa_cap

COUNTED = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv2DTranspose,
    keras.layers.DepthwiseConv2D,
    keras.layers.Dense,
)
# Layers that hold weights but whose arithmetic is element-wise (a few FLOPs per output value, < 1 % of a
# UNet's convolutions): counted as none, like the activations, pooling, resizing and concatenations.
ELEMENTWISE_WITH_WEIGHTS = (keras.layers.BatchNormalization, keras.layers.LayerNormalization)

# Published dense peaks of common GPUs in TFLOP/s: (fp32 without tensor cores, fp16/bf16 tensor cores).
# Looked up by a substring of the device name; the SXM figures for the H100 (the PCIe card's are ~25 % lower).
GPU_PEAK_TFLOPS = {
    "H200": (67.0, 989.0),
    "H100": (67.0, 989.0),
    "A100": (19.5, 312.0),
    "A10": (31.2, 125.0),
    "L40S": (91.6, 362.0),
    "L4": (30.3, 121.0),
    "V100": (15.7, 125.0),
    "T4": (8.1, 65.0),
    "RTX 4090": (82.6, 165.0),
    "RTX 3090": (35.6, 71.0),
}


def conv_macs(layer) -> int:
    """Multiply-accumulates of one image through a Conv / Conv-transpose / Dense layer."""
    kernel = layer.kernel.shape  # Conv2D: (kh, kw, C_in / groups, C_out); Dense: (C_in, C_out)
    if isinstance(layer, keras.layers.Conv2DTranspose):
        # Every input value is spread over kh * kw * C_out outputs.
        return math.prod(layer.input.shape[1:]) * kernel[0] * kernel[1] * kernel[2]
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return math.prod(layer.output.shape[1:]) * kernel[0] * kernel[1]
    output_positions = math.prod(layer.output.shape[1:-1])
    return output_positions * math.prod(kernel)


def count_flops(model: keras.Model) -> int:
    """FLOPs of one image's forward pass: 2 x the multiply-accumulates of every convolution and dense layer.

    Nested models are counted through. A layer with weights of a kind not known here raises ValueError
    instead of being counted as free, and so does a model with no convolutions at all.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_flops(layer)
        elif isinstance(layer, COUNTED):
            total += 2 * conv_macs(layer)
        elif layer.weights and not isinstance(layer, ELEMENTWISE_WITH_WEIGHTS):
            raise ValueError(
                f"count_flops: layer {layer.name!r} ({type(layer).__name__}) has weights but no FLOP rule; "
                "add one to benchmarks/profiling.py."
            )
    if total == 0:
        raise ValueError(f"count_flops: model {model.name!r} has no convolution or dense layer to count.")
    return total


def cpu_clock_ghz() -> float:
    """The CPU clock from /proc/cpuinfo: the 'model name' nominal clock when it gives one, else 'cpu MHz'."""
    nominal = re.search(r"@\s*([\d.]+)\s*GHz", cpu_model())
    if nominal:
        return float(nominal.group(1))
    return max(map(float, cpuinfo("cpu MHz")), default=0.0) / 1000


def cpu_model() -> str:
    return next(iter(cpuinfo("model name")), "") or platform.processor()


def cpu_flops_per_cycle(policy: str, flags: set) -> tuple:
    """(FLOPs per cycle per core, the unit that gives them) for the compute dtype of `policy`.

    Assumes two FMA ports per core (Xeon Scalable); a multiply-add counts as 2 FLOPs. AMX's tile unit
    does 1024 bf16/fp16 FLOPs per cycle per core (Intel's figure for Sapphire Rapids and later).
    """
    fp32 = (64, "AVX-512 FMA") if "avx512f" in flags else (32, "AVX2 FMA") if "fma" in flags else (8, "SSE")
    if policy == "mixed_bfloat16":
        if "amx_bf16" in flags:
            return 1024, "AMX-BF16"
        if "avx512_bf16" in flags:
            return 128, "AVX512-BF16"
    if policy == "mixed_float16":
        if "amx_fp16" in flags:
            return 1024, "AMX-FP16"
        if "avx512_fp16" in flags:
            return 128, "AVX512-FP16"
    return fp32


def gpu_name() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else ""


def peak_gflops(policy: str) -> tuple:
    """(estimated peak GFLOP/s for the compute dtype of `policy`, how it was estimated); (None, why) if unknown."""
    name = gpu_name()
    if name:
        for key, (fp32, tensor) in GPU_PEAK_TFLOPS.items():
            if key in name:
                peak = fp32 if policy == "float32" else tensor
                return peak * 1000, f"published dense figure for {key}: {peak:g} TFLOP/s"
        return None, f"no published figure for {name} in benchmarks/profiling.py"
    cores, clock = len(os.sched_getaffinity(0)), cpu_clock_ghz()
    if not clock:
        return None, "no CPU clock in /proc/cpuinfo"
    per_cycle, unit = cpu_flops_per_cycle(policy, cpu_flags())
    return cores * clock * per_cycle, f"{cores} cores x {clock:g} GHz x {per_cycle} FLOPs/cycle ({unit})"


# The instruction sets that decide a CPU's convolution and matmul speed, by their /proc/cpuinfo flag.
ISA_NAMES = {
    "avx2": "AVX2",
    "fma": "FMA",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX512-VNNI",
    "avx512_bf16": "AVX512-BF16",
    "avx512_fp16": "AVX512-FP16",
    "amx_bf16": "AMX-BF16",
    "amx_fp16": "AMX-FP16",
}


def instruction_sets() -> str:
    """The CPU's instruction sets that oneDNN may use (ONEDNN_MAX_CPU_ISA's cap applied, and named)."""
    flags = cpu_flags()
    names = ", ".join(name for flag, name in ISA_NAMES.items() if flag in flags) or "none of AVX2/AVX-512/AMX"
    return f"{names} (oneDNN capped at {isa_cap()})" if isa_cap() != "ALL" else names


def machine_description() -> str:
    name = gpu_name()
    cores = len(os.sched_getaffinity(0))
    cpu = f"{cores} cores of {cpu_model() or 'an unknown CPU'} at {cpu_clock_ghz():g} GHz ({instruction_sets()})"
    return f"{name} GPU; {cpu}" if name else f"{cpu}, no GPU"


class StepTimer(keras.callbacks.Callback):
    """Times training steps after `warmup` steps, from the end of the last warm-up step to the end of the last."""

    def __init__(self, warmup: int):
        super().__init__()
        self.warmup, self.ends = warmup, []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())

    def steps_per_second(self) -> float:
        timed = self.ends[self.warmup - 1 :]
        return (len(timed) - 1) / (timed[-1] - timed[0])


def seconds_of(function) -> float:
    """Wall-clock seconds of one function() call."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def calls_per_second(function, calls: int, warmup: int = 0) -> float:
    """Calls per second of function() over `calls` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        function()
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return calls / (time.perf_counter() - start)


def matmul_gflops(policy: str, calls: int = 10) -> float:
    """GFLOP/s of a large square matmul in the compute dtype of `policy`: the practical ceiling of the hardware."""
    size = 8192 if gpu_name() else 2048
    dtype = keras.mixed_precision.Policy(policy).compute_dtype
    matrix = tf.cast(tf.random.uniform([size, size]), dtype)
    product = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(matrix, matrix)[:1], tf.float32)))
    return 2 * size**3 * calls_per_second(lambda: product().numpy(), calls, warmup=2) / 1e9


def numpy_matmul_gflops(side: int, calls: int = 3) -> float:
    """GFLOP/s of NumPy's float32 side x side matrix product (its BLAS, on every core it is given), the fastest of
    `calls` after one untimed: the machine's own rate, beside matmul_gflops' TensorFlow product in a policy's dtype."""
    matrix = np.random.default_rng(0).standard_normal((side, side), dtype=np.float32)
    matrix @ matrix
    return 2 * side**3 / min(seconds_of(lambda: matrix @ matrix) for _ in range(calls)) / 1e9
