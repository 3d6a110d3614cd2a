"""What the user reads on the console: one-line messages and the training progress bar."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tqdm import tqdm


def info(message: str) -> None:
    """One line for the user on stderr, kept clear of the progress bar."""
    tqdm.write(message, file=sys.stderr)


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
