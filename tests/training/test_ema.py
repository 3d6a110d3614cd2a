"""The EMA of G matches a manual update, ramps up, and copies buffers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.training.ema import EMA


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_ema_matches_a_manual_update() -> None:
    torch.manual_seed(0)
    net = _net()
    ema = EMA(net, decay=0.9)
    expected = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        net(torch.randn(8, 3)).square().mean().backward()
        opt.step()
        ema.update(net)
        expected = [
            0.9 * e + 0.1 * p.detach() for e, p in zip(expected, net.parameters(), strict=True)
        ]
    for got, want in zip(ema.model.parameters(), expected, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    assert not any(
        torch.equal(a, b) for a, b in zip(ema.model.parameters(), net.parameters(), strict=True)
    )
    # BatchNorm statistics are copied, not averaged
    assert torch.equal(ema.model[1].running_mean, net[1].running_mean)
    assert not any(p.requires_grad for p in ema.model.parameters())
    assert list(ema.model.state_dict()) == list(net.state_dict())


def test_rampup_follows_closely_at_first() -> None:
    ema = EMA(_net(), decay=0.999, rampup=10)
    decays = []
    for _ in range(3):
        decays.append(ema.current_decay())
        ema.updates += 1
    assert decays == pytest.approx([1 / 10, 2 / 11, 3 / 12])
    ema.updates = 100_000
    assert ema.current_decay() == 0.999
    assert EMA(_net(), decay=0.5).current_decay() == 0.5


def test_decay_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="decay"):
        EMA(_net(), decay=1.0)
