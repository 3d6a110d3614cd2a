"""The training-health monitor: each warning provoked in a real short run, and a healthy run
that raises none. Read back from metrics.jsonl and TensorBoard's event files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from ganforge import config as cfgmod
from ganforge import train
from ganforge.data import load_sample
from ganforge.run import checkpoint as ckpt
from ganforge.training.health import TrainingUnhealthy
from ganforge.training.loop import Trainer
from tests.conftest import run_cli
from tests.training.helpers import tiny


def _warnings(run: Path) -> list[dict[str, Any]]:
    """The health records of a run's metrics.jsonl."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if "health" in r]


def _board(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def _assert_raised(run: Path, name: str, first: int, last: int) -> int:
    """``name`` was raised once, at a step in [first, last], in metrics.jsonl and TensorBoard;
    return the step."""
    raised = [r for r in _warnings(run) if r["status"] == "warning"]
    assert [r["health"] for r in raised if r["health"] == name] == [name], raised
    record = next(r for r in raised if r["health"] == name)
    step = record["step"]
    assert first <= step <= last, record
    assert record["message"].startswith(f"health: {name} at step {step}: ")
    assert "Try: " in record["message"]
    acc = _board(run)
    assert (step, 1.0) in [(e.step, e.value) for e in acc.Scalars(f"health/{name}")]
    (text,) = acc.Tensors(f"health/{name}/text_summary")
    assert text.step == step
    assert tensor_util.make_ndarray(text.tensor_proto).item().decode() == record["message"]
    return step


def _small(**changes: Any) -> Any:
    """A quick-like run on the bundled MNIST digits at small widths, on one thread: the
    provoked runs follow one trajectory whatever the machine's core count."""
    base = {"data": "mnist-sample", "log_every": 0, "ckpt_every": 0, "z_dim": 16, "threads": 1}
    return tiny("quick", **(base | changes))


def test_a_healthy_run_raises_nothing(tmp_path: Path) -> None:
    cfg = _small(steps=500, g_features=16, d_features=16, holdout=0.1)
    run = train(cfg, out=tmp_path / "run")
    assert _warnings(run) == []
    acc = _board(run)
    assert not [t for t in acc.Tags()["tensors"] if t.startswith("health/")]
    diversity = acc.Scalars("health/diversity")
    assert [e.step for e in diversity] == list(range(50, 501, 50))
    assert diversity[-1].value > 0.5  # G's images differ about as much as real ones
    (memo,) = acc.Scalars("health/memorisation")  # every 10th check, with holdout
    assert memo.step == 500 and memo.value > 0.8  # new images, not copies


def test_d_wins_with_ten_times_g_learning_rate(tmp_path: Path) -> None:
    cfg = _small(steps=300, g_features=8, d_features=8, lr_g=2e-4, lr_d=2e-3)
    run = train(cfg, out=tmp_path / "run")
    _assert_raised(run, "d-wins", 250, 300)  # the span is 200 steps: the 5th check


def test_collapse_when_g_ignores_z(tmp_path: Path) -> None:
    cfg = _small(steps=600, g_features=8, d_features=8, ema_decay=0.0, health_every=25)
    trainer = Trainer(cfg, out=tmp_path / "run")
    # z -> the first feature map; with its weights at 0 every z draws the same image
    first = next(m for m in trainer.G.modules() if isinstance(m, torch.nn.ConvTranspose2d))
    first.weight.data.zero_()
    first.weight.requires_grad_(False)
    trainer.run()
    step = _assert_raised(trainer.folder, "collapse", 500, 550)  # judged from step 500
    values = {e.step: e.value for e in _board(trainer.folder).Scalars("health/diversity")}
    assert values[step] < 0.01


def _digit_folder(folder: Path, n: int) -> Path:
    """``n`` real MNIST digits as PNG files."""
    folder.mkdir()
    for i, image in enumerate(load_sample().images[:n]):
        Image.fromarray(image[0]).save(folder / f"{i:03d}.png")
    return folder


class _Copier(torch.nn.Module):
    """A generator that has learnt its training images by heart: z picks one of them."""

    def __init__(self, images: np.ndarray, z_dim: int) -> None:
        super().__init__()
        self.z_dim, self.image_size, self.channels, self.num_classes = z_dim, 28, 1, 0
        self.register_buffer("images", torch.from_numpy(images).float().div(127.5).sub(1))
        self.gain = torch.nn.Parameter(torch.ones(()))  # something for Adam to hold

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        pick = (z[:, 0].abs() * 1e4).long() % len(self.images)
        return self.images[pick] * self.gain


def test_memorising_when_a_real_g_trains_on_32_images_for_long(tmp_path: Path) -> None:
    # The tutorial's fully connected GAN with a wide D (512), learning rate 2e-3 and
    # beta1 0.5, on 32 digits (8 held out): its samples become copies of a few training
    # digits (benchmarks/memorising_small.py --variant mlp-wide-d; docs/guide-health.md).
    data = _digit_folder(tmp_path / "digits", 40)
    cfg = tiny(
        "seed-simple", data=str(data), holdout=0.2, steps=4000, log_epoch_start=False,
        ckpt_every=0, health_every=50, lr_g=2e-3, lr_d=2e-3, beta1=0.5, z_dim=8,
        d_features=512,
    )  # fmt: skip
    run = train(cfg, out=tmp_path / "run")
    step = _assert_raised(run, "memorising", 1000, 4000)  # probes every 500 steps
    ratios = {e.step: e.value for e in _board(run).Scalars("health/memorisation")}
    assert ratios[500] > 0.7  # new-looking at first
    assert ratios[step] < 0.5 and ratios[step - 500] < 0.5  # two probes in a row
    assert ratios[4000] < 0.45  # and it goes on copying


def test_memorising_when_g_copies_its_32_training_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The measure's two ends: G is a copier from the start (ratio 0), and the run, the
    # split, the probes and the reports are real.
    from ganforge.data import ImageData
    from ganforge.data.split import holdout_split
    from ganforge.models import MODELS

    data = _digit_folder(tmp_path / "digits", 40)  # 32 trained on, 8 held out
    digits = ImageData(load_sample().images[:40])
    trained, _ = holdout_split(digits, 0.2, 0)  # the loop's split: by the seed alone

    def copier(cfg: Any) -> tuple[torch.nn.Module, torch.nn.Module]:
        _, d = MODELS["dcgan"](cfg)
        return _Copier(trained.images, cfg.z_dim), d

    monkeypatch.setitem(MODELS, "copier", copier)
    cfg = _small(
        data=str(data), model="copier", steps=100, holdout=0.2, health_every=5, ema_decay=0.0
    )
    run = train(cfg, out=tmp_path / "run")
    _assert_raised(run, "memorising", 100, 100)  # probes at steps 50 and 100: 2 in a row
    ratios = {e.step: e.value for e in _board(run).Scalars("health/memorisation")}
    # copies, but for the gain Adam moves a little from 1
    assert ratios == {50: pytest.approx(0, abs=0.05), 100: pytest.approx(0, abs=0.05)}


def test_augment_pinned_by_an_unreachable_target(tmp_path: Path) -> None:
    # r_t = E[sign(D(real))] stays above 0.01 while D calls most real images real: p only rises
    cfg = _small(
        steps=300, augment="translation,cutout", augment_p=0.0, augment_target=0.01,
        augment_kimg=0.5, health_every=25,
    )  # fmt: skip
    run = train(cfg, out=tmp_path / "run")
    step = _assert_raised(run, "augment-pinned", 100, 300)
    values = {e.step: e.value for e in _board(run).Scalars("health/augment/p")}
    assert all(values[s] == 1.0 for s in range(step - 75, step + 1, 25))  # 4 checks at 1


def test_diverging_at_learning_rate_one_before_any_nan(tmp_path: Path) -> None:
    cfg = _small(steps=60, lr_g=1.0, lr_d=1.0, health_every=10)
    run = train(cfg, out=tmp_path / "run")  # finishes: no loss became NaN
    step = _assert_raised(run, "diverging", 20, 60)  # losses of 25-75 at step 10, 100+ by 40
    values = {e.step: e.value for e in _board(run).Scalars("health/loss/G")}
    assert values[step] >= 100
    assert ckpt.load(run / "checkpoints" / "last.pt")["position"]["step"] == 60


def test_stop_saves_and_exits_with_the_reason(tmp_path: Path) -> None:
    cfg = _small(steps=60, lr_g=1.0, lr_d=1.0, health_every=10, health="stop")
    with pytest.raises(TrainingUnhealthy, match=r"stopped at step (\d+) on 'diverging'") as err:
        train(cfg, out=tmp_path / "run")
    step = int(str(err.value).split("stopped at step ")[1].split()[0])
    assert step < 60 and step == _warnings(tmp_path / "run")[0]["step"]
    assert ckpt.load(tmp_path / "run" / "checkpoints" / "last.pt")["position"]["step"] == step
    cfgmod.save(cfg, tmp_path / "stop.toml")
    proc = run_cli("train", "--config", str(tmp_path / "stop.toml"), "--out", str(tmp_path / "cli"))
    assert proc.returncode == 3, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "health = stop: stopped at step " in last and "on 'diverging'" in last
    assert "--resume" in last and "Traceback" not in proc.stderr


def test_the_monitor_changes_no_number_of_the_run(tmp_path: Path) -> None:
    states = []
    for health in ("off", "warn"):
        cfg = _small(steps=40, health=health, health_every=4, holdout=0.5)  # a probe at 40
        run = train(cfg, out=tmp_path / health)
        states.append(ckpt.load(run / "checkpoints" / "last.pt"))
    assert "health/diversity" not in _board(tmp_path / "off").Tags()["scalars"]
    assert "health/diversity" in _board(tmp_path / "warn").Tags()["scalars"]
    off, warn = states
    for net in ("G", "D", "G_ema"):
        for key, value in off[net].items():
            assert torch.equal(value, warn[net][key]), (net, key)


def test_holdout_keeps_images_out_of_training(tmp_path: Path) -> None:
    from ganforge.data import ImageData
    from ganforge.data.split import holdout_split
    from ganforge.errors import ConfigError

    images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
    data = ImageData(images, np.arange(100))
    assert holdout_split(data, 0.0, 0) == (data, None)
    trained, held = holdout_split(data, 0.1, 0)
    assert held is not None and (len(trained), len(held)) == (90, 10)
    assert sorted(np.concatenate([trained.labels, held.labels]).tolist()) == list(range(100))
    again = holdout_split(data, 0.1, 0)[1]
    assert again is not None and np.array_equal(again.images, held.images)  # by seed alone
    other = holdout_split(data, 0.1, 1)[1]
    assert other is not None and not np.array_equal(other.images, held.images)
    with pytest.raises(ConfigError, match="keeps 0 out of training"):
        holdout_split(data, 0.001, 0)


def test_settings_are_checked_and_health_may_change_on_resume(tmp_path: Path) -> None:
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="health must be one of off, warn, stop"):
        train(_small(health="loud"), out=tmp_path / "a")
    with pytest.raises(ConfigError, match=r"holdout must be in \[0, 1\)"):
        train(_small(holdout=1.0), out=tmp_path / "b")
    with pytest.raises(ConfigError, match="health_every must be positive"):
        train(_small(health_every=0), out=tmp_path / "c")
    run = train(_small(steps=4), out=tmp_path / "run")
    train(resume=run, overrides={"steps": 8, "health": "off", "health_every": 2})
    with pytest.raises(ConfigError, match="cannot resume with changed settings: holdout"):
        train(resume=run, overrides={"steps": 12, "holdout": 0.1})
