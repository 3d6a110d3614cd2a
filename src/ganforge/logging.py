"""Watching a run: TensorBoard events, metrics.jsonl, grid PNGs, console lines, a progress bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm


def to_uint8(images: Tensor) -> Tensor:
    """Images in [-1, 1] -> uint8 in [0, 255], same shape."""
    return images.detach().float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def grid_image(images: Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """uint8 ``[N, C, H, W]`` -> one uint8 grid ``[H', W', C]`` (C = 1 squeezed to grey)."""
    # imported here: torchvision's import costs about as much as torch's, and only grids need it
    from torchvision.utils import make_grid

    grid = make_grid(images.cpu(), nrow=nrow, padding=padding, pad_value=0)  # [3, H', W']
    arr = grid.permute(1, 2, 0).numpy()
    return arr[..., 0] if images.shape[1] == 1 else arr


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Write a uint8 ``[H, W]`` or ``[H, W, 3]`` array as PNG."""
    Image.fromarray(array).save(path, format="PNG")


def info(message: str) -> None:
    """One line for the user on stderr, kept clear of the progress bar."""
    tqdm.write(message, file=sys.stderr)


class RunLogger:
    """Writes a run's TensorBoard events, metrics.jsonl and sample grids (rank 0 only)."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.run_dir = run_dir
        self._writer: Any = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(run_dir / "tb"))
            (run_dir / "samples").mkdir(exist_ok=True)
            self._jsonl = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 (closed in close())

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Log scalars to TensorBoard and one JSON line to metrics.jsonl."""
        if not self.enabled:
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        # one event holding every value: a quarter of the cost of add_scalar for each
        scalars = [Summary.Value(tag=key, simple_value=value) for key, value in values.items()]
        self._writer.file_writer.add_summary(Summary(value=scalars), step)
        self._jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self._jsonl.flush()

    def board(self, step: int, values: dict[str, float]) -> None:
        """Log scalars to TensorBoard only (no metrics.jsonl line)."""
        if self.enabled:
            for key, value in values.items():
                self._writer.add_scalar(key, value, step)

    def record(
        self,
        step: int,
        scalars: dict[str, float],
        fields: dict[str, Any] | None = None,
        texts: dict[str, str] | None = None,
    ) -> None:
        """Scalars and texts (markdown) to TensorBoard, and one metrics.jsonl line holding the
        scalars with other JSON ``fields`` beside them (a score with its card)."""
        if not self.enabled:
            return
        for key, value in scalars.items():
            self._writer.add_scalar(key, value, step)
        for tag, text in (texts or {}).items():
            self._writer.add_text(tag, text, step)
        self._jsonl.write(json.dumps({"step": step, **scalars, **(fields or {})}) + "\n")
        self._jsonl.flush()

    def grids(self, image_step: int, step: int, fake: Tensor, real: Tensor) -> None:
        """Real and fake grids (make_grid normalize=True, as the tutorial) and a fake grid PNG."""
        if not self.enabled:
            return
        from torchvision.utils import make_grid

        for tag, images in (("fake", fake), ("real", real)):
            grid = make_grid(images.detach().float().cpu(), normalize=True)
            self._writer.add_image(tag, grid, image_step)
        save_png(grid_image(to_uint8(fake)), self.run_dir / "samples" / f"step{step:07d}.png")
        self._writer.flush()

    def close(self) -> None:
        if self.enabled:
            self._writer.close()
            self._jsonl.close()


class _TimeBar(tqdm):
    """A tqdm bar counting seconds of training, shown as minutes:seconds of the budget
    (``~`` marks a total projected from the steps left), with the step count."""

    step_text = ""  # "1234/3000", set by Progress
    projected = False

    @property
    def format_dict(self) -> dict[str, Any]:
        values = super().format_dict
        total = values["total"] or 0.0
        values["done"] = self.format_interval(values["n"])
        values["budget"] = ("~" if self.projected else "") + self.format_interval(total)
        values["step"] = self.step_text
        return values


_TIME_FORMAT = "{l_bar}{bar}| {done}/{budget} trained [{elapsed}<{remaining}, step {step}{postfix}]"
PROJECT_AFTER = 20  # steps this session before a step total's end time is projected


class Progress:
    """The console progress bar of a training run, with the losses and img/s.

    A step or epoch budget counts steps of the total. A time budget counts seconds of
    training against it, with tqdm's wall-clock elapsed time and ETA; with a step total as
    well, the bar's total is whichever ends first: the time budget, or the time the steps
    left will take at this session's pace.
    """

    def __init__(
        self,
        steps: int | None,
        seconds: float,
        step: int = 0,
        elapsed: float = 0.0,
        enabled: bool = True,
        file: TextIO | None = None,
    ) -> None:
        self.steps, self.seconds = steps, seconds
        self._origin = (step, elapsed)  # where this session started
        self._step = step
        common: dict[str, Any] = {
            "dynamic_ncols": True, "disable": not enabled, "file": file,
            "mininterval": 0.5 if (file or sys.stderr).isatty() else 30,
        }  # fmt: skip
        self._timed = (
            _TimeBar(total=seconds, initial=elapsed, unit="s", bar_format=_TIME_FORMAT, **common)
            if seconds
            else None
        )
        self.bar = self._timed or tqdm(total=steps, initial=step, unit="step", **common)
        self._set_step(step)

    def update(self, step: int, elapsed: float) -> None:
        """Move the bar to ``step`` with ``elapsed`` seconds trained (backwards after a
        rollback)."""
        if self.bar.disable:
            return
        self._step = step
        if self._timed is None:
            self.bar.update(step - self.bar.n)
            return
        self._set_step(step)
        first, start = self._origin
        if self.steps and step - first >= PROJECT_AFTER and elapsed > start:
            at_steps = elapsed + (self.steps - step) * (elapsed - start) / (step - first)
            self._timed.projected = at_steps < self.seconds
            self._timed.total = min(self.seconds, at_steps)
        # the last step overruns a time budget: the bar stops at its total
        self._timed.update(min(elapsed, self._timed.total) - self._timed.n)

    def _set_step(self, step: int) -> None:
        if self._timed is not None:
            self._timed.step_text = f"{step}/{self.steps}" if self.steps else str(step)

    def figures(self, loss_d: float, loss_g: float, img_s: float) -> None:
        """Show the latest losses and img/s (drawn at the bar's next refresh)."""
        figures = {"D": f"{loss_d:.3f}", "G": f"{loss_g:.3f}", "img_s": f"{img_s:.0f}"}
        self.bar.set_postfix(figures, refresh=False)

    def close(self) -> None:
        """Draw the bar a last time and release the terminal line; a run that took all its
        steps before its time budget ends at 100%."""
        if self._timed is not None and self.steps and self._step >= self.steps:
            self._timed.total, self._timed.projected = self._timed.n, False
        self.bar.close()
