"""The NaN guard: finds the first step whose loss became NaN or Inf, reading the losses
once per interval instead of every step.

Reading a loss as a Python number waits for the device (a CUDA sync per step). The
guard only keeps each step's loss tensors, which the step made anyway (no copy, no
device work), and reads them all at once when the loop asks, before anything is
logged, saved or scored, so a non-finite loss still stops the run, or rolls it back,
before its weights reach a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class NonFinite:
    """The first non-finite loss: at which step, of which network ("D" or "G"), its value."""

    step: int
    network: str
    value: float


class LossGuard:
    """Keeps the losses of the steps since the last :meth:`check`."""

    def __init__(self) -> None:
        self._steps: list[int] = []
        self._losses: list[Tensor] = []  # loss/D, loss/G of each kept step, in order

    def __len__(self) -> int:
        return len(self._steps)

    def add(self, step: int, loss_d: Tensor, loss_g: Tensor) -> None:
        """Keep the two 0-d loss tensors of ``step``."""
        self._steps.append(step)
        self._losses += (loss_d, loss_g)

    def check(self) -> NonFinite | None:
        """The first kept step with a NaN or Inf loss (D before G), or None; forgets them all.
        One transfer from the device for all kept steps."""
        if not self._losses:
            return None
        values = torch.stack(self._losses).float().cpu()  # [2 * steps]
        steps, self._steps, self._losses = self._steps, [], []
        bad = ~torch.isfinite(values)
        if not bool(bad.any()):
            return None
        first = int(bad.nonzero()[0])
        return NonFinite(steps[first // 2], "DG"[first % 2], float(values[first]))

    def clear(self) -> None:
        """Forget the kept steps (after a rollback they are no longer the run's)."""
        self._steps, self._losses = [], []
