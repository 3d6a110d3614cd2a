"""Config resolution, presets, TOML files and validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ganforge import config as cfgmod
from ganforge.config import TrainConfig
from ganforge.errors import ConfigError


def test_presets_exist_and_validate() -> None:
    names = cfgmod.preset_names()
    assert {"seed-simple", "seed-dcgan", "quick"} <= set(names)
    for name in names:
        cfg = cfgmod.validate(cfgmod.load_preset(name))
        assert cfg.preset == name
        assert cfg.budget_set()


def test_seed_presets_carry_the_tutorial_hyper_parameters() -> None:
    simple = cfgmod.load_preset("seed-simple")
    assert (simple.model, simple.z_dim, simple.batch_size, simple.epochs) == ("mlp", 64, 32, 50)
    assert (simple.lr_g, simple.lr_d, simple.beta1, simple.beta2) == (3e-4, 3e-4, 0.9, 0.999)
    assert simple.log_epoch_start and not simple.drop_last and simple.weight_init == "default"
    dcgan = cfgmod.load_preset("seed-dcgan")
    assert (dcgan.model, dcgan.image_size, dcgan.z_dim, dcgan.batch_size) == ("dcgan", 64, 100, 128)
    assert (dcgan.lr_g, dcgan.beta1, dcgan.epochs, dcgan.log_batch_every) == (2e-4, 0.5, 5, 100)
    assert dcgan.bn_init == "tutorial" and dcgan.grid_mode == "train"


def test_toml_round_trip(tmp_path: Path) -> None:
    cfg = cfgmod.load_preset("quick")
    cfgmod.save(cfg, tmp_path / "c.toml")
    assert cfgmod.load_file(tmp_path / "c.toml") == cfg


def test_file_starts_from_named_preset(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('preset = "seed-dcgan"\nbatch_size = 16\n')
    cfg = cfgmod.load_file(tmp_path / "c.toml")
    assert cfg.batch_size == 16 and cfg.image_size == 64


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"batch_sise": 3}, "did you mean 'batch_size'"),
        ({"batch_size": "many"}, "must be int"),
        ({"batch_size": 2.5}, "must be int"),
        ({"progress": "perhaps"}, "must be bool"),
    ],
)
def test_bad_values_are_named(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cfgmod.apply(TrainConfig(), values, "test")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, "batch_size must be positive"),
        ("batch_size", -4, "batch_size must be positive"),
        ("model", "transformer", "unknown model 'transformer'"),
        ("loss", "magic", "unknown loss 'magic'"),
        ("precision", "fp8", "precision must be one of"),
        ("channels", 2, "channels must be 1 or 3"),
        ("steps", -1, "steps must not be negative"),
        ("minibatch_std", -1, "minibatch_std must not be negative"),
    ],
)
def test_validate_refuses(field: str, value: object, message: str) -> None:
    cfg = cfgmod.load_preset("quick")
    setattr(cfg, field, value)
    with pytest.raises(ConfigError, match=message):
        cfgmod.validate(cfg)


def test_parse_set_and_coerce() -> None:
    values = cfgmod.parse_set(["lr_g=0.001", "progress=false", "data=fashion-mnist"])
    cfg = cfgmod.apply(TrainConfig(), values, "--set")
    assert cfg.lr_g == 0.001 and cfg.progress is False and cfg.data == "fashion-mnist"
    with pytest.raises(ConfigError, match="key=value"):
        cfgmod.parse_set(["lr_g"])


def test_unknown_preset_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        cfgmod.load_preset("nope")
    (tmp_path / "bad.toml").write_text("batch_size = = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        cfgmod.load_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read config file"):
        cfgmod.load_file(tmp_path / "missing.toml")


def test_eval_features_choices_are_the_metrics_extractors() -> None:
    from ganforge.metrics import EXTRACTORS

    assert cfgmod._EXTRACTOR_NAMES == EXTRACTORS
    cfgmod.validate(TrainConfig(eval_features="runs/emoji-net.pt"))  # a feature network file
    with pytest.raises(ConfigError, match="eval_features"):
        cfgmod.validate(TrainConfig(eval_features="vgg"))


def test_a_preset_takes_its_colour_recipe_for_colour_data() -> None:
    grey = cfgmod.load_preset("fast-cpu")
    assert cfgmod.apply_variant(grey) == (grey, "")  # grey data: the preset as it is
    colour, line = cfgmod.apply_variant(dataclasses.replace(grey, channels=3))
    assert line.startswith("preset fast-cpu: its colour recipe")
    assert (colour.g_features, colour.d_features, colour.batch_size) == (8, 16, 32)
    assert (colour.lr_g, colour.lr_d) == (1e-3, 4e-4)
    assert (colour.z_dim, colour.beta1) == (grey.z_dim, grey.beta1)  # keys it does not name stay
    assert (colour.r1_gamma, colour.r1_every) == (1.0, 16)
    assert (grey.precision, colour.precision) == ("fp32", "auto")  # bf16 where it is native


def test_colour_at_32_px_or_less_takes_the_colour_32_recipe() -> None:
    grey = cfgmod.load_preset("fast-cpu")
    for size in (32, 16):
        small, line = cfgmod.apply_variant(dataclasses.replace(grey, channels=3, image_size=size))
        assert line.startswith("preset fast-cpu: its colour-32 recipe (measured on 32x32")
        assert (small.g_features, small.d_features, small.batch_size) == (24, 48, 32)
        assert (small.lr_g, small.lr_d, small.r1_gamma) == (1e-3, 4e-4, 1.0)
        assert small.precision == "auto"
    large, line = cfgmod.apply_variant(dataclasses.replace(grey, channels=3, image_size=64))
    assert line.startswith("preset fast-cpu: its colour recipe") and large.g_features == 8
    grey28 = dataclasses.replace(grey, channels=1, image_size=28)
    assert cfgmod.apply_variant(grey28) == (grey28, "")


def test_what_the_user_chose_beats_the_colour_recipe() -> None:
    asked = dataclasses.replace(cfgmod.load_preset("fast-cpu"), channels=3, batch_size=100)
    colour, _ = cfgmod.apply_variant(asked)
    assert colour.batch_size == 100 and colour.g_features == 8


def test_no_preset_or_none_with_a_colour_table_changes_nothing() -> None:
    plain = TrainConfig(channels=3)
    assert cfgmod.apply_variant(plain) == (plain, "")
    seed = dataclasses.replace(cfgmod.load_preset("seed-dcgan"), channels=3)
    assert cfgmod.apply_variant(seed) == (seed, "")  # the tutorial's recipe is kept exactly


@pytest.mark.parametrize("name", cfgmod.preset_names())
def test_every_preset_table_holds_valid_keys(name: str) -> None:
    _, tables = cfgmod._preset_values(name)
    for kind, table in tables.items():
        values = {k: v for k, v in table.items() if k != "note"}
        cfgmod.validate(cfgmod.apply(cfgmod.load_preset(name), values, f"{name} [{kind}]"))


def test_a_new_run_starts_from_the_default_preset_or_the_file(tmp_path: Path) -> None:
    assert cfgmod.start_config() == cfgmod.load_preset(cfgmod.DEFAULT_PRESET)
    assert cfgmod.start_config("seed-simple").model == "mlp"
    path = tmp_path / "run.toml"
    path.write_text('preset = "seed-simple"\nz_dim = 7\n')
    from_file = cfgmod.start_config(config_file=path)
    assert (from_file.preset, from_file.z_dim) == ("seed-simple", 7)
    path.write_text("z_dim = 7\n")
    over = cfgmod.start_config("quick", path)  # the file over the preset asked for
    assert (over.preset, over.z_dim, over.model) == ("quick", 7, "dcgan")
    assert cfgmod.start_config(config_file=path).preset == ""  # a file alone: no preset


def test_a_budget_override_replaces_the_whole_budget() -> None:
    quick = cfgmod.start_config()
    assert quick.steps > 0 and quick.minutes > 0  # the preset has two budgets
    cfg = cfgmod.run_config(None, {"steps": 10})
    assert (cfg.preset, cfg.steps, cfg.minutes, cfg.epochs) == (quick.preset, 10, 0, 0)
    kept = cfgmod.run_config(quick, {"z_dim": 8})  # no budget given: the preset's stays
    assert (kept.steps, kept.minutes, kept.z_dim) == (quick.steps, quick.minutes, 8)
    with pytest.raises(ConfigError, match="unknown config key 'stepz'"):
        cfgmod.run_config(quick, {"stepz": 3})
