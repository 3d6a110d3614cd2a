"""Channels and size from the data: the rule, its one line, flags that win, named data."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge import config as cfgmod
from ganforge.config import TrainConfig, load_preset
from ganforge.data import DataSpec, load_data, named, prepare
from ganforge.data.shape import NAMED_SHAPES, choose_size, resolve_shape
from ganforge.errors import ConfigError, DataError
from tests.data.fakes import smooth_rgb


def _folder(root: Path, n: int, make, size: tuple[int, int], suffix: str = ".png") -> Path:
    """``n`` images ``make(rng, size)`` in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        make(rng, size).save(root / f"{i:03d}{suffix}")
    return root


def _rgb(rng, size):
    return smooth_rgb(rng, *size)


def _rgba(rng, size):
    img = smooth_rgb(rng, *size).convert("RGBA")
    img.putalpha(200)
    return img


def _grey(rng, size):
    return smooth_rgb(rng, *size).convert("L")


def _grey_as_rgb(rng, size):  # RGB files whose pixels are all grey
    return smooth_rgb(rng, *size).convert("L").convert("RGB")


COLOURS = [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]
GREYS = [0, 0, 0, 80, 80, 80, 160, 160, 160, 250, 250, 250]


def _palette(colours: list[int]):
    def make(rng, size):
        img = Image.fromarray(rng.integers(0, 4, size[::-1], dtype=np.uint8), "P")
        img.putpalette(colours + [0] * (768 - len(colours)))
        return img

    return make


def _resolve(data: Path | str, preset: str = "quick", **changes) -> tuple[TrainConfig, list[str]]:
    cfg = dataclasses.replace(load_preset(preset), data=str(data), **changes)
    return resolve_shape(cfgmod.validate(cfg))


@pytest.mark.parametrize(
    ("make", "size", "line", "shape"),
    [
        (_rgb, (64, 64), "5 RGB images, 64x64 -> 3 channels, 64 px", (3, 64)),
        (_rgba, (64, 64), "5 RGBA images, 64x64 -> 3 channels, 64 px", (3, 64)),
        (_grey, (28, 28), "5 L images, 28x28 -> 1 channel, 28 px", (1, 28)),
        (_grey_as_rgb, (40, 40), "5 RGB images, 40x40 -> 1 channel, 32 px", (1, 32)),
        (_palette(COLOURS), (50, 70), "5 P images, 50x70 -> 3 channels, 32 px", (3, 32)),
        (_palette(GREYS), (30, 30), "5 P images, 30x30 -> 1 channel, 28 px", (1, 28)),
        (_rgb, (178, 218), "5 RGB images, 178x218 -> 3 channels, 64 px", (3, 64)),
        (_rgb, (16, 16), "5 RGB images, 16x16 -> 3 channels, 28 px (upscaled)", (3, 28)),
        (_rgb, (28, 28), "5 RGB images, 28x28 -> 3 channels, 28 px", (3, 28)),
    ],
)
def test_channels_and_size_from_a_folder(tmp_path: Path, make, size, line, shape) -> None:
    cfg, notices = _resolve(_folder(tmp_path / "imgs", 5, make, size))
    assert notices == [f"data: {line}"]
    assert (cfg.channels, cfg.image_size) == shape


def test_mixed_folder_takes_the_median_and_the_colour_share(tmp_path: Path) -> None:
    _folder(tmp_path / "d", 3, _grey, (100, 120))  # 3 grey and 2 colour: colour wins (>= 10%)
    _folder(tmp_path / "d" / "more", 2, _rgb, (30, 30), ".jpg")
    cfg, notices = _resolve(tmp_path / "d")
    assert notices == ["data: 5 images (L, RGB), typically 100x120 -> 3 channels, 64 px"]
    assert (cfg.channels, cfg.image_size) == (3, 64)


