"""One GAN training step: the D update on real and detached fake, then the G update.

The step knows the objective only as a :class:`ganforge.losses.Loss` and the
networks only as modules; it works for any loss and any model.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager

import torch
from torch import Tensor, nn

from ganforge.losses import Loss


class GANStep:
    """Callable doing one D step and one G step, returning the step's statistics."""

    def __init__(
        self,
        G: nn.Module,
        D: nn.Module,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        loss: Loss,
        autocast: Callable[[], ContextManager],
        channels_last: bool = False,
    ) -> None:
        self.G, self.D, self.opt_g, self.opt_d, self.loss = G, D, opt_g, opt_d, loss
        self.autocast = autocast
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, real: Tensor, z: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        real = real.contiguous(memory_format=self.memory_format)
        with self.autocast():
            fake = self.G(z, labels)  # [B, C, H, W]

        # D step: real vs detached fake, so D's loss sends no gradient into G.
        self.opt_d.zero_grad(set_to_none=True)
        with self.autocast():
            real_logits = self.D(real, labels).float()
            fake_logits = self.D(fake.detach(), labels).float()
        loss_d = self.loss.d(real_logits, fake_logits)
        loss_d.backward()
        self.opt_d.step()

        # G step on the same fake, now through D; D's weights are frozen so no
        # gradient is spent on them (its BatchNorm statistics still update, as in training).
        self.opt_g.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        try:
            with self.autocast():
                g_logits = self.D(fake, labels).float()
            loss_g = self.loss.g(g_logits)
            loss_g.backward()
        finally:
            self.D.requires_grad_(True)
        self.opt_g.step()

        return {
            "loss/D": loss_d.detach(),
            "loss/G": loss_g.detach(),
            "D(x)": torch.sigmoid(real_logits.detach()).mean(),
            "D(G(z))": torch.sigmoid(fake_logits.detach()).mean(),
        }
