"""``ganforge bench``: figures for ganforge's step and the reference loop, side by side."""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from ganforge.bench.timing import bench, bench_data, ganforge_steps
from ganforge.cli import main
from ganforge.config import load_preset
from ganforge.cores import usable_cores
from ganforge.data import resolve_shape
from ganforge.errors import ConfigError
from tests.conftest import run_cli


def test_bench_cli_prints_both_loops_and_their_ratio() -> None:
    proc = run_cli(
        "bench", "--preset", "seed-simple", "--vs-reference", "--steps", "3", "--warmup", "1"
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "bench seed-simple on cpu" in out and "batch 32" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:4]}
    assert set(rows) == {"ganforge", "reference"}
    for row in rows.values():
        img_s, step_ms, gflop, gflop_s = (float(v) for v in row[1:5])
        assert img_s > 0 and step_ms > 0 and gflop > 0 and gflop_s > 0
        assert img_s == pytest.approx(32 / (step_ms / 1e3), rel=0.01)
    ratio = re.search(r"ratio ganforge / reference: ([0-9.]+)x img/s", out)
    assert ratio is not None and float(ratio.group(1)) > 0
    assert "window 3/3 reference" in proc.stderr  # progress lines go to stderr


def test_bench_counts_the_flops_freezing_d_saves() -> None:
    cfg = load_preset("seed-simple")
    result = bench(
        cfg, steps=1, warmup=0, windows=1, vs_reference=True,
        variants={"unfrozen": {"freeze_d": False}},
    )  # fmt: skip
    ours, unfrozen, ref = (result.loop(n) for n in ("ganforge", "unfrozen", "reference"))
    # Unfrozen, ganforge's step does the reference's matrix products exactly...
    assert unfrozen.flops_per_image == ref.flops_per_image
    # ...and frozen, it skips D's two weight gradients in the G step (2 FLOPs per MAC).
    assert ref.flops_per_image - ours.flops_per_image == 2 * (784 * 128 + 128 * 1)
    # one training step of the simple GAN: forward, backward, both networks, per image
    assert 0.002e9 < ref.flops_per_image < 0.003e9
    assert ours.peak_bytes > 0 and ref.peak_bytes > 0
    assert ours.threads in (1, usable_cores())  # chosen by timing
    assert result.ratio is not None
    assert [lp.name for lp in result.loops] == ["ganforge", "unfrozen", "reference"]


def test_bench_refuses_a_reference_it_cannot_reproduce(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--preset", "quick", "--vs-reference", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "--vs-reference compares against the tutorial's two programs" in err
    assert len(err.strip().splitlines()) == 1


def test_bench_refuses_bad_step_counts(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ConfigError, match="bench needs --steps >= 1"):
        bench(load_preset("seed-simple"), steps=0)
    assert main(["bench", "--preset", "seed-simple", "--warmup", "-1"]) == 2
    assert "bench needs --steps >= 1, --warmup >= 0" in capsys.readouterr().err


def test_bench_of_best_times_the_step_training_takes() -> None:
    # best's step: n_critic 5, DiffAugment, EMA and spectral norm, as build_run makes it
    cfg = dataclasses.replace(load_preset("best"), g_features=8, d_features=8, batch_size=8)
    result = bench(cfg, steps=10, warmup=0, windows=1)
    loop = result.loop("ganforge")
    assert loop.parts is not None
    step, ema, augment = loop.parts.step, loop.parts.ema, loop.parts.augment
    assert step.n_critic == 5 and ema is not None and augment is not None
    d_steps = step.d_steps  # 1 step for FLOPs, 1 for memory, then the 10 timed ones
    assert d_steps == 12
    assert ema.updates == d_steps // 5  # the EMA follows every G step, and only those
    # and D sees augmented images: its first input of a step is not the real batch
    shaped, _ = resolve_shape(dataclasses.replace(cfg, data="mnist-sample"))
    it, parts = ganforge_steps(shaped, torch.device("cpu"), bench_data(shaped))
    seen: list[torch.Tensor] = []
    parts.D.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    next(it)
    real, _ = parts.loader.batch(0, 0)
    assert seen[0].shape == real.shape and not torch.equal(seen[0], real)
    assert "n_critic 5" in loop.summary and "augment translation,cutout" in loop.summary
    assert "EMA 0.999" in loop.summary
    assert any(line.startswith("ganforge step: resnet") for line in result.lines())


def test_bench_counts_the_flops_of_a_step_with_r1() -> None:
    # R1 takes a gradient inside the step; FLOP counting must go through it
    cfg = dataclasses.replace(load_preset("fast-cpu"), g_features=4, d_features=4, r1_every=1)
    loop = bench(cfg, steps=1, warmup=0, windows=1).loop("ganforge")
    assert "loss bce + r1" in loop.summary
    assert loop.flops_per_image > 0
