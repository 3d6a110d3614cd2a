"""ResNet generator and discriminator in the style of SNGAN (Miyato et al. 2018), at
28, 32, 64 or 128 pixels, returning logits.

G: z -> Linear -> W x base x base -> residual up-blocks (BN, ReLU, nearest 2x,
3x3 convs) -> BN, ReLU, 3x3 conv, Tanh. D: residual down-blocks (ReLU, 3x3 convs,
2x2 average pooling) to 7x7 or 8x8, two more blocks, ReLU, sum over space,
Linear. Widths are uniform (``features``), as SNGAN's CIFAR-10 networks. With
``num_classes`` > 0, G's BatchNorms are class-conditional and D adds a projection
term. Weights start Xavier-uniform (gain sqrt(2) inside the residual branches).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.models.layers import ConditionalBatchNorm2d, Projection

SIZES = (28, 32, 64, 128)


def _base(image_size: int) -> int:
    if image_size not in SIZES:
        raise ValueError(f"resnet supports image sizes {SIZES}, got {image_size}")
    return 7 if image_size == 28 else 4


def _conv(c_in: int, c_out: int, k: int, gain: float = 1.0) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, k, 1, k // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    return conv


class GBlock(nn.Module):
    """x -> BN, ReLU, up 2x, conv3, BN, ReLU, conv3; plus up 2x, conv1 of x."""

    def __init__(self, c_in: int, c_out: int, num_classes: int = 0) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm2d(c_in, num_classes)
        self.conv1 = _conv(c_in, c_out, 3, math.sqrt(2))
        self.bn2 = ConditionalBatchNorm2d(c_out, num_classes)
        self.conv2 = _conv(c_out, c_out, 3, math.sqrt(2))
        self.shortcut = _conv(c_in, c_out, 1)

    def forward(self, x: Tensor, labels: Tensor | None) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, labels)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), labels)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DBlock(nn.Module):
    """x -> [ReLU], conv3, ReLU, conv3, [avg-pool 2]; plus conv1 and [avg-pool] of x.

    The first block of D (``first``) takes the image itself: no ReLU before its first
    conv, and its shortcut pools before the 1x1 conv (SNGAN's "optimised" block)."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = _conv(c_in, c_out, 3, math.sqrt(2))
        self.conv2 = _conv(c_out, c_out, 3, math.sqrt(2))
        self.shortcut = _conv(c_in, c_out, 1) if (down or c_in != c_out) else None

    def _pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self._pool(self.conv2(F.relu(h)))
        if self.shortcut is None:
            return h + x
        sc = self.shortcut(self._pool(x)) if self.first else self._pool(self.shortcut(x))
        return h + sc


class ResNetGenerator(nn.Module):
    """z ``[B, z_dim]`` -> ``features`` x base x base -> up-blocks -> images ``[B, C, S, S]``."""

    def __init__(
        self, z_dim: int = 128, features: int = 256, image_size: int = 32, channels: int = 3,
        num_classes: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels
        self.num_classes, self.features = num_classes, features
        self.base = _base(image_size)
        self.linear = nn.Linear(z_dim, features * self.base**2)
        nn.init.xavier_uniform_(self.linear.weight)
        n_up = int(math.log2(image_size // self.base))
        self.blocks = nn.ModuleList(GBlock(features, features, num_classes) for _ in range(n_up))
        self.bn = nn.BatchNorm2d(features)
        self.out = _conv(features, channels, 3)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.linear(z).view(z.shape[0], self.features, self.base, self.base)
        for block in self.blocks:
            h = block(h, labels)
        return self.out(F.relu(self.bn(h))).tanh()


class ResNetDiscriminator(nn.Module):
    """images ``[B, C, S, S]`` -> down-blocks -> ReLU, sum over space -> logits ``[B]``."""

    def __init__(
        self, features: int = 128, image_size: int = 32, channels: int = 3, num_classes: int = 0
    ) -> None:
        super().__init__()
        self.image_size, self.num_classes = image_size, num_classes
        n_down = max(int(math.log2(image_size // _base(image_size))) - 1, 2)  # to 7x7 or 8x8
        blocks = [DBlock(channels, features, down=True, first=True)]
        blocks += [DBlock(features, features, down=True) for _ in range(n_down - 1)]
        blocks += [DBlock(features, features, down=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(features, 1)
        nn.init.xavier_uniform_(self.linear.weight)
        if num_classes:
            self.projection = Projection(features, num_classes)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(
                f"this discriminator takes {self.image_size}x{self.image_size} images, "
                f"got {x.shape[-1]}x{x.shape[-2]}"
            )
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))  # [B, features]
        logits = self.linear(h).view(-1)
        return logits + self.projection(h, labels) if self.num_classes else logits
