"""The precision switch: fp32, mixed_bfloat16, mixed_float16, or auto, chosen once per process."""

import os

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


# oneDNN's ISA levels (ONEDNN_MAX_CPU_ISA) without AVX-512, without native bf16 (AVX512-BF16), without AMX kernels.
ISA_WITHOUT_AVX512 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2")
ISA_WITHOUT_BF16 = (*ISA_WITHOUT_AVX512, "AVX512_CORE", "AVX512_CORE_VNNI")
ISA_WITHOUT_AMX = (*ISA_WITHOUT_BF16, "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX10_1_512")


def isa_cap() -> str:
    """The ISA level oneDNN is capped at: ONEDNN_MAX_CPU_ISA (or its older name DNNL_MAX_CPU_ISA), ALL when unset."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL")).strip().upper()


def cpu_flags() -> set:
    """The CPU feature flags oneDNN may use: /proc/cpuinfo's (empty where there is none), less those above the
    level isa_cap() names (e.g. AVX2: no AVX-512, AVX512-BF16 or AMX kernels, as on an AVX2 CPU)."""
    flags, cap = set(next(iter(cpuinfo("flags")), "").split()), isa_cap()
    for levels, dropped in (
        (ISA_WITHOUT_AVX512, "avx512"),
        (ISA_WITHOUT_BF16, "avx512_bf16"),
        (ISA_WITHOUT_AMX, "amx"),
    ):
        if cap in levels:
            flags = {flag for flag in flags if not flag.startswith(dropped)}
    return flags


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bf16 kernels that oneDNN may use (AVX512-BF16 or AMX)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


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
    if cpu_has_bf16():
        return "mixed_bfloat16", "auto: CPU with AVX512-BF16/AMX"
    capped = f" that oneDNN may use (capped at {isa_cap()})" if isa_cap() != "ALL" else ""
    return "float32", f"auto: no bf16/fp16 hardware found{capped}"


def set_precision(precision: str) -> str:
    """Sets the global Keras dtype policy once and returns a line saying what was chosen and why."""
    policy, reason = choose_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return f"Precision: {policy} ({reason})"
