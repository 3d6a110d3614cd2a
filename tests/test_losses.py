"""Each objective's direction and gradient on toy logits; penalties against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from ganforge.losses import LOSSES, build_loss, gradient_penalty, r1

# Logits of a D that cannot tell real from fake, and of one that tells them apart
# (least squares aims at 1 for real and 0 for fake, the others at +/- infinity).
CONFUSED = {"lsgan": 0.5}
WINNING = {"lsgan": (1.0, 0.0)}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_d_winning_lowers_d_loss_and_raises_g_loss(name: str) -> None:
    loss = LOSSES[name]
    confused = torch.full((8,), CONFUSED.get(name, 0.0))
    high, low = WINNING.get(name, (3.0, -3.0))
    real_high, fake_low = torch.full((8,), high), torch.full((8,), low)
    # D separating real (high) from fake (low) has the lower D loss, and leaves G worse off.
    assert loss.d(real_high, fake_low) < loss.d(confused, confused)
    assert loss.g(fake_low) > loss.g(confused)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradients_point_the_way_each_player_wants(name: str) -> None:
    loss = LOSSES[name]
    real = torch.full((4,), CONFUSED.get(name, 0.0), requires_grad=True)
    fake = torch.full((4,), CONFUSED.get(name, 0.0), requires_grad=True)
    loss.d(real, fake).backward()
    assert real.grad is not None and fake.grad is not None
    # Gradient descent on D's loss raises the real logits and lowers the fake ones.
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake_g = torch.full((4,), CONFUSED.get(name, 0.0), requires_grad=True)
    loss.g(fake_g).backward()
    assert fake_g.grad is not None and (fake_g.grad < 0).all()  # G raises D's fake logits


def test_losses_equal_their_formulas() -> None:
    r, f = torch.tensor([0.5, 2.0]), torch.tensor([-1.5, 0.25])
    sp = torch.nn.functional.softplus
    assert torch.isclose(LOSSES["bce"].d(r, f), (sp(-r).mean() + sp(f).mean()) / 2)
    assert torch.isclose(LOSSES["hinge"].d(r, f), torch.tensor((0.5 + 0) / 2 + (0 + 1.25) / 2))
    assert torch.isclose(LOSSES["hinge"].g(f), torch.tensor(0.625))
    assert torch.isclose(LOSSES["wgan-gp"].d(r, f), f.mean() - r.mean())
    lsgan_d = ((0.25 + 1.0) / 2 + (2.25 + 0.0625) / 2) / 2
    assert torch.isclose(LOSSES["lsgan"].d(r, f), torch.tensor(lsgan_d))
    assert torch.isclose(LOSSES["lsgan"].g(f), torch.tensor((6.25 + 0.5625) / 2 / 2))


def _quadratic(x: Tensor, labels: Tensor | None) -> Tensor:
    return x.square().flatten(1).sum(1)  # grad = 2x


def test_r1_equals_hand_computed_value() -> None:
    x = torch.tensor([[1.0, 2.0], [0.0, -3.0]])
    # ||2x||^2 per sample: 4*(1+4) = 20 and 4*9 = 36, mean 28.
    assert torch.isclose(r1(_quadratic, x, x, None), torch.tensor(28.0))
    penalty = build_loss("bce", r1_gamma=0.5, r1_every=4).penalties[0]
    assert penalty.name == "r1"
    assert torch.isclose(penalty(_quadratic, x, x, None), torch.tensor(0.25 * 4 * 28.0))
    assert [penalty.due(s) for s in range(5)] == [True, False, False, False, True]


def test_gradient_penalty_equals_hand_computed_value() -> None:
    w = torch.tensor([3.0, 4.0])  # a linear critic: grad = w everywhere, ||w|| = 5

    def linear(x: Tensor, labels: Tensor | None) -> Tensor:
        return x.flatten(1) @ w

    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    assert torch.isclose(gradient_penalty(linear, real, fake, None), torch.tensor(16.0))
    weighted = build_loss("wgan-gp", gp_weight=2.0).penalties[0]
    assert torch.isclose(weighted(linear, real, fake, None), torch.tensor(32.0))


def test_penalties_train_d_and_r1_flattens_it() -> None:
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def critic(x: Tensor, labels: Tensor | None) -> Tensor:
        return D(x).view(-1)

    x = torch.randn(16, 2)
    before = r1(critic, x, x, None).item()
    opt = torch.optim.SGD(D.parameters(), lr=0.1)
    for _ in range(20):
        opt.zero_grad()
        r1(critic, x, x, None).backward()
        opt.step()
    assert r1(critic, x, x, None).item() < before / 2


def test_only_wgan_gp_carries_a_penalty_by_default() -> None:
    assert [p.name for p in build_loss("wgan-gp").penalties] == ["gp"]
    assert build_loss("hinge").penalties == ()
    assert [p.name for p in build_loss("hinge", r1_gamma=10).penalties] == ["r1"]
    assert math.isclose(build_loss("hinge", r1_gamma=10).penalties[0].weight, 5.0)


@pytest.mark.parametrize("n_fake", [6, 4])
def test_closed_form_gradients_are_autograds(n_fake: int) -> None:
    with_grads = [loss for loss in LOSSES.values() if loss.d_grad or loss.g_grad]
    assert with_grads  # bce has them
    gen = torch.Generator().manual_seed(0)
    for loss in with_grads:
        real = (torch.randn(6, generator=gen) * 3).requires_grad_()
        fake = (torch.randn(n_fake, generator=gen) * 3).requires_grad_()
        assert loss.d_grad is not None and loss.g_grad is not None
        value, grad = loss.d_grad(real.detach(), fake.detach())
        want = loss.d(real, fake)
        torch.testing.assert_close(value, want.detach())
        torch.testing.assert_close(grad, torch.cat(torch.autograd.grad(want, [real, fake])))
        value, grad = loss.g_grad(fake.detach())
        want = loss.g(fake)
        torch.testing.assert_close(value, want.detach())
        torch.testing.assert_close(grad, torch.autograd.grad(want, fake)[0])
