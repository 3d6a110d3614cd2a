"""Differentiable augmentation of D's inputs, so that D sees more varied images.

Every image D sees, real or fake, in its step and in G's, goes through the same
random operations, built from differentiable tensor operations so that G's
gradient flows through them (DiffAugment, Zhao et al. 2020). Each operation is
applied to each image with probability ``p``; ``p`` is either fixed or adapted
from D's overfitting signal r_t = E[sign(D(real))] (ADA, Karras et al. 2020):
raised when r_t is above the target, lowered when below.

Operations (images in [-1, 1], ``[B, C, H, W]``):

| name | does |
| --- | --- |
| color | brightness + U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5) |
| translation | shift by up to 1/8 of the side in x and y, zero padding |
| cutout | one zeroed square of half the side at a random place |
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ganforge.errors import ConfigError

Op = Callable[[Tensor], Tensor]


def _uniform(x: Tensor, low: float, high: float) -> Tensor:
    """One value per image ``[B, 1, 1, 1]`` drawn from U(low, high)."""
    return torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).uniform_(low, high)


def color(x: Tensor) -> Tensor:
    """Random brightness, saturation and contrast per image."""
    x = x + _uniform(x, -0.5, 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * _uniform(x, 0.0, 2.0) + mean  # no-op for one channel but for rounding
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x, 0.5, 1.5) + mean


def translation(x: Tensor, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ``ratio`` of its side, filling with zeros."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (b, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    # Index into the image padded by one zero pixel; out-of-range reads land on the padding.
    rows = (rows + ty + 1).clamp(0, h + 1).expand(b, h, w)  # [B, H, W]
    cols = (cols + tx + 1).clamp(0, w + 1).expand(b, h, w)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))  # [B, C, H+2, W+2]
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: Tensor, ratio: float = 0.5) -> Tensor:
    """Zero one square of ``ratio`` times the side in each image, at a random place."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    dy, dx = rows - (cy - ch // 2), cols - (cx - cw // 2)  # offsets inside the square
    inside = (dy >= 0) & (dy < ch) & (dx >= 0) & (dx < cw)  # [B, H, W]
    return x * (~inside).unsqueeze(1).to(x.dtype)


OPS: dict[str, Op] = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(policy: str) -> list[str]:
    """The operation names of a comma-separated policy such as ``"translation,cutout"``."""
    names = [n.strip() for n in policy.split(",") if n.strip()]
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise ConfigError(
            f"unknown augmentation '{unknown[0]}'; augment takes a comma-separated list of "
            f"{', '.join(OPS)}"
        )
    return names


class Augment:
    """D's input augmentation: each operation of ``policy`` applied to each image with
    probability ``p``; with ``target`` > 0, ``p`` follows D's overfitting signal.

    With ``target`` > 0, call :meth:`observe` with D's logits on real images after
    every D step; every ``interval`` calls, ``p`` moves by ``sign(r_t - target)``
    times the images seen since the last move over ``speed_images`` (so ``p`` can go
    from 0 to 1 in ``speed_images`` images).
    """

    def __init__(
        self,
        policy: str,
        p: float = 1.0,
        target: float = 0.0,
        interval: int = 4,
        speed_images: float = 100_000,
    ) -> None:
        self.ops = [OPS[n] for n in parse_policy(policy)]
        self.p = float(p)
        self.target = target
        self.interval = interval
        self.speed_images = speed_images
        self.r_t = 0.0
        self._sign_sum: Tensor | float = 0.0
        self._count = 0
        self._calls = 0

    def __call__(self, x: Tensor) -> Tensor:
        if self.p <= 0:
            return x
        for op in self.ops:
            if self.p >= 1:
                x = op(x)
            else:
                keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.p
                x = torch.where(keep, x, op(x))
        return x

    def observe(self, real_logits: Tensor) -> None:
        """Feed D's logits on real images ``[B]``; adjust ``p`` every ``interval`` calls."""
        if self.target <= 0:
            return
        self._sign_sum = self._sign_sum + real_logits.detach().sign().sum()
        self._count += real_logits.numel()
        self._calls += 1
        if self._calls % self.interval == 0:
            self.r_t = float(self._sign_sum) / self._count  # one device sync per interval
            step = self._count / self.speed_images
            self.p = min(max(self.p + step * (1 if self.r_t > self.target else -1), 0.0), 1.0)
            self._sign_sum, self._count = 0.0, 0

    def state_dict(self) -> dict[str, float | int]:
        """What a checkpoint keeps to continue the adaptation exactly."""
        return {
            "p": self.p, "r_t": self.r_t, "calls": self._calls,
            "sign_sum": float(self._sign_sum), "count": self._count,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        """Restore :meth:`state_dict`."""
        self.p, self.r_t, self._calls = float(state["p"]), float(state["r_t"]), int(state["calls"])
        self._sign_sum, self._count = float(state["sign_sum"]), int(state["count"])
