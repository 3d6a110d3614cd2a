"""Training on folders and prepared files; `ganforge prepare` and `ganforge datasets`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import TrainConfig, train
from ganforge.cli import main
from ganforge.data import ImageData, default_root
from ganforge.data.packed import write_packed
from ganforge.errors import DataError
from tests.conftest import run_cli
from tests.data.fakes import bad_files, fake_cifar10, write_jpegs

TINY = {
    "model": "dcgan", "z_dim": 8, "g_features": 4, "d_features": 4, "batch_size": 4,
    "steps": 3, "log_every": 0, "ckpt_every": 0, "progress": False, "device": "cpu",
    "threads": 1,  # runs compared bit for bit need one thread count (timing may pick either)
}  # fmt: skip
TINY_FLAGS = [f"--set={k}={v}" for k, v in TINY.items() if k not in ("steps", "device")]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["G"]


def test_folder_with_every_bad_case_trains_with_skip_and_fails_with_error(tmp_path) -> None:
    write_jpegs(tmp_path / "faces", 6, 178, 218)
    bad_files(tmp_path / "faces")
    cfg = TrainConfig(data=str(tmp_path / "faces"), image_size=32, channels=3, **TINY)
    run = train(cfg, out=tmp_path / "ok")
    assert (run / "checkpoints" / "last.pt").is_file()
    strict = TrainConfig(**{**cfg.to_dict(), "on_bad_image": "error"})
    with pytest.raises(DataError, match="--on-bad-image skip"):
        train(strict, out=tmp_path / "strict")
    assert not (tmp_path / "strict").exists()  # refused before a run folder is made


def test_streamed_and_in_memory_training_are_identical(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (40, 1, 28, 28), dtype=np.uint8)
    write_packed(ImageData(images), tmp_path / "d.gfd")
    cfg = TrainConfig(data=str(tmp_path / "d.gfd"), image_size=28, channels=1, **TINY)
    whole = train(cfg, out=tmp_path / "whole", overrides={"max_memory_mb": 100.0})
    streamed = train(cfg, out=tmp_path / "streamed", overrides={"max_memory_mb": 0.001})
    a, b = _weights(whole), _weights(streamed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_prepare_then_train_from_the_file(tmp_path: Path) -> None:
    write_jpegs(tmp_path / "pics" / "a", 5, 60, 50, seed=1)
    write_jpegs(tmp_path / "pics" / "b", 4, 50, 60, seed=2)
    out = run_cli("prepare", str(tmp_path / "pics"), "--size", "32", "--out", "pics.gfd")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith("wrote pics.gfd: 9 images of 32x32 RGB")
    code = main([
        "train", "--data", "pics.gfd", "--image-size", "32", "--channels", "3", "--steps", "2",
        "--device", "cpu", "--out", "run", *TINY_FLAGS,
    ])  # fmt: skip
    assert code == 0
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    assert 'data = "pics.gfd"' in (tmp_path / "run" / "config.toml").read_text()


def test_datasets_lists_each_named_dataset() -> None:
    fake_cifar10(default_root())
    out = run_cli("datasets")
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[2:7]}
    assert list(lines) == ["mnist", "mnist-sample", "fashion-mnist", "cifar10", "celeba"]
    assert lines["cifar10"].split()[1:3] == ["yes", "50,000"]
    assert str(default_root() / "cifar-10-batches-py") in lines["cifar10"]
    assert lines["celeba"].split()[1] == "no" and "img_align_celeba" in lines["celeba"]


def test_bad_data_is_one_line_and_exit_2_in_a_real_process() -> None:
    out = run_cli("prepare", "./missing-folder", "--out", "x.gfd")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "ganforge: error: data path ./missing-folder does not exist; check the path"
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--data", "./missing-folder", "--steps", "1"], "data path ./missing-folder"),
        (["train", "--data", "empty", "--steps", "1"], "no images found in empty"),
        (["train", "--data", "imagenet", "--steps", "1"], "unknown dataset 'imagenet'"),
        (["prepare", "nowhere/", "--out", "x.gfd"], "data path nowhere/ does not exist"),
        (["prepare", "empty", "--out", "x.gfd", "--background", "teal"], "background must be"),
        (["train", "--data", "cifar10", "--no-download", "--steps", "1"], "cifar10 not found"),
    ],
)
def test_bad_data_inputs_exit_2(argv: list[str], message: str, capsys, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert main([*argv, "--device", "cpu"] if argv[0] == "train" else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganforge: error: ") and message in err[0]
