"""GAN objectives, computed from D's logits.

Each loss is a pair of functions: ``d(real_logits, fake_logits)`` for the
discriminator and ``g(fake_logits)`` for the generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Loss:
    """A GAN objective: D's loss on real and fake logits, G's loss on fake logits."""

    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor], Tensor]


def bce_d(real: Tensor, fake: Tensor) -> Tensor:
    """(BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2 from logits: softplus(-real) and softplus(fake)."""
    return (F.softplus(-real).mean() + F.softplus(fake).mean()) / 2


def bce_g(fake: Tensor) -> Tensor:
    """Non-saturating G loss BCE(D(G(z)), 1) from logits."""
    return F.softplus(-fake).mean()


LOSSES: dict[str, Loss] = {"bce": Loss(bce_d, bce_g)}
