"""Evaluation during training: eval/* scalars in metrics.jsonl and TensorBoard, best.pt by FID."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from ganforge.config import TrainConfig, load_preset
from ganforge.data import ImageData
from ganforge.errors import UserError
from ganforge.logging import RunLogger
from ganforge.training import checkpoint as ckpt
from ganforge.training import train
from ganforge.training.evaluation import PeriodicEval, best_fid
from tests.metrics.conftest import digit_folder


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    from ganforge.data import load_sample

    return load_sample().images[:64]


def test_training_logs_eval_scalars_and_keeps_best_pt(tmp_path: Path, digits: np.ndarray) -> None:
    data = digit_folder(tmp_path / "digits", digits)
    overrides = {
        "data": str(data), "steps": 4, "batch_size": 16, "progress": False,
        "eval_every": 2, "eval_samples": 48, "eval_metrics": "fid,pr",
    }  # fmt: skip
    run = train(load_preset("quick"), out=tmp_path / "run", overrides=overrides)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/fid" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all({"eval/precision", "eval/recall", "eval/seconds"} <= set(r) for r in evals)
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/fid")] == [2, 4]
    best = ckpt.load(run / "checkpoints" / "best.pt")
    last = ckpt.load(run / "checkpoints" / "last.pt")
    assert set(best) == set(last)
    best_step = min(evals, key=lambda r: r["eval/fid"])["step"]
    assert best["position"]["step"] == best_step


class _Recorder(nn.Module):
    """A generator that remembers the mode it was called in."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))
        self.modes: list[bool] = []

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.modes.append(self.training)
        return torch.tanh(z[:, :784].view(-1, 1, 28, 28) + self.bias)


def test_generator_is_sampled_in_eval_mode_and_best_is_kept(
    tmp_path: Path, digits: np.ndarray
) -> None:
    cfg = TrainConfig(z_dim=784, eval_every=5, eval_samples=32, eval_metrics="fid")
    evaluator = PeriodicEval(cfg, ImageData(digits), torch.device("cpu"))
    logger = RunLogger(tmp_path)
    G = _Recorder().train()
    assert evaluator.due(10) and not evaluator.due(11)
    assert evaluator(G, 5, logger) is True  # the first score is the best so far
    assert G.training and set(G.modes) == {False}
    assert evaluator(G, 10, logger) is False  # same latents, same G: not better
    logger.close()
    assert best_fid(tmp_path / "metrics.jsonl") == evaluator.best


def test_best_fid_survives_resume_and_torn_lines(tmp_path: Path) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1, "eval/fid": 9.5}\n{"step": 2, "eval/fid": 3.25}\n{"step": 3, "ev')
    assert best_fid(log) == 3.25
    assert best_fid(tmp_path / "none.jsonl") == float("inf")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"eval_every": -1}, "eval_every must be positive"),
        ({"eval_samples": 0}, "eval_samples must be positive"),
        ({"eval_metrics": "fid,nope"}, "unknown metric"),
    ],
)
def test_bad_eval_settings_are_refused_before_training(
    changes: dict, message: str, digits: np.ndarray
) -> None:
    cfg = TrainConfig(**{"eval_every": 10, **changes})
    with pytest.raises(UserError, match=message):
        PeriodicEval(cfg, ImageData(digits), torch.device("cpu"))
