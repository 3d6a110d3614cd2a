"""Real torch.distributed (gloo) runs started by torchrun, two CPU ranks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from ganforge.config import TrainConfig
from ganforge.data import ImageData, load_sample
from ganforge.models import build_models
from ganforge.run import checkpoint as ckpt
from ganforge.training.build import eval_spec
from ganforge.training.distributed import World, shard
from ganforge.training.periodic_eval import PeriodicEval
from tests.training.helpers import on_mnist

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
                "--set", "log_every=8", "--set", "ckpt_every=8", "--set", "eval_every=24",
                "--set", "eval_samples=40", *TINY)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    assert len(list((run / "tb").iterdir())) == 1  # one events file: rank 0 only
    records = (run / "metrics.jsonl").read_text().splitlines()
    assert len(records) == 4 and '"eval/fid"' in records[-1]  # 3 log lines, 1 evaluation
    assert done.stderr.count("eval at step 24 (40 samples on 2 ranks") == 1
    assert ckpt.load(run / "checkpoints" / "best.pt")["position"]["step"] == 24
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
    initial, _ = build_models(on_mnist("seed-simple").model_spec())
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


class _Counting(nn.Module):
    """A generator that counts the images it makes and has a per-rank buffer."""

    def __init__(self, shift: float) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.register_buffer("shift", torch.tensor([shift]))
        self.made = 0

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.made += len(z)
        return torch.tanh(z[:, :784].view(-1, 1, 28, 28) * self.scale + self.shift)


_EVAL = eval_spec(TrainConfig(z_dim=784, eval_every=1, eval_samples=41, eval_metrics="fid,pr"))


def _eval_rank(rank: int, size: int, store: str, digits: np.ndarray, out: Path) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=size)
    try:
        world = World(rank, size, 0)
        G = _Counting(shift=0.1 * rank)  # rank 0's buffer is the one to sample with
        scores = PeriodicEval(_EVAL, ImageData(digits), torch.device("cpu"), world).scores(G)
        values = None if scores is None else scores.values
        torch.save({"made": G.made, "shift": float(G.shift), "values": values}, out / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_evaluation_splits_sampling_across_ranks_and_scores_as_one_process(
    tmp_path: Path,
) -> None:
    digits = load_sample().images[:300]
    mp.spawn(_eval_rank, (2, str(tmp_path / "store"), digits, tmp_path), nprocs=2)
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(2)]
    assert [r["made"] for r in ranks] == [20, 21]  # 41 latents split between the ranks
    assert [r["shift"] for r in ranks] == [0.0, 0.0]  # every rank sampled with rank 0's buffers
    assert ranks[1]["values"] is None  # only rank 0 scores
    alone = PeriodicEval(_EVAL, ImageData(digits), torch.device("cpu")).scores(_Counting(0.0))
    assert alone is not None and set(alone.values) == {"fid", "precision", "recall"}
    for key, value in alone.values.items():
        assert abs(ranks[0]["values"][key] - value) <= 1e-4 * max(1.0, abs(value)), key


def test_shards_cover_every_item_once_in_rank_order() -> None:
    for n in (0, 1, 7, 41):
        for size in (1, 2, 3, 8):
            parts = [
                range(n)[shard(n, World(r, size, 0) if size > 1 else World())] for r in range(size)
            ]
            assert [i for p in parts for i in p] == list(range(n))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1
