"""Checkpoints: atomic writes, versioned format, loading with weights_only=True."""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ganforge.errors import CheckpointError

FORMAT = "ganforge-checkpoint"
VERSION = 1


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` so that a crash never leaves a broken file there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temps(folder: Path) -> int:
    """Delete temp files left by a process killed mid-save; return how many."""
    stale = [*folder.glob(".*.tmp"), *folder.glob(".last.pt.*.link")]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return len(stale)


def save_rotating(obj: dict[str, Any], folder: Path, step: int, keep_last: int) -> Path:
    """Write ``folder/last.pt``; with ``keep_last`` > 0 also keep ``stepNNNNNNN.pt`` files,
    the newest ``keep_last`` of them. Every file is replaced atomically."""
    last = folder / "last.pt"
    if keep_last <= 0:
        save_atomic(obj, last)
        return last
    periodic = folder / f"step{step:07d}.pt"
    save_atomic(obj, periodic)
    tmp = folder / f".last.pt.{os.getpid()}.link"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.link(periodic, tmp)  # last.pt shares the periodic file's bytes
    os.replace(tmp, last)
    for old in sorted(folder.glob("step*.pt"))[:-keep_last]:
        old.unlink()
    return last


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a ganforge checkpoint safely (no arbitrary code); check its format and version."""
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except pickle.UnpicklingError as exc:
        if "allowed global" not in str(exc) and "GLOBAL" not in str(exc):
            raise CheckpointError(f"{path} is not a ganforge checkpoint (unknown format)") from None
        raise CheckpointError(
            f"refusing to load {path}: it asks to run code while loading, which a ganforge "
            "checkpoint never does; nothing from it was run"
        ) from None
    except Exception as exc:  # torch.load fails in many ways on damaged files
        raise CheckpointError(
            f"{path} is not a ganforge checkpoint, or it is damaged ({type(exc).__name__}); "
            "use another checkpoint"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganforge checkpoint")
    if int(obj.get("version", 0)) > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {obj['version']}, newer than this ganforge reads "
            f"({VERSION}); upgrade ganforge"
        )
    return obj


def rng_state() -> dict[str, Any]:
    """Every global RNG state, as tensors and plain values that weights_only loading accepts."""
    np_state = cast(tuple, np.random.get_state(legacy=True))
    state: dict[str, Any] = {
        "python": _py_state_to_list(random.getstate()),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = list(state["numpy"])
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _py_state_to_list(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]
