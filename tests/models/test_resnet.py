"""The SNGAN-style ResNet pair: sizes, shapes, residual blocks, registry."""

from __future__ import annotations

import pytest
import torch

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError
from ganforge.models import build_models
from ganforge.models.resnet import DBlock, GBlock, ResNetDiscriminator, ResNetGenerator


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_resnet_sizes_round_trip(size: int, channels: int) -> None:
    G = ResNetGenerator(z_dim=8, features=8, image_size=size, channels=channels).eval()
    D = ResNetDiscriminator(features=8, image_size=size, channels=channels).eval()
    images = G(torch.randn(3, 8))
    assert images.shape == (3, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert D(images).shape == (3,)
    ups = sum(isinstance(m, GBlock) for m in G.modules())
    assert ups == {28: 2, 32: 3, 64: 4}[size]  # 7 or 4 pixels doubled to the image size
    downs = sum(isinstance(m, DBlock) and m.down for m in D.modules())
    assert downs == {28: 2, 32: 2, 64: 3}[size]  # down to 7x7 or 8x8


def test_blocks_are_residual() -> None:
    torch.manual_seed(0)
    block = DBlock(4, 4, down=False)
    x = torch.randn(2, 4, 6, 6)
    for conv in (block.conv1, block.conv2):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    assert torch.equal(block(x), x)  # zero residual branch: identity shortcut
    g = GBlock(4, 2).eval()
    assert g(x, None).shape == (2, 2, 12, 12)


def test_resnet_from_config_keeps_its_own_init() -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(model="resnet", image_size=32, channels=1, g_features=16, d_features=16)
    G, D = build_models(cfg.model_spec())
    # Xavier uniform with gain sqrt(2) on 16*9 in, 16*9 out: std sqrt(2 * 2 / 288) = 0.118
    std = G.blocks[0].conv1.weight.std().item()
    assert 0.1 < std < 0.14  # not overwritten by the dcgan N(0, 0.02)
    with pytest.raises(ConfigError, match="image_size"):
        build_models(TrainConfig(model="resnet", image_size=48, channels=1).model_spec())
