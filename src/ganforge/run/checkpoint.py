"""Checkpoints: atomic writes, a versioned format with a checksum of its contents, loading
with weights_only=True, and what carries a checkpoint to another device or version.

Format versions (``version`` in every file); :func:`load` migrates older ones:

1. the first format;
2. a ``checksum`` of the contents, and the ``device`` type, the ``world_size`` and a
   ``data`` fingerprint of the run that wrote it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import random
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ganforge.errors import CheckpointError, DataError

FORMAT = "ganforge-checkpoint"
VERSION = 2
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive
_FINGERPRINT_IMAGES = 64  # images hashed, evenly spaced, for the data fingerprint
# Optimiser settings that choose an implementation for a device, not the arithmetic:
# a resumed optimiser keeps the ones it was built with here, not the saved ones.
_IMPLEMENTATION_FLAGS = ("fused", "foreach", "capturable", "differentiable")


class DamagedCheckpoint(CheckpointError):
    """A checkpoint whose bytes changed or were cut after it was written."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is damaged ({reason}); use another checkpoint")
        self.path, self.reason = path, reason


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` (its tensors moved to the CPU, with its :func:`checksum`) to ``path`` so
    that a crash never leaves a broken file there."""
    obj = _to_cpu(obj)
    obj["checksum"] = checksum(obj)
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
    """Load a ganforge checkpoint safely (no arbitrary code), check its format and its
    checksum, and migrate an older version's contents to this version's."""
    obj = _read(path, map_location)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ganforge checkpoint")
    version = obj.get("version")
    if not isinstance(version, int) or version < 1:
        raise DamagedCheckpoint(path, f"its format version is {version!r}")
    if version > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format {version}, newer than this ganforge reads "
            f"({VERSION}); upgrade ganforge"
        )
    if version >= 2:
        stored = obj.pop("checksum", None)
        if stored is None:
            raise DamagedCheckpoint(path, "it has no checksum")
        if stored != checksum(obj):
            raise DamagedCheckpoint(path, "its contents do not match their checksum")
    for old in range(version, VERSION):
        obj = _MIGRATIONS[old](obj)
        obj["version"] = old + 1
    return obj


def _read(path: Path, map_location: str | torch.device) -> Any:
    """``torch.load(weights_only=True)``, its failures said as what they mean for the file."""
    if _is_torchscript(path):  # torch.load would hand it to torch.jit.load
        raise CheckpointError(
            f"{path} is a TorchScript file; ganforge loads checkpoints and .safetensors "
            "exports (load TorchScript with torch.jit.load)"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except pickle.UnpicklingError as exc:
        if "allowed global" in str(exc) or "GLOBAL" in str(exc):
            raise CheckpointError(
                f"refusing to load {path}: it asks to run code while loading, which a ganforge "
                "checkpoint never does; nothing from it was run"
            ) from None
        failure: Exception = exc
    except Exception as exc:  # torch.load fails in many ways on damaged files
        failure = exc
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror}") from None
    if not head:
        raise DamagedCheckpoint(path, "it is empty: a copy or save that wrote nothing")
    if head == _ZIP_MAGIC:  # it began as a checkpoint: cut short or changed since
        raise DamagedCheckpoint(
            path, f"cut short or changed since it was written: {type(failure).__name__}"
        )
    raise CheckpointError(f"{path} is not a ganforge checkpoint (unknown format)") from None


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):  # missing, cut or no zip: torch.load says which
        return False
    return any(name.endswith("constants.pkl") or "/code/" in name for name in names)


def checksum(obj: Any) -> str:
    """A SHA-256 of a checkpoint's contents: every key and value in order, and every
    tensor's dtype, shape and values (not its memory layout)."""
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{t.dtype}{tuple(value.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)};".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, list | tuple):
        digest.update(f"{type(value).__name__}{len(value)};".encode())
        for item in value:
            _feed(digest, item)
    else:
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def _to_cpu(value: Any) -> Any:
    """``value`` with every tensor in it on the CPU (the same tensors where they already are)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(item) for item in value)
    return value


def _from_v1(obj: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no checksum and did not say where it was written: unknown ("", 0)."""
    return {"device": "", "world_size": 0, "data": None, **obj}


# version N -> a function turning version N's contents into version N + 1's
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _from_v1}


def data_fingerprint(images: np.ndarray, labels: np.ndarray | None) -> dict[str, Any]:
    """What identifies a run's training data when its path changes: the image count and
    shape, and a hash of up to 64 evenly spaced images (and their labels)."""
    n = len(images)
    picks = np.unique(np.linspace(0, n - 1, min(n, _FINGERPRINT_IMAGES)).astype(np.int64))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(images[picks]).data)
    if labels is not None:
        digest.update(np.ascontiguousarray(np.asarray(labels)[picks]).astype(np.int64).data)
    return {
        "images": n, "shape": list(images.shape[1:]), "labels": labels is not None,
        "digest": digest.hexdigest(),
    }  # fmt: skip


def load_optimizer(opt: torch.optim.Optimizer, saved: dict[str, Any]) -> None:
    """Load an optimiser's saved state into ``opt``, keeping the implementation ``opt`` was
    built with for this device (fused, foreach, capturable) and its parameters' memory
    layout, so a state saved on another device or with another layout trains on."""
    groups = [
        {**group, **{k: current[k] for k in _IMPLEMENTATION_FLAGS if k in current}}
        for group, current in zip(saved["param_groups"], opt.param_groups, strict=False)
    ]
    opt.load_state_dict({**saved, "param_groups": groups})
    for param, state in opt.state.items():
        for key, value in state.items():
            tensor = isinstance(value, torch.Tensor) and value.shape == param.shape
            if tensor and value.stride() != param.stride():
                state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def check_same_data(saved: dict[str, Any] | None, here: dict[str, Any], moved: bool) -> str:
    """Refuse data other than a resumed run's, by the :func:`data_fingerprint` ``saved`` in its
    checkpoint; return a note when, the data not moved, only some images' bytes differ."""
    if saved is None:
        return ""  # a version 1 checkpoint holds no fingerprint
    described = [f"{f['images']} images {'x'.join(map(str, f['shape']))}" for f in (saved, here)]
    same_size = (saved["images"], saved["shape"]) == (here["images"], here["shape"])
    if same_size and saved["digest"] == here["digest"]:
        return ""
    if same_size and not moved:
        return "some images differ from those this run trained on (decoded anew?); continuing"
    raise DataError(
        f"this run trained on {described[0]}, and the data given now holds {described[1]}"
        f"{' of other images' if same_size else ''}; resume with the data it trained on "
        "(--data PATH), or start a new run"
    )


def device_change(before: str | None, device: torch.device, lost: list[str]) -> str:
    """One line for a run resumed on another device type: what could not be carried over."""
    if not lost and (not before or before == device.type):
        return ""
    return f"moved from {before or 'another device'} to {device.type}: not carried over: " + (
        "; ".join(lost) or "nothing"
    )


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
    np.random.set_state((name, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())  # loaded with map_location: maybe on a GPU
    if "cuda" in state and torch.cuda.is_available():
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), index)


def _py_state_to_list(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]
