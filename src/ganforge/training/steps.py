"""One GAN training step: the D update on real and detached fake, then the G update.

The step knows the objective only as a :class:`ganforge.losses.Loss` and the
networks only as modules; it works for any loss and any model.

Options (issue 6), all off by default: the loss's penalties (R1, gradient
penalty) added to D's loss when due; ``n_critic`` D steps per G step (each call
is one D step on one batch, and every ``n_critic``-th call also steps G);
``augment`` applied to every image D sees; ``ema`` updated after each G step.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager as ContextManager

import torch
from torch import Tensor, nn

from ganforge.augment import Augment
from ganforge.losses import Loss
from ganforge.training.ema import EMA


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
        *,
        n_critic: int = 1,
        augment: Augment | None = None,
        ema: EMA | None = None,
        d_steps: int = 0,
    ) -> None:
        self.G, self.D, self.opt_g, self.opt_d, self.loss = G, D, opt_g, opt_d, loss
        self.autocast = autocast
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.n_critic, self.augment, self.ema = n_critic, augment, ema
        self.d_steps = d_steps  # D steps done so far: schedules n_critic and lazy penalties
        self._last_g: dict[str, Tensor] = {"loss/G": torch.tensor(0.0)}  # until G first steps

    def __call__(self, real: Tensor, z: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        real = real.contiguous(memory_format=self.memory_format)
        g_turn = (self.d_steps + 1) % self.n_critic == 0
        with self.autocast(), torch.set_grad_enabled(g_turn):
            fake = self.G(z, labels)  # [B, C, H, W]

        # D step: real vs detached fake, so D's loss sends no gradient into G.
        self.opt_d.zero_grad(set_to_none=True)
        real_in, fake_in = self._d_input(real), self._d_input(fake.detach())
        with self.autocast():
            real_logits = self.D(real_in, labels).float()
            fake_logits = self.D(fake_in, labels).float()
        loss_d = self.loss.d(real_logits, fake_logits)
        stats = self._penalties(real_in, fake_in, labels)
        total_d = loss_d + sum(stats.values()) if stats else loss_d
        total_d.backward()
        self.opt_d.step()
        self.d_steps += 1
        if self.augment is not None:
            self.augment.observe(real_logits)
            stats["augment/p"] = torch.tensor(self.augment.p)
            stats["augment/r_t"] = torch.tensor(self.augment.r_t)

        if g_turn:
            self._last_g = self._g_step(fake, labels)

        return {
            "loss/D": loss_d.detach(),
            **self._last_g,
            "D(x)": torch.sigmoid(real_logits.detach()).mean(),
            "D(G(z))": torch.sigmoid(fake_logits.detach()).mean(),
            **{k: v.detach() for k, v in stats.items()},
        }

    def _g_step(self, fake: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
        # G step on the same fake, now through D; D's weights are frozen so no
        # gradient is spent on them (its BatchNorm statistics still update, as in training).
        self.opt_g.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        try:
            with self.autocast():
                g_logits = self.D(self._d_input(fake), labels).float()
            loss_g = self.loss.g(g_logits)
            loss_g.backward()
        finally:
            self.D.requires_grad_(True)
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(self.G)
        return {"loss/G": loss_g.detach()}

    def _d_input(self, images: Tensor) -> Tensor:
        """What D sees: the images, augmented when augmentation is on."""
        return images if self.augment is None else self.augment(images)

    def _penalties(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
        """The loss's penalties due at this D step, in fp32, keyed ``penalty/NAME``."""
        return {
            f"penalty/{p.name}": p(self.D, real, fake, labels)
            for p in self.loss.penalties
            if p.due(self.d_steps)
        }
