import importlib.util
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from benchmarks.network_table import (
    format_network_table,
    format_training_table,
    table_networks,
    table_shape,
    train_step_times,
)
from benchmarks.profiling import count_flops, cpu_flops_per_cycle, instruction_sets
from nets.folding import fold_batch_norms
from nets.models import build_model
from nets.unet import build_unet
from tests.helpers import HAS_ONNX, MIXED, run_script
from utils import precision
from utils.training.optimizers import make_optimizer


def profiler_flops(model, input_shape) -> int:
    """FLOPs of one forward pass as TensorFlow's graph profiler counts them (an independent count)."""
    function = tf.function(lambda x: model(x, training=False))
    graph = convert_variables_to_constants_v2(
        function.get_concrete_function(tf.TensorSpec([1, *input_shape], tf.float32))
    ).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return tf.compat.v1.profiler.profile(graph=graph, options=options).total_float_ops


@pytest.mark.parametrize("backbone", ["vgg", "resnet50", "mobilenetv2"])
def test_layer_flops_agree_with_tensorflows_profiler(backbone):
    model = fold_batch_norms(build_unet((64, 96, 3), 5, backbone))  # as predicted: no batch norms for it to count
    ours, theirs = count_flops(model), profiler_flops(model, (64, 96, 3))
    # The profiler also counts bias adds and a few element-wise ops; the convolutions are > 99 % of it.
    assert 0.99 * theirs <= ours <= theirs


def test_flops_are_never_silently_zero():
    inputs = keras.Input((4,), dtype="int32")
    embedded = keras.Model(inputs, keras.layers.Embedding(10, 3)(inputs))
    with pytest.raises(ValueError, match="has weights but no FLOP rule"):
        count_flops(embedded)
    images = keras.Input((8, 8, 3))
    with pytest.raises(ValueError, match="no convolution or dense layer"):
        count_flops(keras.Model(images, keras.layers.MaxPooling2D()(images)))


def test_peak_flops_per_cycle_follow_the_isa():
    assert cpu_flops_per_cycle("float32", {"avx512f", "amx_bf16"}) == (64, "AVX-512 FMA")
    assert cpu_flops_per_cycle("mixed_bfloat16", {"avx512f", "amx_bf16"}) == (1024, "AMX-BF16")
    assert cpu_flops_per_cycle("mixed_bfloat16", {"avx512f", "avx512_bf16"}) == (128, "AVX512-BF16")
    assert cpu_flops_per_cycle("mixed_bfloat16", {"fma"}) == (32, "AVX2 FMA")


