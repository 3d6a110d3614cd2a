"""Exporting the generator: each format gives the checkpoint's images, says what it needs,
keeps conditional inputs, and `ganforge export` checks what it wrote."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch

from ganforge import load_generator
from ganforge.errors import CheckpointError
from ganforge.export import (
    FORMATS,
    check_export,
    export_generator,
    onnx_runtime_available,
    run_export,
    sidecar_path,
)
from ganforge.grids import to_uint8
from ganforge.run import checkpoint as ckpt
from ganforge.sampling import METADATA_KEY
from tests.conftest import run_cli

needs_onnxruntime = pytest.mark.skipif(
    not onnx_runtime_available(), reason="onnxruntime is not installed"
)
_FORMATS = [pytest.param("onnx", marks=needs_onnxruntime) if f == "onnx" else f for f in FORMATS]


@pytest.mark.parametrize("file_format", _FORMATS)
def test_same_seed_gives_the_same_images_from_every_export_format(
    tiny_run: Path, file_format: str
) -> None:
    G = load_generator(tiny_run)
    path = export_generator(G, file_format, Path(f"g{FORMATS[file_format]}"))
    z = G.latents(5, seed=11)
    expected = G.sample(5, seed=11, uint8=False)
    got = run_export(path, file_format, z, None)
    if file_format == "onnx":  # another runtime: equal up to float rounding
        assert torch.allclose(got, expected, atol=1e-5, rtol=0)
        assert (to_uint8(got).int() - to_uint8(expected).int()).abs().max() <= 1
    else:
        assert torch.equal(got, expected)
    sidecar = json.loads(sidecar_path(path).read_text())
    assert {k: sidecar[k] for k in ("file_format", "z_dim", "image_size", "channels")} == {
        "file_format": file_format, "z_dim": 64, "image_size": 28, "channels": 1,
    }  # fmt: skip
    assert sidecar["num_classes"] == 0 and sidecar["config"]["model"] == "dcgan"


def test_each_file_also_describes_itself(tiny_run: Path) -> None:
    G = load_generator(tiny_run)
    from safetensors import safe_open

    with safe_open(str(export_generator(G, "safetensors", Path("g.safetensors"))), "pt") as fh:
        assert json.loads(fh.metadata()[METADATA_KEY])["z_dim"] == 64
    with zipfile.ZipFile(export_generator(G, "torchscript", Path("g.pt"))) as archive:
        extra = [n for n in archive.namelist() if n.endswith("extra/ganforge.json")]
        assert json.loads(archive.read(extra[0]))["image_size"] == 28
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(export_generator(G, "onnx", Path("g.onnx"))))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props[METADATA_KEY])["channels"] == 1


def test_a_safetensors_export_loads_back_as_a_generator_and_torchscript_is_refused(
    tiny_run: Path,
) -> None:
    G = load_generator(tiny_run)
    again = load_generator(export_generator(G, "safetensors", Path("g.safetensors")))
    assert torch.equal(again.sample(3, seed=2), G.sample(3, seed=2))
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_generator(export_generator(G, "torchscript", Path("g.pt")))


def test_export_takes_the_ema_weights_when_present(tiny_run: Path) -> None:
    state = ckpt.load(tiny_run / "checkpoints" / "last.pt")
    state["G_ema"] = {k: v * 0.5 if v.is_floating_point() else v for k, v in state["G"].items()}
    ckpt.save_atomic(state, Path("ema.pt"))
    path = export_generator(load_generator("ema.pt"), "torchscript", Path("g.pt"))
    assert json.loads(sidecar_path(path).read_text())["weights"] == "ema"
    assert check_export(path, load_generator("ema.pt"), "torchscript") == 0.0
    assert check_export(path, load_generator("ema.pt", ema=False), "torchscript") > 0.0


@pytest.mark.parametrize("file_format", _FORMATS)
def test_a_conditional_generator_exports_with_its_labels_input(
    conditional_run: Path, file_format: str
) -> None:
    G = load_generator(conditional_run)
    path = export_generator(G, file_format, Path(f"c{FORMATS[file_format]}"))
    assert json.loads(sidecar_path(path).read_text())["num_classes"] == 10
    assert check_export(path, G, file_format, n=6) < 1e-5
    z, labels = G.latents(2), torch.tensor([0, 2])
    one = run_export(path, file_format, z, labels)
    other = run_export(path, file_format, z, torch.tensor([1, 1]))
    assert not torch.allclose(one, other)  # the labels reach the network


def test_export_cli_writes_and_checks_the_file(tiny_run: Path) -> None:
    result = run_cli("export", str(tiny_run), "--format", "torchscript", "--out", "g.pt")
    assert result.returncode == 0, result.stderr
    assert Path("g.pt").is_file() and Path("g.pt.json").is_file()
    assert "checked: g.pt gives the checkpoint's images" in result.stdout


@pytest.mark.parametrize(
    ("source", "out", "message"),
    [
        ("run", "missing/g.onnx", "folder missing does not exist"),
        ("text", "g.onnx", "is not a ganforge checkpoint"),
    ],
)
def test_export_cli_refuses_bad_input_in_one_line(
    tiny_run: Path, tmp_path: Path, source: str, out: str, message: str
) -> None:
    path = tiny_run
    if source == "text":
        path = tmp_path / "notes.pt"
        path.write_text("not a checkpoint\n")
    result = run_cli("export", str(path), "--format", "onnx", "--out", out)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not Path(out).exists()
