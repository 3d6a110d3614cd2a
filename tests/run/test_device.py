"""The device choice and the autocast precision each device supports."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganforge.errors import ConfigError
from ganforge.run import device as devmod
from ganforge.run.device import autocast_factory, cpu_has_bf16, resolve_device, resolve_precision

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


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cpuinfo(tmp_path, monkeypatch, AVX2_FLAGS)
    assert resolve_precision(CPU, "auto") == "fp32"
    with autocast_factory(CPU, "auto")():  # no refusal: auto falls back to fp32
        y = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
    assert y.dtype == torch.float32
    _cpuinfo(tmp_path, monkeypatch, BF16_FLAGS)
    assert resolve_precision(CPU, "auto") == "bf16"
    with autocast_factory(CPU, "auto")():
        y = torch.nn.functional.linear(torch.ones(2, 3), torch.ones(4, 3))
    assert y.dtype == torch.bfloat16
    assert resolve_precision(CPU, "fp32") == "fp32"  # a precision named is kept as it is
    assert resolve_precision(torch.device("mps"), "auto") == "fp32"


def test_resolve_device() -> None:
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU is visible; use --device cpu"):
            resolve_device("cuda")