def test_mixed_float16_scales_the_loss_and_keeps_float32_outputs():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_unet((32, 32, 3), 3)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.uint8)
        labels = np.random.default_rng(1).integers(0, 3, (2, 32, 32)).astype(np.uint8)
        loss = model.train_on_batch(images, labels)
        assert np.isfinite(loss) and model(images).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_benchmark_script_measures_both_precisions(tmp_path):
    """Plumbing, not a measurement: a few calls of each kind, on the small UNet and 4-band 16-bit TIFFs (the demo
    generator's bands variant), in float32 and mixed precision."""
    out = tmp_path / "bench.json"
    result = run_script(
        "benchmark.py",
        *["--model", "unet_small", "--input_shape", "32", "32", "--batch_size", "2", "--num_classes", "3"],
        *["--image_bands", "4", "--steps", "2", "--warmup", "1", "--calls", "3", "--repeats", "1"],
        *["--pipeline_shape", "64", "64", "--pipeline_batches", "3", "--precision", "fp32", MIXED],
        *["--json", out],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mixed / fp32" in result.stdout and "end to end / bare" in result.stdout
    report = json.loads(out.read_text())
    assert report["gflops_per_image"] > 0 and report["machine"] and report["config"]["image_bands"] == 4
    assert set(report["results"]) == {"float32", MIXED}
    for figures in report["results"].values():
        for key in (
            "train_bare",
            "train_end_to_end",
            "forward_bare",
            "forward_bare_single",
            "detect_image",
            "detect_image_tta",
            "detect_image_ensemble",
        ):
            assert figures[key] > 0, key
        assert figures["get_miou_path"] > 0 and figures["peak_basis"] and figures["get_miou_start_s"] >= 0
        assert 0 < figures["detect_image_share"] and 0 < figures["get_miou_path_share"]
        assert 0 < figures["train_end_to_end_share"] and figures["slide"] > 0 and 0 < figures["slide_share"]
    assert "forward_onnx" not in report["results"][MIXED]  # the export is a float32 graph
    pipeline = report["pipeline"]
    assert pipeline["pipeline_samples_per_s"] > 0 and pipeline["target_dtype"] == "uint8"
    assert pipeline["target_bytes_per_batch"] == 2 * 64 * 64  # uint8 class ids, not a one-hot
    every = report["pipeline_all_options"]  # rotation, flips, shear, elastic and the weight map
    assert every["pipeline_samples_per_s"] > 0 and every["target_dtype"] == "float32"
    assert "every option on" in result.stdout
    if not HAS_ONNX:
        pytest.skip("the ONNX Runtime row: pip install -r requirements-export.txt")
    float32 = report["results"]["float32"]
    assert float32["forward_onnx"] > 0 and float32["detect_image_onnx"] > 0 and "ONNX Runtime" in result.stdout
    if importlib.util.find_spec("openvino"):
        assert float32["forward_openvino"] > 0 and float32["detect_image_openvino_share"] > 0
        assert "OpenVINO" in result.stdout


def test_benchmark_rejects_an_unknown_precision():
    result = run_script("benchmark.py", "--precision", "fp8")  # a process: its exit status, no traceback
    assert result.returncode == 2 and "precision ['fp8']" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # 40 s of training a 31 M-parameter network at 188 x 188: the default suite has the UNet's run
def test_benchmark_runs_the_classic_unet_with_its_smaller_output(tmp_path):
    out = tmp_path / "bench.json"
    result = run_script(
        "benchmark.py",
        *["--model", "unet_classic", "--input_shape", "188", "188", "--batch_size", "2", "--num_classes", "3"],
        *["--steps", "2", "--warmup", "1", "--calls", "2", "--repeats", "1", "--precision", "fp32"],
        *["--pipeline_shape", "64", "64", "--pipeline_batches", "2", "--json", out],
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "unet_classic, [188, 188]" in result.stdout
    report = json.loads(out.read_text())
    assert report["config"]["model"] == "unet_classic" and report["gflops_per_image"] > 10
    assert report["results"]["float32"]["get_miou_path"] > 0 and report["results"]["float32"]["train_bare"] > 0


def test_the_network_table_lists_every_model_and_backbone():
    networks = table_networks()
    assert len(networks) == 11 and networks[0] == ("unet", "vgg") and ("deeplabv3plus", "mobilenetv2") in networks
    assert table_shape("unet_classic", (256, 256)) == (252, 252) and table_shape("unet", (256, 256)) == (256, 256)
    row = {"model": "unet", "backbone": "mobilenetv2", "input_shape": [256, 256], "params_m": 3.3, "gflops": 3.7}
    row.update({"float32_images_per_s": 44.2, "mixed_bfloat16_images_per_s": 77.8, "weights": "ImageNet (Keras)"})
    table = format_network_table([row], ["float32", "mixed_bfloat16"])
    assert "| unet | mobilenetv2 | 3.3 M | 3.7 | 44.20 | 77.80 | ImageNet (Keras) |" in table


def test_the_training_table_marks_each_network_against_its_goal():
    rows = [
        {"model": "unet", "backbone": "resnet50", "float32_step_s": 3.1, "float32_first_step_s": 9.5},
        {"model": "unet", "backbone": "mobilenetv2", "float32_step_s": 0.6, "float32_first_step_s": 6.1},
        {"model": "unet_small", "backbone": "vgg", "float32_step_s": 0.5, "float32_first_step_s": 2.6},
    ]
    for row, share in zip(rows, (0.30, 0.30, 0.66)):
        row.update(float32_train_gflops=200 * share, float32_matmul_share=share)
    table = format_training_table(rows, ["float32"], [190.0, 200.0, 210.0])
    assert "| unet | resnet50 | 3.10 | 9.5 | 60 | 30% (below goal) |" in table  # 40 % for a dense encoder
    assert "| unet | mobilenetv2 | 0.60 | 6.1 | 60 | 30% |" in table  # 20 % for a depthwise one
    assert "| unet_small | (own) |" in table
    assert "matrix product: median 200 GFLOP/s (range 190-210)" in table


def test_the_machine_line_names_the_instruction_sets_onednn_may_use(monkeypatch):
    flags = "fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile"
    monkeypatch.setattr(precision, "cpuinfo", lambda field: [flags] if field == "flags" else [])
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert instruction_sets() == "AVX2, FMA, AVX-512, AVX512-VNNI, AVX512-BF16, AMX-BF16"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert instruction_sets() == "AVX2, FMA (oneDNN capped at AVX2)"


def test_a_training_step_is_timed_as_train_py_compiles_it():
    keras.utils.set_random_seed(0)
    network = build_model("unet_small", (32, 32), 3)
    before = [w.numpy() for w in network.trainable_weights]
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    times = train_step_times(network, images, np.zeros((2, 32, 32), np.uint8), steps=2, warmup=1)
    assert times.first > times.median > 0
    assert network.optimizer.built and type(network.optimizer) is type(make_optimizer("adam", 1e-3))  # train.py's
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, network.trainable_weights))


def test_ensemble_quality_scores_each_run_and_the_ensemble(trained, tmp_path):
    out = tmp_path / "ensemble.json"
    runs = ["--runs", trained["logs"], trained["logs"], "--vocdevkit_path", trained["voc"], "--json", out]
    result = run_script(os.path.join("benchmarks", "ensemble_quality.py"), *runs)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    # One network twice: the ensemble is that network.
    assert report["singles"][0] == report["singles"][1] == pytest.approx(report["ensemble"], abs=1e-6)
    assert "ensemble of 2" in result.stdout