def test_explicit_values_win_and_say_so(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs", 3, _rgb, (64, 64))
    cfg, notices = _resolve(folder, channels=1)
    assert (cfg.channels, cfg.image_size) == (1, 64)
    assert notices == ["data: 3 RGB images, 64x64 -> 1 channel (set), 64 px"]
    cfg, notices = _resolve(folder, image_size=128)
    assert (cfg.channels, cfg.image_size) == (3, 128)
    assert notices == ["data: 3 RGB images, 64x64 -> 3 channels, 128 px (set, upscaled)"]
    # both set: the data is not looked at at all (this path does not even exist)
    cfg, notices = _resolve(tmp_path / "missing", channels=3, image_size=32)
    assert (cfg.channels, cfg.image_size, notices) == (3, 32, [])


def test_big_folders_are_sampled(tmp_path: Path) -> None:
    from ganforge.data.scan import scan_folder

    folder = _folder(tmp_path / "imgs", 30, _rgb, (40, 40))
    scan = scan_folder(folder, sample=7)
    assert (scan.summary.count, scan.summary.looked) == (30, 7)
    assert scan.summary.describe() == "30 RGB images, 40x40, 7 sampled"


def test_presets_on_the_default_data_keep_their_shapes(tmp_path: Path) -> None:
    root = str(tmp_path)  # no MNIST here: the bundled sample
    shapes = {}
    for preset in ("quick", "fast-cpu", "best", "seed-simple", "seed-dcgan"):
        cfg, notices = _resolve("", preset, data_root=root)
        shapes[preset] = (cfg.channels, cfg.image_size)
    assert shapes == {
        "quick": (1, 28), "fast-cpu": (1, 28), "best": (1, 28), "seed-simple": (1, 28),
        "seed-dcgan": (1, 64),
    }  # fmt: skip
    assert notices == ["data: 10,000 L images, 28x28 -> 1 channel, 64 px (set, upscaled)"]
    assert TrainConfig().channels == 0 and TrainConfig().image_size == 0


def test_named_datasets_know_their_shape() -> None:
    assert set(NAMED_SHAPES) == set(named.names())
    got = {name: _resolve(name)[0] for name in ("fashion-mnist", "cifar10", "celeba")}
    assert {k: (v.channels, v.image_size) for k, v in got.items()} == {
        "fashion-mnist": (1, 28), "cifar10": (3, 32), "celeba": (3, 64),
    }  # fmt: skip


def test_a_prepared_file_trains_at_its_stored_shape(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "imgs", 4, _rgb, (64, 64))
    prepare(DataSpec(str(folder), image_size=48, channels=3), tmp_path / "p.gfd")
    cfg, notices = _resolve(tmp_path / "p.gfd", "seed-simple", image_size=0)
    assert (cfg.channels, cfg.image_size) == (3, 48)
    assert notices == ["data: 4 RGB images, 48x48 -> 3 channels, 48 px"]


def test_model_sizes() -> None:
    assert [choose_size(s, "dcgan") for s in (10, 28, 31, 32, 63, 64, 500)] == [
        28, 28, 28, 32, 32, 64, 64,
    ]  # fmt: skip
    assert [choose_size(s, "mlp") for s in (10, 40, 500)] == [10, 40, 64]


def test_bad_data_fails_as_loading_would(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as resolving:
        _resolve(tmp_path / "nothing")
    with pytest.raises(DataError) as loading:
        load_data(DataSpec(str(tmp_path / "nothing")))
    assert str(resolving.value) == str(loading.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        _resolve(tmp_path / "empty")


def test_validate_takes_zero_as_from_the_data() -> None:
    cfgmod.validate(TrainConfig(channels=0, image_size=0))
    with pytest.raises(ConfigError, match="channels must be 1 or 3"):
        cfgmod.validate(TrainConfig(channels=2))
    with pytest.raises(ConfigError, match="image_size must not be negative"):
        cfgmod.validate(TrainConfig(image_size=-1))


def test_training_on_an_rgb_folder_saves_the_chosen_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ganforge.training import train
    from tests.training.helpers import tiny

    folder = _folder(tmp_path / "imgs", 20, _rgb, (32, 32))
    run = train(tiny("fast-cpu", data=str(folder), steps=2, log_every=0), out=tmp_path / "run")
    assert "data: 20 RGB images, 32x32 -> 3 channels, 32 px" in capsys.readouterr().err
    saved = cfgmod.load_file(run / "config.toml")
    assert (saved.channels, saved.image_size) == (3, 32)
    resumed = train(resume=run, overrides={"steps": 3})  # concrete values: nothing to choose
    assert "data:" not in capsys.readouterr().err and resumed == run
