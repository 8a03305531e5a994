"""precision auto: bf16 where the CPU (as oneDNN may use it) has bf16 kernels, float32 elsewhere."""

import pytest
import tensorflow as tf

import utils.precision as precision
from benchmarks.profiling import cpu_flops_per_cycle

AMX_CPU = "fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8"


@pytest.mark.parametrize(
    "cap, policy, peak",
    [
        (None, "mixed_bfloat16", "AMX-BF16"),
        ("ALL", "mixed_bfloat16", "AMX-BF16"),
        ("AVX512_CORE_BF16", "mixed_bfloat16", "AVX512-BF16"),
        ("avx512_core_vnni", "float32", "AVX-512 FMA"),
        ("AVX2", "float32", "AVX2 FMA"),  # as on the AVX2-only CPUs most users have
    ],
)
def test_auto_follows_what_onednn_may_use(monkeypatch, cap, policy, peak):
    monkeypatch.setattr(precision, "cpuinfo", lambda field: [AMX_CPU] if field == "flags" else [])
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if cap is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    chosen, reason = precision.choose_precision("auto")
    assert chosen == policy, reason
    assert cpu_flops_per_cycle(chosen, precision.cpu_flags())[1] == peak
    assert precision.choose_precision("mixed_bfloat16")[0] == "mixed_bfloat16"  # asked for: as asked
