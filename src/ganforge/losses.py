"""GAN objectives, computed from D's logits, and the penalties that regularise D.

A :class:`Loss` is D's loss ``d(real_logits, fake_logits)``, G's loss
``g(fake_logits)`` and any number of :class:`Penalty` terms added to D's loss
(R1, the WGAN gradient penalty). The training step calls them without knowing
which objective it runs.

| name | D loss | G loss | source |
| --- | --- | --- | --- |
| bce | (softplus(-r) + softplus(f)) / 2 | softplus(-f) (non-saturating) | Goodfellow et al. 2014 |
| hinge | relu(1 - r) + relu(1 + f) | -f | Lim & Ye 2017; Miyato et al. 2018 |
| wgan-gp | f - r, plus the gradient penalty | -f | Gulrajani et al. 2017 |
| lsgan | ((r - 1)^2 + f^2) / 2 | (f - 1)^2 / 2 | Mao et al. 2017 |

(r, f: D's logits on real and fake images, each term averaged over the batch.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Critic = Callable[[Tensor, Tensor | None], Tensor]  # D(images, labels) -> logits [B]


@dataclass(frozen=True)
class Penalty:
    """A regulariser of D: ``weight * fn(D, real, fake, labels)``, applied every ``every``
    D steps and then multiplied by ``every`` (lazy regularisation, Karras et al. 2020),
    so that its average strength does not depend on the interval."""

    name: str
    fn: Callable[[Critic, Tensor, Tensor, Tensor | None], Tensor]
    weight: float
    every: int = 1

    def due(self, d_step: int) -> bool:
        """Whether this penalty runs at D step ``d_step`` (counted from 0)."""
        return self.weight > 0 and d_step % self.every == 0

    def __call__(self, D: Critic, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
        return self.fn(D, real, fake, labels) * (self.weight * self.every)


@dataclass(frozen=True)
class Loss:
    """A GAN objective: D's loss on real and fake logits, G's loss on fake logits, and the
    penalties added to D's loss."""

    d: Callable[[Tensor, Tensor], Tensor]
    g: Callable[[Tensor], Tensor]
    penalties: tuple[Penalty, ...] = ()
    # Optional closed forms for a step that differentiates by hand (training/by_hand.py):
    # (D's loss, its gradient w.r.t. the real and fake logits concatenated), and
    # (G's loss, its gradient w.r.t. the fake logits). None: autograd differentiates d, g.
    d_grad: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None
    g_grad: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None


def bce_d(real: Tensor, fake: Tensor) -> Tensor:
    """(BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2 from logits: softplus(-real) and softplus(fake)."""
    return (F.softplus(-real).mean() + F.softplus(fake).mean()) / 2


def bce_g(fake: Tensor) -> Tensor:
    """Non-saturating G loss BCE(D(G(z)), 1) from logits."""
    return F.softplus(-fake).mean()


def bce_d_grad(real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`bce_d` and its gradient: d softplus(-r)/dr = -sigmoid(-r), d softplus(f)/df =
    sigmoid(f), each over its batch and halved."""
    n, m = len(real), len(fake)
    t = torch.cat([-real, fake])
    soft, grad = F.softplus(t), torch.sigmoid(t)
    if n == m:  # the mean over both is the mean of the two means
        loss = soft.mean()
        grad.mul_(0.5 / n)[:n].neg_()
    else:
        loss = (soft[:n].mean() + soft[n:].mean()) / 2
        grad[:n].mul_(-0.5 / n)
        grad[n:].mul_(0.5 / m)
    return loss, grad


def bce_g_grad(fake: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`bce_g` and its gradient -sigmoid(-f) / B."""
    t = -fake
    return F.softplus(t).mean(), torch.sigmoid(t).mul_(-1 / len(fake))


def hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge D loss: relu(1 - D(x)) + relu(1 + D(G(z)))."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def critic_g(fake: Tensor) -> Tensor:
    """G loss of hinge and WGAN: -D(G(z))."""
    return -fake.mean()


def wgan_d(real: Tensor, fake: Tensor) -> Tensor:
    """Wasserstein critic loss: D(G(z)) - D(x)."""
    return fake.mean() - real.mean()


def lsgan_d(real: Tensor, fake: Tensor) -> Tensor:
    """Least-squares D loss with targets 1 (real) and 0 (fake)."""
    return ((real - 1).square().mean() + fake.square().mean()) / 2


def lsgan_g(fake: Tensor) -> Tensor:
    """Least-squares G loss with target 1."""
    return (fake - 1).square().mean() / 2


def _input_grad_sq(D: Critic, x: Tensor, labels: Tensor | None) -> Tensor:
    """||dD(x)/dx||^2 per sample ``[B]``, with a graph so that it can be trained on."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, labels).float().sum(), x, create_graph=True)
    return grad.float().square().flatten(1).sum(1)


def r1(D: Critic, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
    """R1 (Mescheder et al. 2018): E ||grad D(x)||^2 on real images, without the gamma/2."""
    return _input_grad_sq(D, real, labels).mean()


def gradient_penalty(D: Critic, real: Tensor, fake: Tensor, labels: Tensor | None) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E (||grad D(x_hat)|| - 1)^2 at random points
    x_hat between real and fake images, without the weight lambda."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = torch.lerp(fake.detach().to(real.dtype), real.detach(), eps)  # eps*real + (1-eps)*fake
    return (_input_grad_sq(D, x_hat, labels).add(1e-12).sqrt() - 1).square().mean()


LOSSES: dict[str, Loss] = {
    "bce": Loss(bce_d, bce_g, d_grad=bce_d_grad, g_grad=bce_g_grad),
    "hinge": Loss(hinge_d, critic_g),
    "wgan-gp": Loss(wgan_d, critic_g, (Penalty("gp", gradient_penalty, 10.0),)),
    "lsgan": Loss(lsgan_d, lsgan_g),
}


def build_loss(
    name: str, r1_gamma: float = 0.0, r1_every: int = 1, gp_weight: float = 10.0
) -> Loss:
    """The objective ``name`` with its penalties: the gradient penalty of wgan-gp weighted
    ``gp_weight``, plus R1 (gamma/2 * E||grad D(x)||^2) every ``r1_every`` D steps when
    ``r1_gamma`` > 0."""
    base = LOSSES[name]
    penalties = [
        dataclasses.replace(p, weight=gp_weight) if p.name == "gp" else p for p in base.penalties
    ]
    if r1_gamma > 0:
        penalties.append(Penalty("r1", r1, r1_gamma / 2, r1_every))
    return dataclasses.replace(base, penalties=tuple(penalties))
