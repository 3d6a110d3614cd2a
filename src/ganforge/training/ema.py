"""An exponential moving average (EMA) of G's weights, used for grids, sampling and metrics.

Averaging G's weights over the last few thousand steps removes much of the
step-to-step jitter of GAN training and gives visibly better samples for free
(Yazici et al. 2019; Karras et al. 2018). At G step t (counted from 0) the
average moves toward G with decay ``min(decay, (1 + t) / (rampup + t))``: with
``rampup`` > 0 the average follows G closely early on, when G changes fast.
Buffers (BatchNorm statistics, spectral-norm vectors) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``self.model``, a frozen copy of a network whose weights track its average."""

    def __init__(self, model: nn.Module, decay: float, rampup: float = 0.0) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.rampup = rampup
        self.updates = 0

    def current_decay(self) -> float:
        """The decay the next update uses."""
        t = self.updates
        if self.rampup > 0:
            return min(self.decay, (1 + t) / (self.rampup + t))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average toward ``model``'s current weights; copy its buffers."""
        beta = self.current_decay()
        avg: list[torch.Tensor] = list(self.model.parameters())
        torch._foreach_lerp_(avg, [p.detach() for p in model.parameters()], 1 - beta)
        for b_avg, b in zip(self.model.buffers(), model.buffers(), strict=True):
            b_avg.copy_(b)
        self.updates += 1
