"""The device a run uses, and the autocast precision that device supports."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from ganforge.errors import ConfigError

# what --device and the ``device`` config key take (cuda:N: the N-th GPU)
DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")


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
        names = ", ".join(DEVICE_NAMES)
        raise ConfigError(f"unknown device '{name}'; use one of {names}") from None
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


def resolve_precision(device: torch.device, precision: str) -> str:
    """``auto``: bf16 where ``device`` computes it natively (a CPU with AVX512-BF16 or AMX, a
    CUDA GPU that supports it), else fp32. Any other name as it is."""
    if precision != "auto":
        return precision
    if device.type == "cpu":
        return "bf16" if cpu_has_bf16() else "fp32"
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "fp32"


def precision_notice(device: torch.device, precision: str) -> str:
    """The line that says what ``auto`` chose on ``device`` ("" for any other name)."""
    if precision != "auto":
        return ""
    chosen = resolve_precision(device, precision)
    why = "computes bf16 natively" if chosen == "bf16" else "has no native bf16"
    return f"precision: {chosen} (auto: this {device.type} {why})"


def autocast_factory(device: torch.device, precision: str) -> Callable[[], AbstractContextManager]:
    """A function returning the autocast context for ``precision`` on ``device``
    (``auto`` as :func:`resolve_precision` makes it)."""
    precision = resolve_precision(device, precision)
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
