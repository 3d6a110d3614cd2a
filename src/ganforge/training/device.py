"""Choosing the device, the autocast precision, the CPU thread count and the fast paths
(fused Adam, torch.compile, CUDA graphs) each device supports."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from torch import nn

from ganforge.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA, then Apple MPS, then CPU; otherwise the named device, checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA GPU is visible; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps asked for, but MPS is not available; use --device cpu")
    return device


CPUINFO = "/proc/cpuinfo"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), from its cpuinfo flags."""
    try:
        with open(CPUINFO) as fh:
            text = fh.read()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_factory(device: torch.device, precision: str) -> Callable[[], AbstractContextManager]:
    """A function returning the autocast context for ``precision`` on ``device``."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    if device.type == "cpu":
        if precision == "fp16":
            raise ConfigError("--precision fp16 needs a GPU; use bf16 or fp32 on the CPU")
        if not cpu_has_bf16():
            raise ConfigError(
                "--precision bf16 asked for, but this CPU has no AVX512-BF16 or AMX; use fp32"
            )
    elif device.type == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU does not support bf16; use --precision fp16 or fp32")
    return lambda: torch.autocast(device.type, dtype=dtype)


def choose_threads(requested: int, models: list[nn.Module]) -> int:
    """CPU threads: as asked, else 1 for small fully connected models (threading overhead
    dominates them), else every core this process may use."""
    if requested > 0:
        return requested
    conv = any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for n in models for m in n.modules())
    params = sum(p.numel() for m in models for p in m.parameters())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 1 if (not conv and params < 2_000_000) else max(cores or 1, 1)


ADAM_IMPLS = ("auto", "fused", "foreach", "for-loop")


def adam_options(device: torch.device, impl: str = "auto", capturable: bool = False) -> dict:
    """Keyword arguments for ``torch.optim.Adam``: ``auto`` is fused on CPU and CUDA (one
    kernel over all parameters; 5x faster than foreach for the 64-pixel DCGAN on the CPU,
    docs/BENCHMARKS.md) and PyTorch's default elsewhere. ``capturable`` for CUDA graphs."""
    if impl not in ADAM_IMPLS:
        raise ConfigError(f"adam_impl must be one of {', '.join(ADAM_IMPLS)}, got '{impl}'")
    if impl == "auto":
        impl = "fused" if device.type in ("cpu", "cuda") else "default"
    options: dict = {
        "fused": {"fused": True},
        "foreach": {"foreach": True},
        "for-loop": {"foreach": False},
    }.get(impl, {})
    if capturable:
        options["capturable"] = True
    return options


def compile_problem(device: torch.device) -> str | None:
    """Why torch.compile cannot run on ``device`` here, or None when it can."""
    try:
        import torch._dynamo
    except ImportError:  # pragma: no cover - every supported PyTorch has it
        return "this PyTorch has no torch.compile"
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python version"
    if device.type == "cpu":
        cxx = os.environ.get("CXX", "")
        if not any(shutil.which(c) for c in (cxx, "g++", "clang++", "c++") if c):
            return "torch.compile needs a C++ compiler on the CPU (install g++)"
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            return "torch.compile needs Triton on CUDA (pip install triton)"
    if device.type == "mps":
        return "torch.compile of training steps is not supported on MPS"
    return None


def cuda_graphs_problem(device: torch.device) -> str | None:
    """Why CUDA graphs cannot be used on ``device``, or None when they can."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA GPU, and this run is on {device.type}"
    return None
