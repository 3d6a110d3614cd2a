"""Runs that travel: to another rank count, another device, another ganforge version,
past a damaged last.pt, and to another folder. Real processes and real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import cli, load_generator, train
from ganforge import config as cfgmod
from ganforge.config import TrainConfig
from ganforge.data import load_sample
from ganforge.errors import DataError
from ganforge.models import build_models
from ganforge.run import checkpoint as ckpt
from ganforge.training import distributed
from ganforge.training.distributed import World
from tests.metrics.conftest import digit_folder
from tests.training.helpers import tiny

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
TOLERANCE = 1e-4  # relative: N ranks against one process, float rounding of the averages


def _ganforge(*args: str, nproc: int = 1, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``ganforge ARGS`` in a real process, or under torchrun on ``nproc`` gloo ranks."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    cmd = [sys.executable, *(launcher if nproc > 1 else []), "-m", "ganforge", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    assert (done.returncode == 0) == ok, done.stderr[-3000:]
    return done


def _in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    """``ganforge ARGS`` through :func:`ganforge.cli.main`: its exit code and stderr lines."""
    capsys.readouterr()
    code = cli.main(list(args))
    return code, capsys.readouterr().err.strip().splitlines()


def _records(run: Path) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(1.0, abs(b))


# --- another rank count -----------------------------------------------------------------


def test_one_rank_to_two_and_back_equals_one_process_without_batchnorm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny("seed-simple", batch_size=64, drop_last=True, log_every=1, log_epoch_start=False,
               g_features=64, d_features=32, z_dim=16, ckpt_every=0)  # fmt: skip
    train(cfg, out="whole", overrides={"steps": 6})
    train(cfg, out="moved", overrides={"steps": 2})
    two = _ganforge("train", "--resume", "moved", "--steps", "4", "--no-progress", nproc=2)
    assert two.stderr.count("trained on 1 process(es), continuing on 2: the same global batch "
                            "of 64, 32 images per process\n") == 1  # fmt: skip
    capsys.readouterr()
    train(resume="moved", overrides={"steps": 6})
    assert "trained on 2 process(es), continuing on 1" in capsys.readouterr().err
    whole, moved = _records(tmp_path / "whole"), _records(tmp_path / "moved")
    assert sorted(moved) == sorted(whole) == [1, 2, 3, 4, 5, 6]
    for step in whole:  # steps 3 and 4 ran on two ranks: their logged losses are global
        for key in ("loss/D", "loss/G", "D(x)", "D(G(z))"):
            assert _close(moved[step][key], whole[step][key]), (step, key)
    a = ckpt.load(tmp_path / "whole" / "checkpoints" / "last.pt")
    b = ckpt.load(tmp_path / "moved" / "checkpoints" / "last.pt")
    elapsed = {"elapsed": 0.0}
    assert {**a["position"], **elapsed} == {**b["position"], **elapsed}
    for net in ("G", "D"):
        for key, value in a[net].items():
            torch.testing.assert_close(b[net][key], value, rtol=TOLERANCE, atol=1e-5)
    assert b["world_size"] == 1


def test_the_rank_count_line_names_batchnorm() -> None:
    mlp, dcgan = (
        build_models(tiny(preset, channels=1, image_size=28).model_spec())[0]
        for preset in ("seed-simple", "quick")
    )
    two = World(0, 2, 0)
    assert distributed.rank_count_change(2, two, 64, mlp) == ""  # the same count: no line
    assert distributed.rank_count_change(0, two, 64, mlp) == ""  # unknown (version 1): none
    assert distributed.rank_count_change(4, two, 64, mlp) == (
        "trained on 4 process(es), continuing on 2: the same global batch of 64, 32 images "
        "per process"
    )
    assert distributed.rank_count_change(1, two, 64, dcgan).endswith(
        "; BatchNorm normalises each process's share (docs/DISTRIBUTED.md)"
    )


# --- another device ---------------------------------------------------------------------


def _as_written_on_cuda(state: dict) -> dict:
    """A checkpoint as a CUDA run writes it: Philox RNG states (16 bytes) for the noise
    generator and each GPU, fused and capturable Adam, fp16 autocast, device cuda."""
    philox = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0], dtype=torch.uint8)
    for opt in ("opt_g", "opt_d"):
        for group in state[opt]["param_groups"]:
            group.update(fused=True, capturable=True, foreach=None)
        for param_state in state[opt]["state"].values():
            param_state["step"] = param_state["step"].float()  # fused keeps float32 steps
    return {
        **state, "device": "cuda", "noise_rng": philox,
        "rng": {**state["rng"], "cuda": [philox.clone(), philox.clone()]},
        "config": {**state["config"], "device": "cuda", "precision": "fp16"},
    }  # fmt: skip


def test_a_checkpoint_written_on_cuda_resumes_on_the_cpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = train(tiny("quick", steps=4, ckpt_every=0, grid_n=8), out=tmp_path / "run")
    last = run / "checkpoints" / "last.pt"
    shutil.copy(last, tmp_path / "cpu.pt")
    cpu_state = ckpt.load(last)
    weights = cpu_state["G"]["net.0.0.weight"]  # [z, C, 7, 7]: channels_last, as on a GPU
    assert weights.is_contiguous(memory_format=torch.channels_last)
    ckpt.save_atomic(_as_written_on_cuda(cpu_state), last)
    ckpt.save_atomic(_as_written_on_cuda(cpu_state), tmp_path / "cuda.pt")
    if not torch.cuda.is_available():
        assert _in_process(capsys, "train", "--resume", str(run), "--steps", "6") == (2, [
            "ganforge: error: --device cuda asked for, but no CUDA GPU is visible; use --device cpu"
        ])  # fmt: skip
    done = _ganforge("train", "--resume", str(run), "--steps", "6", "--device", "cpu",
                     "--no-progress")  # fmt: skip
    moved = [line for line in done.stderr.splitlines() if line.startswith("moved from")]
    assert len(moved) == 1, done.stderr
    assert moved[0].startswith("moved from cuda to cpu: not carried over: precision fp16 (")
    assert "the noise generator's state (reseeded from the seed and the step)" in moved[0]
    resumed = ckpt.load(last)
    assert resumed["position"]["step"] == 6 and resumed["device"] == "cpu"
    assert resumed["config"]["precision"] == "fp32"
    assert all(g["capturable"] is False for g in resumed["opt_g"]["param_groups"])
    assert all(torch.isfinite(p).all() for p in resumed["G"].values())
    # the CUDA-shaped file samples, on the CPU, the images of the weights it holds
    assert _in_process(capsys, "sample", "cuda.pt", "--n", "8", "--npz", "cuda.npz")[0] == 0
    with np.load(tmp_path / "cuda.npz") as cuda_images:
        expected = load_generator(tmp_path / "cpu.pt").sample(8).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(cuda_images["images"], expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_to_cpu_and_back_sample_the_same_images(tmp_path: Path) -> None:
    run = train(tiny("quick", steps=4, ckpt_every=0, device="cuda"), out=tmp_path / "run")
    gpu, cpu = load_generator(run, device="cuda"), load_generator(run, device="cpu")
    on_gpu, on_cpu = gpu.sample(16, uint8=False), cpu.sample(16, uint8=False)
    torch.testing.assert_close(on_gpu, on_cpu, rtol=0, atol=1e-2)  # cuDNN convolves in TF32
    assert (gpu.sample(16).int() - cpu.sample(16).int()).abs().max() <= 1
    train(resume=run, overrides={"steps": 6, "device": "cpu"})
    assert ckpt.load(run / "checkpoints" / "last.pt")["device"] == "cpu"
    train(resume=run, overrides={"steps": 8, "device": "cuda"})
    back = ckpt.load(run / "checkpoints" / "last.pt")
    assert back["device"] == "cuda" and back["position"]["step"] == 8


# --- another ganforge version -----------------------------------------------------------


def test_the_version_1_fixture_loads_samples_and_resumes(tmp_path: Path) -> None:
    expected = json.loads((FIXTURES / "checkpoint-v1.json").read_text())
    raw = torch.load(FIXTURES / "checkpoint-v1.pt", weights_only=True)
    assert raw["version"] == 1 and "checksum" not in raw  # the fixture is what v1 wrote
    state = ckpt.load(FIXTURES / "checkpoint-v1.pt")
    assert state["version"] == ckpt.VERSION and state["position"]["step"] == 3
    images = load_generator(FIXTURES / "checkpoint-v1.pt").sample(4, seed=0)
    stored = np.frombuffer(bytes.fromhex(expected["sample_seed0_n4"]), np.uint8)
    assert images.shape == tuple(expected["sample_shape"])
    assert np.abs(images.flatten().numpy().astype(int) - stored).max() <= 1
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(FIXTURES / "checkpoint-v1.pt", run / "checkpoints" / "last.pt")
    done = _ganforge("train", "--resume", str(run), "--steps", "6", "--no-progress")
    assert "resuming" in done.stderr and "Traceback" not in done.stderr
    records = _records(run)
    for step, losses in expected["continued_to_step6"].items():
        for key, value in losses.items():
            assert _close(records[int(step)][key], value), (step, key)
    assert ckpt.load(run / "checkpoints" / "last.pt")["version"] == ckpt.VERSION


def test_a_saved_config_with_renamed_added_and_removed_fields_loads_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    values = TrainConfig(lr_g=5e-4).to_dict()
    values["learning_rate_g"] = values.pop("lr_g")  # as if lr_g had had that name before
    del values["mismatch"]  # as if mismatch were added after the config was saved
    values["retired_option"] = 3  # a field since removed
    monkeypatch.setattr(cfgmod, "RENAMED", {"learning_rate_g": "lr_g"})
    cfg = cfgmod.from_dict(values, "old.pt")
    assert cfg.lr_g == 5e-4 and cfg.mismatch is False
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "old.pt: its config comes from another ganforge version: 'learning_rate_g' is now "
        "'lr_g'; 'retired_option' is no longer a setting: ignored; new since it was saved: "
        "mismatch=False"
    ]
    # and in a real process, resuming a version 1 file whose config differs so
    raw = torch.load(FIXTURES / "checkpoint-v1.pt", weights_only=True)
    raw["config"] = {k: v for k, v in raw["config"].items() if k != "mismatch"}
    raw["config"]["retired_option"] = 3
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    torch.save(raw, tmp_path / "run" / "checkpoints" / "last.pt")
    code, err = _in_process(capsys, "train", "--resume", "run", "--steps", "4", "--no-progress")
    assert code == 0
    assert sum("its config comes from another ganforge version" in line for line in err) == 1


# --- a damaged last.pt ------------------------------------------------------------------


def _flip_middle_byte(path: Path) -> None:
    with open(path, "r+b") as fh:  # in place: the periodic file sharing its bytes changes too
        fh.seek(path.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))


def _cut_in_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)  # in place, as the flip


@pytest.mark.parametrize("damage", [_flip_middle_byte, _cut_in_half])
def test_a_damaged_last_pt_is_named_and_resume_falls_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage
) -> None:
    run = train(tiny("quick", steps=6, ckpt_every=2, keep_last=3, log_every=0), out="run")
    folder = run / "checkpoints"
    assert os.path.samefile(folder / "last.pt", folder / "step0000006.pt")  # one file, two names
    damage(folder / "last.pt")
    code, err = _in_process(capsys, "sample", str(folder / "last.pt"), "--grid", "g.png")
    assert code == 2 and len(err) == 1 and "not a ganforge checkpoint" not in err[0]
    assert err[0].startswith(f"ganforge: error: {folder / 'last.pt'} is damaged (")
    assert err[0].endswith("; use another checkpoint")
    code, err = _in_process(capsys, "sample", "run", "--grid", "g.png")  # the run: falls back
    assert code == 0 and f"using {folder / 'step0000004.pt'} (step 4)" in err[0]
    done = _ganforge("train", "--resume", "run", "--steps", "8", "--no-progress")
    lines = [line for line in done.stderr.splitlines() if "is damaged" in line]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{folder / 'last.pt'} is damaged (")
    assert (
        f": using {folder / 'step0000004.pt'} (step 4), the newest intact checkpoint; "
        "skipped step0000006.pt (the same file)"
    ) in lines[0]
    assert "resuming run at step 4" in done.stderr
    assert ckpt.load(folder / "last.pt")["position"]["step"] == 8
    assert ckpt.load(folder / "step0000006.pt")["position"]["step"] == 6  # written anew, intact


def test_a_last_pt_copied_half_way_falls_back_to_the_periodic_file_it_copied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = train(tiny("quick", steps=4, ckpt_every=2, keep_last=2, log_every=0), out="run")
    last = run / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.unlink()
    last.write_bytes(data[: len(data) // 2])  # its own file now, as a copy stopped half way
    capsys.readouterr()
    train(resume=run, overrides={"steps": 5})
    err = capsys.readouterr().err
    assert f"using {run / 'checkpoints' / 'step0000004.pt'} (step 4)" in err
    assert "skipped" not in err.split(": using ")[1].splitlines()[0]


# --- a run folder that moves ------------------------------------------------------------


def test_a_moved_run_folder_resumes_samples_evaluates_and_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digits = load_sample().images
    data = digit_folder(tmp_path / "a" / "digits", digits[:48])
    cfg = tiny("seed-simple", data=str(data.resolve()), batch_size=16, g_features=8,
               d_features=8, z_dim=4, steps=3, ckpt_every=0, log_every=0, grid_n=4)  # fmt: skip
    train(cfg, out=tmp_path / "a" / "run")
    (tmp_path / "b").mkdir()
    subprocess.run(["mv", str(tmp_path / "a" / "run"), str(tmp_path / "b" / "moved")], check=True)
    subprocess.run(["mv", str(data), str(tmp_path / "b" / "digits")], check=True)
    moved = tmp_path / "b" / "moved"
    assert _in_process(capsys, "train", "--resume", str(moved), "--steps", "5") == (2, [
        f"ganforge: error: data path {data.resolve()} does not exist; check the path; if this "
        f"run's data moved, give its new place: ganforge train --resume {moved} --data PATH"
    ])  # fmt: skip
    done = _ganforge("train", "--resume", str(moved), "--steps", "5", "--data", "b/digits",
                     "--no-progress")  # fmt: skip
    assert f"resuming {moved} at step 3" in done.stderr
    assert ckpt.load(moved / "checkpoints" / "last.pt")["position"]["step"] == 5
    assert not (tmp_path / "a" / "run").exists()
    assert 'data = "b/digits"' in (moved / "config.toml").read_text()  # the data's new place
    assert _in_process(capsys, "sample", str(moved), "--n", "4", "--grid", "grid.png")[0] == 0
    assert (tmp_path / "grid.png").is_file()
    export = ["export", str(moved), "--format", "safetensors", "--out", "g.safetensors"]
    assert _in_process(capsys, *export)[0] == 0
    evaluate = ["eval", "b/moved", "--samples", "48", "--metrics", "fid", "--no-progress"]
    assert _in_process(capsys, *evaluate)[0] == 0
    assert json.loads((moved / "eval.json").read_text())["metrics"]["fid"] > 0
    digit_folder(tmp_path / "other", digits[100:140])  # 40 other digits
    with pytest.raises(DataError, match="this run trained on 48 images 1x28x28, and the data "
                       "given now holds 40 images 1x28x28"):  # fmt: skip
        train(resume=moved, overrides={"steps": 6, "data": str(tmp_path / "other")})
    digit_folder(tmp_path / "same-count", digits[100:148])
    with pytest.raises(DataError, match="48 images 1x28x28 of other images"):
        train(resume=moved, overrides={"steps": 6, "data": str(tmp_path / "same-count")})
