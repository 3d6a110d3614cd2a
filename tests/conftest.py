"""Shared fixtures. Tests never touch the network: the data root is an empty temp folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own folder with an empty data root."""
    root = tmp_path / "data-root"
    root.mkdir()
    monkeypatch.setenv("GANFORGE_DATA", str(root))
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))  # metrics: real-data features
    monkeypatch.chdir(tmp_path)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ganforge ARGS`` in a real process; return the finished process."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    return subprocess.run(
        [sys.executable, "-m", "ganforge", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


# --- sampling and export: one tiny trained run, shared by the tests that need a checkpoint ---
@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of the quick preset at tiny widths, trained 6 steps (grids at 2, 4, 6)."""
    import dataclasses

    from ganforge import train
    from ganforge.config import load_preset

    cfg = dataclasses.replace(
        load_preset("quick"), data="mnist-sample", steps=6, g_features=4, d_features=4,
        batch_size=16, log_every=2, ckpt_every=0, grid_n=8, progress=False, threads=1,
    )  # fmt: skip
    return train(cfg, out=tmp_path_factory.mktemp("tiny") / "run")


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of a class-conditional DCGAN (the 10 digit classes) at tiny widths,
    trained 4 steps."""
    import dataclasses

    from ganforge import train
    from ganforge.config import load_preset

    cfg = dataclasses.replace(
        load_preset("quick"), data="mnist-sample", steps=4, g_features=4, d_features=4,
        batch_size=16, log_every=0, ckpt_every=0, grid_n=10, progress=False, threads=1,
        conditional=True,
    )  # fmt: skip
    return train(cfg, out=tmp_path_factory.mktemp("conditional") / "run")
