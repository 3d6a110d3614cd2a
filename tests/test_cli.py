"""The command line: bad input gives one line and exit 2 with nothing written; train and sample;
choices and help from the registries; the same config as the Python API."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ganforge import config as cfgmod
from ganforge import train
from ganforge.cli import COMMANDS, build_parser, main
from ganforge.data.named import names as dataset_names
from ganforge.export import FORMATS
from ganforge.losses import LOSSES
from ganforge.metrics import EXTRACTORS, METRICS
from ganforge.models import MODELS
from ganforge.run.device import DEVICE_NAMES
from tests.conftest import run_cli

TINY = ["--set", "g_features=4", "--set", "d_features=4", "--set", "z_dim=8", "--no-progress"]


def _fails_cleanly(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = set(Path.cwd().rglob("*"))
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganforge: error:"), err
    assert message in err[0]
    assert set(Path.cwd().rglob("*")) == before  # nothing written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "no/such/folder"], "data path no/such/folder does not exist"),
        (["--data", "imagenet21k"], "unknown dataset 'imagenet21k'"),
        (["--model", "transformer"], "unknown model 'transformer'"),
        (["--preset", "ultra"], "unknown preset 'ultra'"),
        (["--set", "batchsize=3"], "unknown config key 'batchsize'"),
        (["--batch-size", "0"], "batch_size must be positive"),
        (["--batch-size", "-3"], "batch_size must be positive"),
        (["--config", "missing.toml"], "cannot read config file"),
        (["--resume", "runs/nothing"], "runs/nothing does not exist"),
        (["--set", "minibatch_std=-1"], "minibatch_std must not be negative"),
        (["--set", "top_k=1.5"], "top_k must be in"),
        (["--set", "by_hand=maybe"], "by_hand"),
        (
            ["--preset", "best", "--data", "mnist-sample", "--set", "minibatch_std=4"],
            "minibatch_std is a dcgan option; model resnet has none",
        ),
    ],
)
def test_train_bad_input(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = [] if "--resume" in args else ["--out", "run"]
    _fails_cleanly(["train", "--steps", "2", *out, *args], message, capsys)


def test_empty_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    _fails_cleanly(
        ["train", "--data", "empty", "--out", "run", "--steps", "2"], "no images", capsys
    )


def test_train_then_sample_in_real_processes(tmp_path: Path) -> None:
    done = run_cli("train", "--preset", "quick", "--steps", "3", "--out", "run", *TINY)
    assert done.returncode == 0, done.stderr
    assert "tensorboard --logdir run/tb" in done.stderr
    assert done.stdout.strip().startswith("wrote run")
    again = run_cli("train", "--preset", "quick", "--steps", "3", "--out", "run", *TINY)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        "ganforge: error: run folder run already exists; continue it with --resume run "
        "or choose another --out"
    ]
    for name in ("a.png", "b.png"):
        done = run_cli("sample", "run", "--n", "16", "--seed", "3", "--out", name)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    run_cli("sample", "run", "--n", "16", "--seed", "4", "--out", "c.png")
    assert (tmp_path / "c.png").read_bytes() != (tmp_path / "a.png").read_bytes()


def _options(command: str) -> dict[str, argparse.Action]:
    """The options of one subcommand of the real parser, by flag."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {flag: a for a in sub.choices[command]._actions for flag in a.option_strings}


def _help(command: str, flag: str) -> str:
    return _options(command)[flag].help or ""


@pytest.mark.parametrize(
    ("command", "flag", "names"),
    [
        ("train", "--preset", cfgmod.preset_names()),
        ("train", "--model", list(MODELS)),
        ("train", "--loss", list(LOSSES)),
        ("train", "--data", dataset_names()),
        ("train", "--precision", cfgmod.choices("precision")),
        ("train", "--crop", cfgmod.choices("crop")),
        ("train", "--on-bad-image", cfgmod.choices("on_bad_image")),
        ("train", "--device", DEVICE_NAMES),
        ("train", "--eval-metrics", list(METRICS)),
        ("train", "--eval-features", EXTRACTORS),
        ("eval", "--metrics", list(METRICS)),
        ("eval", "--features", EXTRACTORS),
        ("eval", "--device", DEVICE_NAMES),
        ("sample", "--device", DEVICE_NAMES),
        ("bench", "--preset", cfgmod.preset_names()),
        ("bench", "--device", DEVICE_NAMES),
    ],
)
def test_help_lists_each_registry_entry(command: str, flag: str, names: list[str]) -> None:
    text = _help(command, flag)
    missing = [name for name in names if name not in re.findall(r"[\w.-]+(?::\w+)?", text)]
    assert not missing, f"{command} {flag} help misses {missing}: {text!r}"


def test_metric_help_is_each_metrics_own_line() -> None:
    for command, flag in (("eval", "--metrics"), ("train", "--eval-metrics")):
        text = _help(command, flag)
        assert all(f"{m.name}: {m.help}" in text for m in METRICS.values()), text
    assert f"default {cfgmod.DEFAULT_PRESET}" in _help("train", "--preset")


def test_choices_are_the_registries() -> None:
    assert list(_options("export")["--format"].choices or []) == list(FORMATS)
    for command in ("prepare", "inspect"):
        assert tuple(_options(command)["--crop"].choices or ()) == cfgmod.choices("crop")
    bad_image = _options("prepare")["--on-bad-image"].choices or ()
    assert tuple(bad_image) == cfgmod.choices("on_bad_image")


def test_a_model_loss_or_metric_added_to_its_registry_shows_in_help(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(MODELS, "toy-net", MODELS["mlp"])
    monkeypatch.setitem(LOSSES, "toy-loss", LOSSES["bce"])
    toy_metric = dataclasses.replace(METRICS["fid"], name="toy-metric")
    monkeypatch.setitem(METRICS, "toy-metric", toy_metric)
    assert "toy-net" in _help("train", "--model")
    assert "toy-loss" in _help("train", "--loss")
    assert "toy-metric" in _help("eval", "--metrics")


SMALL = {"steps": 2, "g_features": 4, "d_features": 4, "z_dim": 8, "progress": False}


def test_train_from_python_and_the_command_line_write_the_same_config() -> None:
    flags = ["--steps", "2", "--no-progress"]
    flags += [f"--set={k}={SMALL[k]}" for k in ("g_features", "d_features", "z_dim")]
    assert main(["train", "--out", "cli", *flags]) == 0
    train(out="api", overrides=SMALL)
    cli, api = (Path(run, "config.toml").read_text() for run in ("cli", "api"))
    assert cli == api
    cfg = cfgmod.load_file("api/config.toml")
    # the default preset, and --steps replaced the preset's 3,000 steps or 2.5 minutes
    assert (cfg.preset, cfg.steps, cfg.minutes, cfg.epochs) == (cfgmod.DEFAULT_PRESET, 2, 0, 0)


@pytest.mark.parametrize("args", [["--help"], ["prepare", "--help"], ["datasets"]])
def test_commands_that_need_no_torch_load_none(args: list[str]) -> None:
    # each command adds only its own options, so listing the commands, or preparing data,
    # does not import torch for the registries the other commands' help lists
    code = (
        "import sys; from ganforge.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
    if args == ["--help"]:
        assert all(name in done.stdout for name in COMMANDS)
