"""The command line: bad input gives one line and exit 2 with nothing written; train and sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganforge.cli import main
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
