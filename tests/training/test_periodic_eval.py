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
from ganforge.metrics import ScoreCard, which_fields_change_the_number
from ganforge.run import checkpoint as ckpt
from ganforge.training import train
from ganforge.training.build import eval_spec
from ganforge.training.periodic_eval import PeriodicEval, best_fid
from ganforge.training.run_log import RunLogger
from tests.metrics.conftest import digit_folder


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    from ganforge.data import load_sample

    return load_sample().images[:64]


def test_training_logs_eval_scalars_and_keeps_best_pt(
    tmp_path: Path, digits: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> None:
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
    # each score carries its card, in the same metrics.jsonl record, TensorBoard and the console
    cards = [ScoreCard.from_dict(r["eval/card"]) for r in evals]
    assert [(c.step, c.kind, c.source, c.ema) for c in cards] == [
        (2, "training", str(run), True), (4, "training", str(run), True)
    ]  # fmt: skip
    assert {(c.extractor, c.n_fake, c.n_real, c.split, c.precision) for c in cards} == {
        ("mnist-net", 48, 64, "train", "fp32")
    }
    assert which_fields_change_the_number(*cards) == []  # two steps of one run compare
    console = [line for line in capsys.readouterr().err.splitlines() if "eval at step" in line]
    assert len(console) == 2 and all(
        c.short() in line for c, line in zip(cards, console, strict=True)
    )
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("eval/fid")] == [2, 4]
    texts = events.Tensors("eval/card/text_summary")
    assert [e.step for e in texts] == [2, 4]
    for card, line, event in zip(cards, console, texts, strict=True):
        text = event.tensor_proto.string_val[0].decode()
        assert text.startswith(line) and f"| data_hash | {card.data_hash} |" in text
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
    evaluator = PeriodicEval(eval_spec(cfg), ImageData(digits), torch.device("cpu"))
    logger = RunLogger(tmp_path)
    G = _Recorder().train()
    assert evaluator.due(10) and not evaluator.due(11)
    assert evaluator(G, 5, logger) is True  # the first score is the best so far
    assert G.training and set(G.modes) == {False}
    assert evaluator(G, 10, logger) is False  # same latents, same G: not better
    logger.close()
    assert best_fid(tmp_path / "metrics.jsonl") == evaluator.best
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    cards = [ScoreCard.from_dict(json.loads(line)["eval/card"]) for line in lines]
    assert [(c.step, c.ema, c.latent_seed) for c in cards] == [(5, False, 3), (10, False, 3)]


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
        PeriodicEval(eval_spec(cfg), ImageData(digits), torch.device("cpu"))
