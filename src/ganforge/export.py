"""Exporting a trained generator alone: safetensors, TorchScript or ONNX, each with a JSON
sidecar (``FILE.json``) saying what the file needs and returns.

Every exported file maps latents ``z`` ``[B, z_dim]`` float32 (and, for a conditional
generator, ``labels`` ``[B]`` int64) to images ``[B, C, H, W]`` float32 in [-1, 1], with
BatchNorm in eval mode. :func:`check_export` runs the file and compares its images with
the generator it came from.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganforge.errors import UserError
from ganforge.sampling import (
    LATENT_RECIPE,
    METADATA_KEY,
    Generator,
    check_output_path,
    load_generator,
)

FORMATS: dict[str, str] = {"safetensors": ".safetensors", "torchscript": ".pt", "onnx": ".onnx"}
SIDECAR_FORMAT = "ganforge-generator"
SIDECAR_VERSION = 1
_ONNX_OPSET = 17


def describe(G: Generator, file_format: str) -> dict[str, Any]:
    """The sidecar's contents: sizes, classes, inputs and outputs, and the training config."""
    inputs = {"z": f"float32 [B, {G.z_dim}]"}
    if G.num_classes:
        inputs["labels"] = f"int64 [B], 0 to {G.num_classes - 1}"
    return {
        "format": SIDECAR_FORMAT,
        "version": SIDECAR_VERSION,
        "file_format": file_format,
        "z_dim": G.z_dim,
        "image_size": G.image_size,
        "channels": G.channels,
        "num_classes": G.num_classes,
        "weights": G.weights,
        "inputs": inputs,
        "output": f"images float32 [B, {G.channels}, {G.image_size}, {G.image_size}] in [-1, 1]",
        "latents": LATENT_RECIPE,
        "config": G.cfg.to_dict(),
    }


def sidecar_path(path: str | Path) -> Path:
    """The JSON beside an exported file: ``generator.onnx`` -> ``generator.onnx.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def default_out(file_format: str) -> Path:
    """``generator.safetensors``, ``generator.pt`` (TorchScript) or ``generator.onnx``."""
    return Path("generator" + FORMATS[file_format])


class _Exported(nn.Module):
    """The bare network with the positional inputs an exported file takes."""

    def __init__(self, G: Generator) -> None:
        super().__init__()
        self.net = G.net
        self.conditional = bool(G.num_classes)
        self.eval()  # exporters restore the wrapper's mode afterwards, and with it the net's

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z, labels) if self.conditional else self.net(z)


def _example(G: Generator, n: int = 2, seed: int = 0) -> tuple[Tensor, ...]:
    z = G.latents(n, seed)
    labels = G.labels_for(n)
    return (z,) if labels is None else (z, labels)


def export_generator(G: Generator, file_format: str, out: str | Path | None = None) -> Path:
    """Write ``G`` (moved to the CPU) as ``file_format`` to ``out`` and its sidecar JSON;
    return the file's path."""
    if file_format not in FORMATS:
        choices = ", ".join(FORMATS)
        raise UserError(f"unknown export format '{file_format}'; choose one of: {choices}")
    out = check_output_path(out or default_out(file_format))
    G = G.to("cpu").eval()
    meta = describe(G, file_format)
    text = json.dumps(meta, indent=2)
    if file_format == "safetensors":
        _write_safetensors(G, out, text)
    elif file_format == "torchscript":
        _write_torchscript(G, out, text)
    else:
        _write_onnx(G, out, meta)
    sidecar_path(out).write_text(text + "\n")
    return out


def _write_safetensors(G: Generator, out: Path, text: str) -> None:
    try:
        from safetensors.torch import save_file
    except ImportError:
        raise UserError(
            "safetensors export needs the safetensors package: pip install 'ganforge[export]'"
        ) from None
    state = {k: v.detach().contiguous().clone() for k, v in G.net.state_dict().items()}
    save_file(state, str(out), metadata={METADATA_KEY: text})


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch.jit's deprecation notes and the tracer's notes on shape arithmetic
    (:func:`check_export` verifies the result instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _write_torchscript(G: Generator, out: Path, text: str) -> None:
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(_Exported(G), _example(G), check_trace=False)
        torch.jit.save(traced, str(out), _extra_files={"ganforge.json": text})


def _write_onnx(G: Generator, out: Path, meta: dict[str, Any]) -> None:
    names = ["z", "labels"] if G.num_classes else ["z"]
    dynamic = {name: {0: "batch"} for name in [*names, "images"]}
    try:
        with _quiet(), torch.no_grad():  # the TorchScript-based exporter is deprecated, and fast
            torch.onnx.export(
                _Exported(G), _example(G), str(out), input_names=names, output_names=["images"],
                dynamic_axes=dynamic, opset_version=_ONNX_OPSET, dynamo=False,
            )  # fmt: skip
    except (ImportError, ModuleNotFoundError) as exc:
        raise UserError(
            f"ONNX export needs packages that are missing ({exc}); pip install 'ganforge[export]'"
        ) from None
    try:
        import onnx
    except ImportError:  # the sidecar still describes the file
        return
    model = onnx.load(str(out))
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.save(model, str(out))


def run_export(path: str | Path, file_format: str, z: Tensor, labels: Tensor | None) -> Tensor:
    """Images ``[B, C, H, W]`` float from an exported file (ONNX through onnxruntime)."""
    path = Path(path)
    with torch.no_grad():
        if file_format == "safetensors":
            G = load_generator(path)
            return G.generate(z, labels)
        if file_format == "torchscript":
            with _quiet():
                module = torch.jit.load(str(path), map_location="cpu")
            return (module(z) if labels is None else module(z, labels)).float()
    try:
        import onnxruntime
    except ImportError:
        raise UserError("checking ONNX files needs onnxruntime: pip install onnxruntime") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"z": z.numpy()}
    if labels is not None:
        feed["labels"] = labels.numpy()
    return torch.from_numpy(session.run(["images"], feed)[0])


def onnx_runtime_available() -> bool:
    """Whether onnxruntime can be imported here."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def check_export(
    path: str | Path, G: Generator, file_format: str, n: int = 4, seed: int = 0
) -> float:
    """Largest absolute difference between the images of the exported file and of ``G``
    for ``n`` latents of ``seed``."""
    z = G.latents(n, seed)
    labels = G.labels_for(n)
    expected = G.generate(z, labels)
    got = run_export(path, file_format, z, labels)
    if got.shape != expected.shape:
        shapes = f"{tuple(got.shape)}, not {tuple(expected.shape)}"
        raise UserError(f"{path} gives images of shape {shapes}")
    return float((got - expected).abs().max())
