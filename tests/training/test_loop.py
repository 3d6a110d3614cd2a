"""The training loop end to end: logs, budgets, resume, refusals, divergence."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganforge import seeds, train
from ganforge.errors import ConfigError, RunDirError
from ganforge.losses import LOSSES, Loss, bce_d, bce_g
from ganforge.run import checkpoint as ckpt
from ganforge.run.folder import RunLock
from ganforge.training.loop import TrainingDiverged
from tests.training.helpers import tiny


def test_seed_simple_logs_scalars_and_both_grids(tmp_path: Path) -> None:
    run = train(tiny("seed-simple", steps=400), out=tmp_path / "run")
    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"real", "fake"} <= set(tags["images"])
    assert {"loss/D", "loss/G", "D(x)", "D(G(z))", "img_per_s"} <= set(tags["scalars"])
    # scalars every scalar_every (25) steps and with every grid
    scalar_steps = [1, *range(25, 314, 25), 314, *range(325, 401, 25)]
    assert [e.step for e in acc.Scalars("loss/D")] == scalar_steps
    # grids at the tutorial's cadence, the first batch of each epoch (313 batches of 32 in
    # the sample), and of the last step; indexed by the tutorial's counter, one per grid
    assert [e.step for e in acc.Images("fake")] == [0, 1, 2]
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == scalar_steps  # one record per logged step
    assert records[0]["loss/G"] != records[-1]["loss/G"]
    assert all({"D(x)", "D(G(z))"} <= set(r) for r in records)
    grids = sorted(p.name for p in (run / "samples").glob("step*.png"))
    assert grids == ["step0000001.png", "step0000314.png", "step0000400.png"]
    assert (run / "config.toml").is_file() and (run / "checkpoints" / "last.pt").is_file()


def _parameters_after(cfg, out: Path, resume_at: int | None) -> dict[str, torch.Tensor]:
    if resume_at is None:
        run = train(cfg, out=out)
    else:
        run = train(cfg, out=out, overrides={"steps": resume_at})
        train(resume=run, overrides={"steps": cfg.steps})
    state = ckpt.load(run / "checkpoints" / "last.pt")
    return {
        **{f"G.{k}": v for k, v in state["G"].items()},
        **{f"D.{k}": v for k, v in state["D"].items()},
    }


@pytest.mark.parametrize("preset", ["seed-simple", "quick"])
def test_resume_is_bit_for_bit(tmp_path: Path, preset: str) -> None:
    cfg = tiny(preset, steps=12, log_every=5)
    whole = _parameters_after(cfg, tmp_path / "whole", None)
    split = _parameters_after(cfg, tmp_path / "split", 5)
    assert whole.keys() == split.keys()
    if preset == "quick":
        assert any("running_mean" in k for k in whole)
    for key in whole:
        assert torch.equal(whole[key], split[key]), key


def test_resume_continues_step_counter_and_epochs(tmp_path: Path) -> None:
    cfg = tiny("seed-simple", steps=0, epochs=1, batch_size=4096)  # 3 batches per epoch
    run = train(cfg, out=tmp_path / "run")
    assert ckpt.load(run / "checkpoints" / "last.pt")["position"]["step"] == 3
    train(resume=run, overrides={"epochs": 2})
    pos = ckpt.load(run / "checkpoints" / "last.pt")["position"]
    assert (pos["step"], pos["epoch"], pos["index"]) == (6, 2, 0)


def test_second_train_into_a_run_is_refused(tmp_path: Path) -> None:
    run = train(tiny(), out=tmp_path / "run")
    before = (run / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(RunDirError, match="already exists; continue it with --resume"):
        train(tiny(), out=run)
    assert (run / "checkpoints" / "last.pt").read_bytes() == before


def test_resume_refuses_changed_training_settings(tmp_path: Path) -> None:
    run = train(tiny(), out=tmp_path / "run")
    with pytest.raises(ConfigError, match="lr_d, z_dim"):
        train(resume=run, overrides={"steps": 10, "lr_d": 0.1, "z_dim": 3})


def test_locked_run_is_refused(tmp_path: Path) -> None:
    run = train(tiny(), out=tmp_path / "run")
    with RunLock(run), pytest.raises(RunDirError, match="in use by process"):
        train(resume=run, overrides={"steps": 10})
    train(resume=run, overrides={"steps": 8})  # released: resumes fine


def _nan_after(step: int) -> Loss:
    calls = {"n": 0}

    def d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = bce_d(real, fake)
        return loss * float("nan") if calls["n"] > step else loss

    return Loss(d, bce_g)


def test_nan_stops_naming_step_and_network_and_keeps_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(LOSSES, "nan-test", _nan_after(4))
    cfg = tiny(loss="nan-test", steps=20, ckpt_every=2, keep_last=0)
    with pytest.raises(TrainingDiverged, match="loss of D became nan at step 5"):
        train(cfg, out=tmp_path / "run")
    state = ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["position"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in state["G"].values())


def test_nan_rollback_halves_lr_and_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = {"n": 0}

    def d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return bce_d(real, fake) * (float("nan") if calls["n"] == 5 else 1.0)

    monkeypatch.setitem(LOSSES, "nan-once", Loss(d, bce_g))
    cfg = tiny(loss="nan-once", steps=8, ckpt_every=2, on_nan="rollback")
    run = train(cfg, out=tmp_path / "run")
    state = ckpt.load(run / "checkpoints" / "last.pt")
    assert state["position"]["step"] == 8
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(cfg.lr_d / 2)
    assert "loss of D became nan at step 5: rolled back to step 4" in capsys.readouterr().err


def test_image_folder_trains_rgb_dcgan_at_32(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        size = (40 + 3 * i, 32 + 2 * i)
        arr = rng.integers(0, 255, (size[1], size[0], 4), dtype=np.uint8)
        mode, ext = [("RGB", "png"), ("L", "jpg"), ("RGBA", "png"), ("RGB", "jpg")][i % 4]
        img = Image.fromarray(arr[..., : {"RGB": 3, "L": 1, "RGBA": 4}[mode]].squeeze())
        img.save(folder / f"img{i}.{ext}")
    cfg = tiny(data=str(folder), image_size=32, channels=3, batch_size=4, steps=4)
    run = train(cfg, out=tmp_path / "run")
    state = ckpt.load(run / "checkpoints" / "last.pt")
    assert state["position"]["step"] == 4
    last_weight = [v for k, v in state["G"].items() if k.endswith("weight")][-1]
    assert last_weight.shape[1] == 3  # the last ConvTranspose makes 3 channels


def test_a_32_px_colour_folder_gets_fast_cpus_recipe_for_that_size(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from ganforge import config as cfgmod
    from ganforge.training.loop import Trainer

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    cfg = dataclasses.replace(
        cfgmod.load_preset("fast-cpu"), data=str(folder), minutes=0.0, steps=1, progress=False
    )
    trainer = Trainer(cfg, out=tmp_path / "run")  # no flag: the data decides
    out = capsys.readouterr().err
    assert "-> 3 channels, 32 px" in out and "its colour-32 recipe" in out
    assert (trainer.cfg.channels, trainer.cfg.image_size) == (3, 32)
    assert (trainer.cfg.g_features, trainer.cfg.d_features) == (24, 48)


def _grid_steps(run: Path) -> list[int]:
    return sorted(int(p.stem[4:]) for p in (run / "samples").glob("step*.png"))


def test_a_run_ends_with_a_grid_of_its_last_step_indexed_by_step(tmp_path: Path) -> None:
    run = train(tiny(steps=7, log_every=5, scalar_every=3), out=tmp_path / "run")
    assert _grid_steps(run) == [5, 7]  # the last step is not a multiple of log_every
    events = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert [e.step for e in events.Images("fake")] == [5, 7]  # the training step
    assert [e.step for e in events.Scalars("loss/D")] == [3, 5, 6, 7]
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == [3, 5, 6, 7]
    assert ckpt.load(run / "checkpoints" / "last.pt")["position"]["step"] == 7
    # no second grid when the last step was logged anyway
    again = train(tiny(steps=10, log_every=5), out=tmp_path / "again")
    assert _grid_steps(again) == [5, 10]


def test_the_extra_last_grid_keeps_resume_bit_for_bit_in_train_mode(tmp_path: Path) -> None:
    # grids drawn in train mode update BatchNorm's running statistics; the last step's
    # extra grid must not, or a run stopped between two logs would resume differently
    cfg = tiny(steps=7, log_every=5, grid_mode="train", ema_decay=0.0)  # grids draw G itself
    whole = train(cfg, out=tmp_path / "whole")
    split = train(cfg, out=tmp_path / "split", overrides={"steps": 4})
    train(resume=split, overrides={"steps": 7})
    assert _grid_steps(split) == [4, 5, 7]
    a, b = (ckpt.load(r / "checkpoints" / "last.pt") for r in (whole, split))
    for net in ("G", "D"):
        for key, value in a[net].items():
            assert torch.equal(value, b[net][key]), f"{net}.{key}"


def test_a_signal_between_logs_ends_with_a_grid_of_the_last_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}

    def d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 3:  # as Ctrl-C would, during step 3
            os.kill(os.getpid(), signal.SIGINT)
        return bce_d(real, fake)

    monkeypatch.setitem(LOSSES, "signal-test", Loss(d, bce_g))
    run = train(tiny(loss="signal-test", steps=100, log_every=50), out=tmp_path / "run")
    assert ckpt.load(run / "checkpoints" / "last.pt")["position"]["step"] == 3
    assert _grid_steps(run) == [3]


def test_a_time_budget_shows_its_total_and_ends_with_a_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny(minutes=0.02, steps=0, log_every=100_000, progress=True)
    run = train(cfg, out=tmp_path / "run")
    err = capsys.readouterr().err
    # tqdm draws the bar when it opens and when it closes (stderr is not a terminal)
    bars = [line for line in re.split(r"[\r\n]", err) if "trained [" in line]
    assert len(bars) >= 2 and all("/00:01 trained [" in line for line in bars), err
    assert "  0%" in bars[0] and "100%" in bars[-1] and "00:01/00:01" in bars[-1]
    last = ckpt.load(run / "checkpoints" / "last.pt")["position"]["step"]
    assert f"step {last}, D=" in bars[-1] and "img_s=" in bars[-1]
    assert _grid_steps(run) == [last]


def test_nan_stops_at_the_first_check_after_it_naming_its_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the losses are read every scalar_every steps, not every step; the stop names the
    # first bad step and nothing of the bad steps is logged or saved
    calls = {"n": 0}

    def d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return bce_d(real, fake) * (float("inf") if calls["n"] >= 6 else 1.0)

    monkeypatch.setitem(LOSSES, "inf-test", Loss(d, bce_g))
    cfg = tiny(loss="inf-test", steps=20, scalar_every=4, log_every=0, ckpt_every=0)
    with pytest.raises(TrainingDiverged, match=r"loss of D became inf at step 6; .* none"):
        train(cfg, out=tmp_path / "run")
    assert calls["n"] == 8  # stopped at the check after step 8
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == [4]
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    assert _grid_steps(tmp_path / "run") == []


def test_a_rollback_logs_the_steps_it_takes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}

    def d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return bce_d(real, fake) * (float("nan") if calls["n"] == 7 else 1.0)

    monkeypatch.setitem(LOSSES, "nan-at-7", Loss(d, bce_g))
    cfg = tiny(loss="nan-at-7", steps=8, scalar_every=3, ckpt_every=4, on_nan="rollback")
    run = train(cfg, out=tmp_path / "run")
    # found at step 8's checkpoint, rolled back to step 4: steps 5 to 8 again, with their logs
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert [r["step"] for r in records] == [3, 6, 6, 8]
    assert _grid_steps(run) == [8]


def test_an_epoch_budget_with_too_few_updates_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ganforge.training.loop import _few_epochs

    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(32):
        Image.fromarray(rng.integers(0, 256, (28, 28, 3), np.uint8)).save(folder / f"{i}.png")
    cfg = tiny(data=str(folder), steps=0, epochs=2, batch_size=16)
    train(cfg, out=tmp_path / "run")
    out = capsys.readouterr()
    assert "2 epochs of 2 batches are 4 updates: too few for a GAN" in out.out + out.err
    assert "try --epochs 1500" in out.out + out.err
    # the tutorial's 5 epochs of MNIST (469 batches of 128) are enough; steps or minutes too
    assert _few_epochs(tiny(steps=0, epochs=5), 469) == ""
    assert _few_epochs(tiny(steps=0, epochs=5, minutes=10.0), 27) == ""
    assert _few_epochs(tiny(steps=0, epochs=5), 27).startswith("5 epochs of 27 batches are 135")


def test_precision_auto_says_what_it_chose_after_the_data_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(tiny(steps=1, precision="auto", channels=0, image_size=0), out=tmp_path / "run")
    err = capsys.readouterr().err
    data = re.search(r"^data: .* -> 1 channel, 28 px", err, re.M)
    precision = re.search(r"^precision: (bf16|fp32) \(auto: this cpu ", err, re.M)
    assert data is not None and precision is not None, err
    assert data.start() < precision.start()  # the reasons first, then what they chose


def test_checkpoints_hold_the_ema_with_its_own_batchnorm_statistics(tmp_path: Path) -> None:
    from ganforge.models import build_models
    from ganforge.training.ema import EMA

    cfg = tiny("quick", steps=6, log_every=4)
    saved = ckpt.load(train(cfg, out=tmp_path / "run") / "checkpoints" / "last.pt")
    means = {k: v for k, v in saved["G_ema"].items() if k.endswith("running_mean")}
    assert means and all(not torch.equal(v, saved["G"][k]) for k, v in means.items())
    # the same statistics as calibrating the saved average again
    G, _ = build_models(dataclasses.replace(cfg, channels=1, image_size=28).model_spec())
    G.load_state_dict(saved["G_ema"])
    ema = EMA(G, 0.5, seed=seeds.stream(cfg.seed, seeds.BN_STATS))
    ema.model.load_state_dict(saved["G_ema"])
    ema.calibrate(cfg.z_dim)
    for key, value in ema.model.state_dict().items():
        torch.testing.assert_close(value, saved["G_ema"][key], msg=key)
    # calibrating (at every grid and checkpoint) changes nothing that trains
    other = ckpt.load(
        train(dataclasses.replace(cfg, log_every=1), out=tmp_path / "grids")
        / "checkpoints" / "last.pt"
    )  # fmt: skip
    for net in ("G", "D"):
        for key, value in saved[net].items():
            assert torch.equal(value, other[net][key]), (net, key)
