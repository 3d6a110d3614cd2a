"""`ganforge eval` and `ganforge featurenet train` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ganforge import cli
from ganforge.config import load_preset
from ganforge.training import train
from tests.conftest import run_cli
from tests.metrics.conftest import digit_folder


@pytest.fixture
def tiny_run(tmp_path: Path, digits: np.ndarray) -> Path:
    """A two-step run of the quick preset on a folder of 64 real digits."""
    data = digit_folder(tmp_path / "digits", digits[:64])
    cfg = load_preset("quick")
    return train(
        cfg,
        out=tmp_path / "run",
        overrides={"data": str(data), "steps": 2, "batch_size": 16, "progress": False},
    )


def test_eval_of_a_run_prints_a_table_and_writes_json(tiny_run: Path) -> None:
    done = run_cli("eval", str(tiny_run), "--samples", "100", "--no-progress")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "features mnist-net" in lines[0] and "100 fake / 64 real" in lines[0]
    for label in ("FID", "KID", "precision (k=3)", "recall (k=3)", "density", "coverage"):
        assert any(line.startswith(label) for line in lines), label
    assert lines[-1] == f"wrote {tiny_run / 'eval.json'}"
    report = json.loads((tiny_run / "eval.json").read_text())
    assert report["kind"] == "run" and report["n_fake"] == 100
    assert set(report["metrics"]) == {
        "fid", "kid", "kid_std", "precision", "recall", "density", "coverage"
    }  # fmt: skip
    assert report["metrics"]["fid"] > 0


def test_eval_of_an_npz_and_a_folder_against_named_data(
    tmp_path: Path, digits: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
    fakes = tmp_path / "fakes.npz"
    np.savez(fakes, images=digits[-300:, 0])  # [N, H, W] is accepted as grey
    real = digit_folder(tmp_path / "real", digits[:300])
    out = tmp_path / "scores.json"
    args = ["--data", str(real), "--metrics", "fid,classes", "--no-progress", "--out", str(out)]
    assert cli.main(["eval", str(fakes), *args]) == 0
    from_npz = json.loads(out.read_text())
    assert from_npz["kind"] == "npz" and from_npz["features"] == "mnist-net"
    assert from_npz["metrics"]["class_kl"] < 0.1
    folder = digit_folder(tmp_path / "fake-folder", digits[-300:])
    assert cli.main(["eval", str(folder), *args]) == 0
    from_folder = json.loads(out.read_text())
    assert from_folder["kind"] == "folder"
    # PNG round trip is lossless: the same images give the same score
    assert from_folder["metrics"]["fid"] == pytest.approx(from_npz["metrics"]["fid"])
    assert "wrote" in capsys.readouterr().out


def test_a_missing_run_exits_2_with_one_line() -> None:
    done = run_cli("eval", "runs/nothing-here")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ganforge: error: runs/nothing-here does not exist; give a run folder, a checkpoint, "
        "an image folder or an .npz"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--features", "vgg"], "unknown --features 'vgg'"),
        (["--samples", "0"], "--samples must be positive"),
        (["--samples", "-5"], "--samples must be positive"),
        (["--metrics", "fid,is"], "unknown metric(s) is"),
        ([], "--data is needed to score a npz"),
        (["--data", "nowhere/at/all"], "does not exist"),
    ],
)
def test_bad_eval_inputs_exit_2_with_one_line(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fakes = tmp_path / "fakes.npz"
    np.savez(fakes, images=np.zeros((20, 1, 28, 28), np.uint8))
    assert cli.main(["eval", str(fakes), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_bad_npz_contents_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fakes = tmp_path / "floats.npz"
    np.savez(fakes, images=np.zeros((20, 1, 28, 28), np.float32))
    assert cli.main(["eval", str(fakes), "--data", "mnist-sample"]) == 2
    assert "expected uint8 images" in capsys.readouterr().err


def test_featurenet_train_refuses_unknown_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["featurenet", "train", "--data", "cifar10"]) == 2
    assert "feature networks train on fashion-mnist, mnist-sample, mnist" in capsys.readouterr().err
