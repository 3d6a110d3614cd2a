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


class _G(nn.Module):
    """z -> Linear -> BatchNorm1d: a generator small enough to compute its statistics by hand."""

    def __init__(self, z_dim: int = 3, num_classes: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.fc, self.bn = nn.Linear(z_dim, 4), nn.BatchNorm1d(4)
        self.embed = nn.Embedding(max(num_classes, 1), 4)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.fc(z) + (self.embed(labels) if labels is not None else 0)
        return self.bn(h)


def _trained_ema(num_classes: int = 0) -> tuple[_G, EMA]:
    torch.manual_seed(0)
    net = _G(num_classes=num_classes)
    ema = EMA(net, decay=0.5, seed=7)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        labels = torch.arange(8) % num_classes if num_classes else None
        net(torch.randn(8, 3) * 3, labels).sum().backward()
        opt.step()
        ema.update(net)
    return net, ema


@pytest.mark.parametrize("num_classes", [0, 3])
def test_calibrate_gives_the_averages_own_batchnorm_statistics(num_classes: int) -> None:
    from ganforge.training.ema import CALIBRATION_BATCH, CALIBRATION_LATENTS

    net, ema = _trained_ema(num_classes)
    assert torch.equal(ema.model.bn.running_mean, net.bn.running_mean)  # copied from G
    state = torch.get_rng_state()
    ema.calibrate(z_dim=3)
    assert torch.equal(torch.get_rng_state(), state)  # only its own generator drew
    # the statistics by hand: the average's pre-BatchNorm activations on the same latents
    gen = torch.Generator().manual_seed(7)
    z = torch.cat([torch.randn(CALIBRATION_BATCH, 3, generator=gen)
                   for _ in range(CALIBRATION_LATENTS // CALIBRATION_BATCH)])  # fmt: skip
    labels = torch.arange(len(z)) % num_classes if num_classes else None
    with torch.no_grad():
        h = ema.model.fc(z) + (ema.model.embed(labels) if labels is not None else 0)
    torch.testing.assert_close(ema.model.bn.running_mean, h.mean(0))
    batch_vars = h.view(-1, CALIBRATION_BATCH, 4).var(1)  # unbiased, per batch, as BatchNorm
    torch.testing.assert_close(ema.model.bn.running_var, batch_vars.mean(0))
    assert not torch.allclose(ema.model.bn.running_mean, net.bn.running_mean)
    assert not ema.model.training and ema.model.bn.momentum == net.bn.momentum


def test_calibrate_runs_once_per_update() -> None:
    net, ema = _trained_ema()
    ema.calibrate(z_dim=3)
    calibrated = ema.model.bn.running_mean.clone()
    ema.model.bn.running_mean.zero_()
    ema.calibrate(z_dim=3)  # nothing changed since: a no-op
    assert torch.equal(ema.model.bn.running_mean, torch.zeros(4))
    ema.update(net)  # the average moved and took G's statistics again
    assert torch.equal(ema.model.bn.running_mean, net.bn.running_mean)
    ema.calibrate(z_dim=3)
    assert not torch.equal(ema.model.bn.running_mean, calibrated)  # the new average's own
