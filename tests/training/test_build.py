"""build_run and the quality options it builds, end to end: conditional training, EMA and
augmentation in checkpoints, n_critic, penalties, exact resume, bad settings refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import config as cfgmod
from ganforge.config import TrainConfig
from ganforge.data import ImageData
from ganforge.errors import ConfigError
from ganforge.models import build_models
from ganforge.run import checkpoint as ckpt
from ganforge.run import device as devmod
from ganforge.run.device import precision_notice
from ganforge.sampling import load_generator
from ganforge.training.build import build_run, step_options, with_classes
from ganforge.training.loop import train
from tests.training.helpers import on_mnist

TINY = dict(
    data="mnist-sample", model="mlp", image_size=28, z_dim=8, g_features=16, d_features=16,
    batch_size=16, progress=False, log_every=2, grid_n=10,
    threads=1,  # runs compared bit for bit need one thread count (timing may pick either)
)  # fmt: skip


def test_conditional_run_trains_end_to_end(tmp_path: Path) -> None:
    cfg = TrainConfig(
        **{**TINY, "model": "dcgan", "g_features": 4, "d_features": 4},
        conditional=True, steps=3, ema_decay=0.9, loss="hinge", spectral_norm_d=True,
        mismatch=True,
    )  # fmt: skip
    run = train(cfg, out=tmp_path / "run")
    state = ckpt.load(run / "checkpoints" / "last.pt")
    assert state["config"]["num_classes"] == 10  # taken from the data
    assert cfgmod.load_file(run / "config.toml").num_classes == 10
    gain = "net.0.1.gain.weight"  # G's first conditional BatchNorm: a gain per class
    assert list(state["G_ema"]) == list(state["G"]) and state["G"][gain].shape[0] == 10
    assert state["ema_updates"] == 3
    assert not torch.equal(state["G_ema"][gain], state["G"][gain])
    grids = sorted(p.name for p in (run / "samples").glob("step*.png"))
    assert grids == ["step0000002.png", "step0000003.png"]  # log_every 2, and the last step
    G = load_generator(run)
    images = G.sample(4, seed=0, labels=torch.tensor([0, 1, 2, 3]))
    assert images.shape == (4, 1, 28, 28) and images.dtype == torch.uint8


def _weights(run: Path) -> dict[str, torch.Tensor]:
    state = ckpt.load(run / "checkpoints" / "last.pt")
    return {**{f"G.{k}": v for k, v in state["G"].items()}, **state["G_ema"], **state["D"]}


def test_resume_with_every_option_continues_exactly(tmp_path: Path) -> None:
    options = dict(
        loss="wgan-gp", n_critic=2, r1_gamma=1.0, r1_every=3, ema_decay=0.8, ema_rampup=2,
        augment="translation,cutout,color", augment_p=0.5, augment_target=0.6,
        augment_interval=1, augment_kimg=0.1, lr_d=1e-3,
    )  # fmt: skip
    whole = train(TrainConfig(**TINY, **options, steps=6), out=tmp_path / "whole")
    half = train(TrainConfig(**TINY, **options, steps=3), out=tmp_path / "half")
    train(resume=half, overrides={"steps": 6})
    a, b = _weights(whole), _weights(half)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    state = ckpt.load(whole / "checkpoints" / "last.pt")
    assert state["ema_updates"] == 3  # 6 D steps, a G step after every second
    assert state["augment"]["p"] != 0.5  # the adaptive p moved
    lines = (whole / "metrics.jsonl").read_text().splitlines()
    assert '"augment/p"' in lines[-1] and '"penalty/gp"' in lines[-1]


def test_conditional_needs_labelled_data() -> None:
    cfg = TrainConfig(conditional=True)
    unlabelled = ImageData(np.zeros((4, 1, 28, 28), np.uint8))
    with pytest.raises(ConfigError, match="labelled data"):
        with_classes(cfg, unlabelled)
    labelled = ImageData(np.zeros((4, 1, 28, 28), np.uint8), np.arange(4), list("abcd"))
    assert with_classes(cfg, labelled).num_classes == 4
    with pytest.raises(ConfigError, match="num_classes is 3"):
        with_classes(TrainConfig(conditional=True, num_classes=3), labelled)
    assert with_classes(TrainConfig(), unlabelled).num_classes == 0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("n_critic", 0, "n_critic must be at least 1"),
        ("r1_every", 0, "r1_every must be at least 1"),
        ("r1_gamma", -1.0, "r1_gamma must not be negative"),
        ("ema_decay", 1.0, "ema_decay must be in"),
        ("augment_p", 1.5, "augment_p must be in"),
        ("augment_target", -0.1, "augment_target must be in"),
        ("augment", "translation,flip", "unknown augmentation 'flip'"),
        ("augment_kimg", 0.0, "augment_kimg must be positive"),
        ("top_k", 0.0, "top_k must be in"),
        ("top_k", 1.5, "top_k must be in"),
        ("top_k_decay", 0.0, "top_k_decay must be in"),
    ],
)
def test_bad_quality_settings_are_refused(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cfgmod.validate(cfgmod.apply(TrainConfig(), {key: value}, "test"))


@pytest.mark.parametrize("name", ["fast-cpu", "best"])
def test_quality_presets_validate_and_build(name: str) -> None:
    cfg = on_mnist(name)
    assert cfg.ema_decay > 0 and cfg.budget_set()
    G, D = build_models(cfg.model_spec())
    images = G.eval()(torch.randn(2, cfg.z_dim))
    assert images.shape == (2, cfg.channels, cfg.image_size, cfg.image_size)
    assert D.eval()(images).shape == (2,)
    if name == "best":
        assert cfg.spectral_norm_d and cfg.loss == "hinge" and cfg.augment


def test_build_run_builds_what_the_config_asks_for() -> None:
    cfg = on_mnist("fast-cpu")
    cfg = TrainConfig(**{
        **cfg.to_dict(), "n_critic": 3, "augment": "translation", "r1_gamma": 0.1,
        "r1_every": 4, "ema_decay": 0.99, "holdout": 0.1, "lr_g": 3e-4, "lr_d": 1e-4,
        "beta1": 0.2, "beta2": 0.95, "batch_size": 16,
    })  # fmt: skip
    images = np.random.default_rng(0).integers(0, 256, (100, 1, 28, 28), np.uint8)
    parts = build_run(cfg, ImageData(images), torch.device("cpu"), say=None)
    assert parts.step.n_critic == 3 and parts.augment is parts.step.augment is not None
    assert parts.ema is parts.step.ema is not None and parts.ema.decay == 0.99
    assert [p.name for p in parts.step.loss.penalties] == ["r1"]
    for opt, lr in ((parts.step.opt_g, 3e-4), (parts.step.opt_d, 1e-4)):
        assert (opt.defaults["lr"], opt.defaults["betas"]) == (lr, (0.2, 0.95))
    assert len(parts.trained) == 90 and parts.heldout is not None and len(parts.heldout) == 10
    assert len(parts.loader) == math.ceil(90 / 16)
    # the weights depend on the seed alone
    again = build_run(cfg, ImageData(images), torch.device("cpu"), say=None)
    for a, b in zip(parts.G.parameters(), again.G.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("flags", "chosen"), [("avx2 fma", "fp32"), ("avx512f amx_bf16", "bf16")])
def test_auto_precision_says_what_it_chose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str, chosen: str
) -> None:
    (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: fpu sse {flags}\n")
    monkeypatch.setattr(devmod, "CPUINFO", str(tmp_path / "cpuinfo"))
    cfg = TrainConfig(**{**TINY, "channels": 1, "precision": "auto"})
    images = np.random.default_rng(0).integers(0, 256, (40, 1, 28, 28), np.uint8)
    parts = build_run(cfg, ImageData(images), torch.device("cpu"), say=None)
    assert precision_notice(torch.device("cpu"), "auto").startswith(
        f"precision: {chosen} (auto: this cpu "
    )
    assert precision_notice(torch.device("cpu"), "bf16") == ""  # asked for: nothing to say
    with parts.autocast():
        y = parts.G(torch.zeros(2, cfg.z_dim))
    assert y.dtype == (torch.bfloat16 if chosen == "bf16" else torch.float32)


def test_step_options_take_every_step_setting_from_the_config() -> None:
    base = step_options(TrainConfig())
    changes = {
        "lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.1, "beta2": 0.5, "n_critic": 2,
        "channels_last": False, "freeze_d": False, "adam_impl": "foreach", "compile": True,
        "cuda_graphs": True, "compile_backend": "aot_eager",
    }  # fmt: skip
    for key, value in changes.items():
        assert step_options(TrainConfig(**{key: value})) != base, key
    cond = TrainConfig(conditional=True, num_classes=7, mismatch=True)
    assert step_options(cond).mismatch_classes == 7
    assert step_options(TrainConfig(num_classes=7, mismatch=True)).mismatch_classes == 0
