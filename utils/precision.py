"""The precision switch: fp32, mixed_bfloat16, mixed_float16, or auto, chosen once per process."""

import keras
import tensorflow as tf

PRECISIONS = ("auto", "fp32", "mixed_bfloat16", "mixed_float16")


def cpuinfo(field: str) -> list:
    """The values of `field` in /proc/cpuinfo, one per core (empty where there is no such file)."""
    try:
        with open("/proc/cpuinfo") as f:
            return [line.split(":", 1)[1].strip() for line in f if line.split(":")[0].strip() == field]
    except OSError:
        return []


def cpu_flags() -> set:
    """The CPU feature flags from /proc/cpuinfo (empty where there is none)."""
    return set(next(iter(cpuinfo("flags")), "").split())


def choose_precision(precision: str):
    """Resolves `precision` to a Keras dtype policy name and the reason for the choice."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}.")
    if precision == "fp32":
        return "float32", "asked for"
    if precision != "auto":
        return precision, "asked for"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        if capability >= (7, 0):
            return "mixed_float16", f"auto: GPU with tensor cores (compute capability {capability})"
        return "float32", f"auto: GPU without tensor cores (compute capability {capability})"
    if cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        return "mixed_bfloat16", "auto: CPU with AVX512-BF16/AMX"
    return "float32", "auto: no bf16/fp16 hardware found"


def set_precision(precision: str) -> str:
    """Sets the global Keras dtype policy once and returns a line saying what was chosen and why."""
    policy, reason = choose_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return f"Precision: {policy} ({reason})"
