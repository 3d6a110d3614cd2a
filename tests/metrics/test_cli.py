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
    assert lines[1].startswith("[mnist-net#") and "100 fake vs 64 real" in lines[1]  # the card
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
        (
            ["--data", "mnist-sample", "--truncation", "1"],
            "--truncation and --no-ema apply to a generator",
        ),
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


def _score(run: Path, out: Path, *args: str) -> Path:
    """``ganforge eval RUN --out OUT`` with fid and kid on 50 samples (and ``args``)."""
    base = ["--metrics", "fid,kid", "--samples", "50", "--no-progress", "--out", str(out)]
    assert cli.main(["eval", str(run), *base, *args]) == 0
    return out


def test_eval_json_prints_the_report_with_its_card(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["eval", str(tiny_run), "--samples", "50", "--json", "--no-progress"]) == 0
    out = capsys.readouterr()
    report = json.loads(out.out)  # stdout is the JSON alone
    assert out.err.strip() == f"wrote {tiny_run / 'eval.json'}"
    assert report == json.loads((tiny_run / "eval.json").read_text())
    card = report["card"]
    assert (card["extractor"], card["resize"], card["resize_filter"]) == (
        "mnist-net",
        "28x28",
        "none",
    )
    assert (card["n_fake"], card["n_real"], card["split"]) == (50, 64, "train")
    assert (card["kind"], card["step"], card["ema"], card["truncation"]) == ("run", 2, True, None)
    assert len(card["extractor_hash"]) == 16 and len(card["data_hash"]) == 32
    assert (card["precision"], card["device"]) == ("fp32", "cpu")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--samples", "60"], "n_fake (50 vs 60)"),
        (["--features", "fashion-net"], "extractor (mnist-net vs fashion-net)"),
        (["--truncation", "0.5"], "truncation (None vs 0.5)"),
        (["--no-ema"], "ema (True vs False)"),
        (["--seed", "1"], "seed (0 vs 1), latent_seed (0 vs 1)"),
    ],
)
def test_compare_refuses_scores_whose_cards_differ_in_what_changes_the_number(
    args: list[str], field: str, tiny_run: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    a = _score(tiny_run, tmp_path / "a.json")
    b = _score(tiny_run, tmp_path / "b.json", *args)
    capsys.readouterr()
    assert cli.main(["eval", "--compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to compare" in err[0] and field in err[0], err


def test_compare_prints_both_scores_of_matching_cards(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = {"data": str(tmp_path / "digits"), "steps": 3, "batch_size": 16, "seed": 1}
    other = train(load_preset("quick"), out=tmp_path / "other", overrides=overrides)
    a = _score(tiny_run, tmp_path / "a.json")
    b = _score(other, tmp_path / "b.json")  # another run, scored the same way: comparable
    capsys.readouterr()
    assert cli.main(["eval", "--compare", str(a), str(b)]) == 0
    lines = capsys.readouterr().out.splitlines()
    fid_a, fid_b = (json.loads(p.read_text())["metrics"]["fid"] for p in (a, b))
    assert lines[0].startswith(f"A: {a} [mnist-net#") and lines[1].startswith(f"B: {b} [")
    row = next(line for line in lines if line.startswith("FID")).split()
    assert [float(x) for x in row[1:]] == pytest.approx([fid_a, fid_b, fid_b - fid_a], rel=1e-3)
    assert lines[-1].startswith("cards differ only where the number does not change: ")
    assert f"source {tiny_run} -> {other}" in lines[-1] and "step 2 -> 3" in lines[-1]
    assert cli.main(["eval", "--compare", str(a), str(a)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "cards identical"


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        ('{"metrics": {"fid": 3.0}}', "has no score card; score it again"),
        ("[1, 2]", "is not a score file"),
        ("{not json", "cannot read"),
        (None, "cannot read"),
    ],
)
def test_compare_of_a_file_that_is_not_a_score_file_is_one_line(
    contents: str | None, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "old.json"
    if contents is not None:
        bad.write_text(contents)
    assert cli.main(["eval", "--compare", str(bad), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_eval_needs_a_source_or_compare_and_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["eval"]) == 2
    assert cli.main(["eval", "run", "--compare", "a.json", "b.json"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "ganforge: error: give RUN_OR_CKPT to score, or --compare A.json B.json",
        "ganforge: error: give either RUN_OR_CKPT to score or --compare A.json B.json",
    ]
