"""Watching a run: scalars in TensorBoard and metrics.jsonl, the console progress bar."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganforge.console import Progress
from ganforge.training.run_log import RunLogger


def test_scalars_reach_tensorboard_and_metrics_jsonl(tmp_path: Path) -> None:
    logger = RunLogger(tmp_path)
    logger.scalars(25, {"loss/D": 0.5, "loss/G": 1.25, "img_per_s": 900.0})
    logger.scalars(50, {"loss/D": 0.25, "loss/G": 2.0, "img_per_s": 950.0})
    logger.close()
    events = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    assert {"loss/D", "loss/G", "img_per_s"} <= set(events.Tags()["scalars"])
    assert [(e.step, e.value) for e in events.Scalars("loss/G")] == [(25, 1.25), (50, 2.0)]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records == [
        {"step": 25, "loss/D": 0.5, "loss/G": 1.25, "img_per_s": 900.0},
        {"step": 50, "loss/D": 0.25, "loss/G": 2.0, "img_per_s": 950.0},
    ]


def _shown(progress: Progress, out: io.StringIO) -> str:
    """The bar as last drawn."""
    progress.bar.refresh()
    return out.getvalue().split("\r")[-1]


def test_a_step_budget_counts_steps_with_losses_and_img_per_s() -> None:
    out = io.StringIO()
    progress = Progress(200, 0.0, step=100, file=out)  # resumed at step 100
    progress.update(150, 12.0)
    progress.figures(0.6931, 1.5, 812.4)
    line = _shown(progress, out)
    assert "150/200" in line and "D=0.693" in line and "G=1.500" in line and "img_s=812" in line
    progress.close()


def test_a_time_budget_shows_trained_time_of_its_total_and_the_step() -> None:
    out = io.StringIO()
    progress = Progress(None, 150.0, file=out)  # --minutes 2.5
    progress.update(1234, 65.0)
    line = _shown(progress, out)
    assert "01:05/02:30 trained" in line and "step 1234" in line and " 43%" in line
    progress.close()


@pytest.mark.parametrize(("steps", "total"), [(200, "~00:20"), (2000, "02:30")])
def test_with_steps_and_minutes_the_total_is_whichever_ends_first(steps: int, total: str) -> None:
    out = io.StringIO()
    progress = Progress(steps, 150.0, file=out)
    progress.update(100, 10.0)  # 0.1 s a step: 200 steps end at 20 s, 2,000 after the budget
    line = _shown(progress, out)
    assert f"00:10/{total} trained" in line and f"step 100/{steps}" in line
    progress.close()


def test_a_run_whose_steps_end_first_closes_at_100_percent() -> None:
    out = io.StringIO()
    progress = Progress(200, 150.0, file=out)
    progress.update(100, 10.0)
    progress.update(200, 19.5)
    progress.close()
    assert "100%" in out.getvalue().split("\r")[-1]
