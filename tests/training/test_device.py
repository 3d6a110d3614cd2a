"""Device choice, bf16 detection, thread count and which fast paths each device supports."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError
from ganforge.models import build_models
from ganforge.training import device as devmod
from ganforge.training.device import (
    adam_options,
    autocast_factory,
    choose_threads,
    compile_problem,
    cpu_has_bf16,
    cuda_graphs_problem,
    resolve_device,
)

CPU = torch.device("cpu")
AVX2_FLAGS = "flags\t\t: fpu sse sse2 avx f16c avx2 fma bmi2\n"
BF16_FLAGS = "flags\t\t: fpu sse sse2 avx avx2 avx512f avx512bw avx512_bf16\n"


def _cpuinfo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\n{flags}\n")
    monkeypatch.setattr(devmod, "CPUINFO", str(path))


def test_bf16_is_refused_on_a_cpu_without_avx512_bf16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpuinfo(tmp_path, monkeypatch, AVX2_FLAGS)
    assert cpu_has_bf16() is False
    with pytest.raises(ConfigError, match="this CPU has no AVX512-BF16 or AMX; use fp32"):
        autocast_factory(CPU, "bf16")


def test_bf16_autocast_on_a_cpu_with_avx512_bf16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpuinfo(tmp_path, monkeypatch, BF16_FLAGS)
    assert cpu_has_bf16() is True
    with autocast_factory(CPU, "bf16")():
        y = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
    assert y.dtype == torch.bfloat16


def test_a_flag_in_the_model_name_does_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpuinfo(tmp_path, monkeypatch, AVX2_FLAGS.replace("flags", "model name: avx512_bf16\nflags"))
    assert cpu_has_bf16() is False


def test_unreadable_cpuinfo_means_no_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devmod, "CPUINFO", str(tmp_path / "missing"))
    assert cpu_has_bf16() is False


def test_fp32_needs_no_autocast_and_fp16_is_refused_on_the_cpu() -> None:
    with autocast_factory(CPU, "fp32")():
        assert torch.ones(1).dtype == torch.float32
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        autocast_factory(CPU, "fp16")


def test_resolve_device() -> None:
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU is visible; use --device cpu"):
            resolve_device("cuda")


def test_threads_one_for_small_mlps_all_cores_for_conv_models() -> None:
    mlp = list(build_models(TrainConfig(model="mlp", image_size=28, channels=1, z_dim=64)))
    conv = list(build_models(TrainConfig(model="dcgan", image_size=28, channels=1)))
    assert choose_threads(0, mlp) == 1
    assert choose_threads(0, conv) == len(devmod.os.sched_getaffinity(0))
    assert choose_threads(3, mlp) == 3


def test_adam_options() -> None:
    assert adam_options(CPU) == {"fused": True}
    assert adam_options(torch.device("cuda")) == {"fused": True}
    assert adam_options(torch.device("mps")) == {}
    assert adam_options(CPU, "foreach") == {"foreach": True}
    assert adam_options(CPU, "for-loop") == {"foreach": False}
    assert adam_options(torch.device("cuda"), capturable=True) == {
        "fused": True,
        "capturable": True,
    }
    with pytest.raises(
        ConfigError, match="adam_impl must be one of auto, fused, foreach, for-loop"
    ):
        adam_options(CPU, "sgd")


def test_compile_and_cuda_graph_support(monkeypatch: pytest.MonkeyPatch) -> None:
    assert compile_problem(torch.device("mps")) == (
        "torch.compile of training steps is not supported on MPS"
    )
    assert cuda_graphs_problem(CPU) == "CUDA graphs need a CUDA GPU, and this run is on cpu"
    assert cuda_graphs_problem(torch.device("cuda")) is None
    monkeypatch.setattr(devmod.shutil, "which", lambda name: None)
    assert "needs a C++ compiler" in str(compile_problem(CPU))
    monkeypatch.setattr(devmod.shutil, "which", lambda name: "/usr/bin/g++")
    assert compile_problem(CPU) is None
