"""The machine a run is planned for: CPU or GPU, its cores and memory, whether it computes in bf16 natively."""

import os
from dataclasses import dataclass

import tensorflow as tf

from utils.precision import cpu_has_bf16, cpuinfo

UNKNOWN_GPU_GIB = 8.0  # a GPU whose memory TensorFlow does not tell is planned as one of this much


@dataclass(frozen=True)
class Machine:
    """What a plan depends on: `device` cpu or gpu, its name, CPU cores, the memory training may fill (GiB: the
    host's for a CPU, the first GPU's), and bf16 (the CPU has native bf16 kernels, or the GPU computes in half
    precision)."""

    device: str = "cpu"
    name: str = "CPU"
    cores: int = 2
    memory_gib: float = 8.0
    bf16: bool = False

    @property
    def gpu(self) -> bool:
        return self.device == "gpu"

    def describe(self) -> str:
        half = ", bf16/fp16 native" if self.bf16 else ", float32"
        return f"{self.name} ({self.device.upper()}, {self.cores} cores, {self.memory_gib:.0f} GiB{half})"


def host_memory_gib() -> float:
    """The host's memory in GiB (8 where it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 8.0


def this_machine() -> Machine:
    """The machine this process runs on (the first GPU when there is one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return Machine("gpu", details.get("device_name", "GPU"), cores, UNKNOWN_GPU_GIB, True)
    name = next(iter(cpuinfo("model name")), "CPU")
    return Machine("cpu", name, cores, host_memory_gib(), cpu_has_bf16())
