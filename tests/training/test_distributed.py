"""Real torch.distributed (gloo) runs started by torchrun, two CPU ranks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from ganforge.config import load_preset
from ganforge.models import build_models
from ganforge.training import checkpoint as ckpt

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
TINY = ["--set", "g_features=4", "--set", "d_features=4", "--set", "z_dim=8", "--no-progress"]


def _torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", "-m", "ganforge", "train", *args,
    ]  # fmt: skip


def _run(*args: str, nproc: int = 2) -> subprocess.CompletedProcess[str]:
    cmd = _torchrun(*args, nproc=nproc) if nproc > 1 else [
        sys.executable, "-m", "ganforge", "train", *args
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)


def test_two_ranks_train_write_one_set_of_outputs_and_resume(tmp_path: Path) -> None:
    done = _run("--preset", "quick", "--steps", "24", "--batch-size", "16", "--out", "run",
                "--set", "log_every=8", "--set", "ckpt_every=8", *TINY)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    assert len(list((run / "tb").iterdir())) == 1  # one events file: rank 0 only
    assert (run / "metrics.jsonl").read_text().count("\n") == 3
    assert ckpt.load(run / "checkpoints" / "last.pt")["position"]["step"] == 24
    assert done.stderr.count("run folder:") == 1
    again = _run("--resume", "run", "--steps", "32", *TINY[-1:])
    assert again.returncode == 0, again.stderr[-3000:]
    assert ckpt.load(run / "checkpoints" / "last.pt")["position"]["step"] == 32


def test_two_ranks_equal_one_process_without_batchnorm(tmp_path: Path) -> None:
    common = ["--preset", "seed-simple", "--steps", "5", "--batch-size", "64",
              "--set", "drop_last=true", "--no-progress"]  # fmt: skip
    one = _run(*common, "--out", "one", nproc=1)
    two = _run(*common, "--out", "two")
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    a = ckpt.load(tmp_path / "one" / "checkpoints" / "last.pt")
    b = ckpt.load(tmp_path / "two" / "checkpoints" / "last.pt")
    for net in ("G", "D"):
        for key, value in a[net].items():
            torch.testing.assert_close(value, b[net][key], rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)  # the runs trained: their weights left the seed's initial values
    initial, _ = build_models(load_preset("seed-simple"))
    assert not torch.allclose(initial.state_dict()["net.0.weight"], a["G"]["net.0.weight"])


def test_a_killed_rank_stops_the_other(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        _torchrun("--preset", "quick", "--steps", "100000", "--out", "run",
                  "--set", "dist_timeout=30", "--set", "log_every=1", *TINY),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
        start_new_session=True,
    )  # fmt: skip
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 2):
        assert time.monotonic() < deadline and proc.poll() is None, "no progress"
        time.sleep(0.1)
    children = subprocess.run(
        ["pgrep", "-f", "-P", str(proc.pid), "ganforge"], capture_output=True, text=True
    ).stdout.split()
    assert len(children) == 2, children
    os.kill(int(children[-1]), signal.SIGKILL)
    start = time.monotonic()
    try:
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert time.monotonic() - start < 90
