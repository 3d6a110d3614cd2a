"""Augmentations keep shapes, are differentiable, do what they say; adaptive p moves."""

from __future__ import annotations

import pytest
import torch

from ganforge.augment import OPS, Augment, cutout, parse_policy, translation
from ganforge.errors import ConfigError


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("channels", [1, 3])
def test_ops_keep_shape_and_pass_gradients(name: str, channels: int) -> None:
    x = torch.rand(5, channels, 12, 12, requires_grad=True)
    y = OPS[name](x * 2 - 1)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def _shifted(x: torch.Tensor, ty: int, tx: int) -> torch.Tensor:
    """out[i, j] = x[i + ty, j + tx] inside the image, 0 outside."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    rows, cols = slice(max(0, -ty), min(h, h - ty)), slice(max(0, -tx), min(w, w - tx))
    src_r, src_c = slice(rows.start + ty, rows.stop + ty), slice(cols.start + tx, cols.stop + tx)
    out[..., rows, cols] = x[..., src_r, src_c]
    return out


def test_translation_is_a_shift_of_at_most_an_eighth_with_zero_fill() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 2, 16, 16) + 1  # no zeros of its own
    y = translation(x)
    shifts = range(-2, 3)  # 1/8 of 16
    for xi, yi in zip(x, y, strict=True):
        assert any(torch.equal(yi, _shifted(xi, ty, tx)) for ty in shifts for tx in shifts)
    assert (y == 0).any(dim=(1, 2, 3)).float().mean() > 0.5  # most images moved


def test_cutout_zeroes_one_half_side_square() -> None:
    torch.manual_seed(0)
    x = torch.ones(32, 1, 16, 16)
    zeros = (cutout(x) == 0).flatten(1).sum(1)
    assert zeros.max() == 64 and zeros.min() > 0  # an 8x8 square, partly off the edge at times


def test_probability_zero_is_identity_and_one_always_changes() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 1, 8, 8) * 2 - 1
    assert torch.equal(Augment("translation,cutout,color", p=0.0)(x), x)
    changed = (Augment("cutout", p=1.0)(x) != x).flatten(1).any(1)
    assert changed.all()
    half = (Augment("cutout", p=0.5)(torch.rand(400, 1, 8, 8) + 1) != 0).flatten(1).all(1)
    assert 0.35 < half.float().mean() < 0.65  # about half the images were left whole


def test_adaptive_p_rises_when_d_overfits_and_falls_otherwise() -> None:
    aug = Augment("translation", p=0.5, target=0.6, interval=2, speed_images=1000)
    for _ in range(4):
        aug.observe(torch.ones(50))  # D sure of every real: r_t = 1 > 0.6
    assert aug.r_t == 1.0 and aug.p == pytest.approx(0.7)
    for _ in range(2):
        aug.observe(-torch.ones(50))
    assert aug.r_t == -1.0 and aug.p == pytest.approx(0.6)
    restored = Augment("translation", target=0.6, interval=2, speed_images=1000)
    aug.observe(torch.ones(50))
    restored.load_state_dict(aug.state_dict())
    aug.observe(torch.ones(50))
    restored.observe(torch.ones(50))
    assert restored.p == aug.p and restored.r_t == aug.r_t


def test_fixed_p_never_adapts() -> None:
    aug = Augment("color", p=0.3, interval=1)
    aug.observe(torch.ones(10))
    assert aug.p == 0.3


def test_unknown_policy_is_refused() -> None:
    assert parse_policy(" translation , cutout ") == ["translation", "cutout"]
    with pytest.raises(ConfigError, match="unknown augmentation 'flip'"):
        parse_policy("translation,flip")
