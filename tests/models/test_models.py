"""The networks equal the tutorial's layer for layer at the tutorial's settings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.models import build_models
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from tests.training.helpers import on_mnist


def _shapes(module: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(p.shape) for p in module.parameters()]


def test_seed_simple_shapes_equal_the_tutorial() -> None:
    G, D = build_models(on_mnist("seed-simple").model_spec())
    # D: Linear(784, 128) -> LeakyReLU(0.1) -> Linear(128, 1) (no Sigmoid: logits)
    assert _shapes(D) == [(128, 784), (128,), (1, 128), (1,)]
    # G: Linear(64, 256) -> LeakyReLU(0.1) -> Linear(256, 784) -> Tanh
    assert _shapes(G) == [(256, 64), (256,), (784, 256), (784,)]
    assert sum(p.numel() for p in D.parameters()) == 784 * 128 + 128 + 128 + 1
    assert sum(p.numel() for p in G.parameters()) == 64 * 256 + 256 + 256 * 784 + 784
    slopes = [m.negative_slope for m in G.modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.1]
    assert isinstance(list(G.modules())[-1], nn.Tanh)
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())


def test_seed_dcgan_layers_equal_the_tutorial() -> None:
    G, D = build_models(on_mnist("seed-dcgan").model_spec())
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (1, 64), (64, 128), (128, 256), (256, 512), (512, 1),
    ]  # fmt: skip
    assert [c.bias is not None for c in convs] == [True, False, False, False, True]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert [c.padding for c in convs] == [(1, 1)] * 4 + [(0, 0)]
    deconvs = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in deconvs] == [
        (100, 1024), (1024, 512), (512, 256), (256, 128), (128, 1),
    ]  # fmt: skip
    assert [(c.stride, c.padding) for c in deconvs] == [((1, 1), (0, 0))] + [((2, 2), (1, 1))] * 4
    assert [c.bias is not None for c in deconvs] == [False] * 4 + [True]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 3
    expected_d = 1 * 64 * 16 + 64 + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 16 + 1
    expected_d += 2 * (128 + 256 + 512)  # BatchNorm weight and bias
    assert sum(p.numel() for p in D.parameters()) == expected_d
    expected_g = 100 * 1024 * 16 + 1024 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16
    expected_g += 128 * 1 * 16 + 1 + 2 * (1024 + 512 + 256 + 128)
    assert sum(p.numel() for p in G.parameters()) == expected_g


def test_tutorial_bn_init_is_near_zero_and_paper_init_near_one() -> None:
    torch.manual_seed(0)
    G, _ = build_models(on_mnist("seed-dcgan").model_spec())
    bn = next(m for m in G.modules() if isinstance(m, nn.BatchNorm2d))
    assert abs(bn.weight.mean().item()) < 0.01 and 0.01 < bn.weight.std().item() < 0.03
    cfg = on_mnist("seed-dcgan")
    cfg.bn_init = "paper"
    G, _ = build_models(cfg.model_spec())
    bn = next(m for m in G.modules() if isinstance(m, nn.BatchNorm2d))
    assert abs(bn.weight.mean().item() - 1) < 0.01
    conv = next(m for m in G.modules() if isinstance(m, nn.ConvTranspose2d))
    assert 0.015 < conv.weight.std().item() < 0.025


@pytest.mark.parametrize("size", [28, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_sizes_round_trip(size: int, channels: int) -> None:
    G = DCGANGenerator(z_dim=8, features=4, image_size=size, channels=channels).eval()
    D = DCGANDiscriminator(features=4, image_size=size, channels=channels).eval()
    images = G(torch.randn(3, 8))
    assert images.shape == (3, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert D(images).shape == (3,)


def test_dcgan_refuses_wrong_size_input() -> None:
    D = DCGANDiscriminator(features=4, image_size=64, channels=3)
    with pytest.raises(ValueError, match="64x64"):
        D(torch.zeros(2, 3, 64, 78))
