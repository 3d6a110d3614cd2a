"""DCGAN generator and discriminator at 28, 32, 64 or 128 pixels, returning logits.

At 64 pixels with 64 features they equal the tutorial's networks (its
second program) layer for layer, less D's final Sigmoid: the loss takes logits.
With ``num_classes`` > 0 they are class-conditional: G's BatchNorms take a gain and
a bias per class (conditional BatchNorm) and a learned per-class map is added to
each feature map after its BatchNorm (z stays G's only input), D adds a learned
per-class bias to its first feature map (as convolving one-hot label planes would)
and a projection term on its summed last feature map. With ``minibatch_std`` > 0, D's
logit conv also sees the spread of its last feature map across groups of that many
images (:class:`~ganforge.models.layers.MinibatchStd`). Measured on the MNIST sample
(docs/BENCHMARKS.md), concatenating a class embedding to z instead made G ignore z
(one image per class), and projection alone left the classes weak.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ganforge.models.layers import (
    ConditionalBatchNorm2d,
    FastConvTranspose2d,
    MinibatchStd,
    Projection,
    check_labels,
)

SIZES = (28, 32, 64, 128)


def _base(image_size: int) -> int:
    """Side of the smallest feature map: 7 for 28 pixels, else 4."""
    if image_size not in SIZES:
        raise ValueError(f"dcgan supports image sizes {SIZES}, got {image_size}")
    return 7 if image_size == 28 else 4


def _upsamplings(image_size: int) -> int:
    return int(math.log2(image_size // _base(image_size)))


class DCGANGenerator(nn.Module):
    """z ``[B, z_dim]`` -> base x base -> (ConvT k4 s2 + BN + ReLU) doublings -> Tanh."""

    def __init__(
        self, z_dim: int = 100, features: int = 64, image_size: int = 64, channels: int = 1,
        num_classes: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels
        self.num_classes = num_classes
        base, n_up = _base(image_size), _upsamplings(image_size)
        width = features * 2**n_up  # 1024 for 64 pixels and 64 features
        layers: list[nn.Module] = [_up_block(z_dim, width, base, 1, 0, num_classes)]
        for _ in range(n_up - 1):
            layers.append(_up_block(width, width // 2, 4, 2, 1, num_classes))
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        if num_classes:  # a learned map per class, added after each BatchNorm
            shapes = [(features * 2 ** (n_up - i), base * 2**i) for i in range(n_up)]
            maps = [nn.Embedding(num_classes, c * side * side) for c, side in shapes]
            for m in maps:
                nn.init.normal_(m.weight, 0.0, 0.02)
            self.class_maps = nn.ModuleList(maps)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        h = z.view(z.shape[0], -1, 1, 1)
        if not self.num_classes:
            return self.net(h)
        labels = check_labels(labels, self.num_classes)
        for i, layer in enumerate(self.net):
            if isinstance(layer, nn.Sequential):  # ConvT, conditional BN, ReLU
                conv, norm, act = layer
                h = norm(conv(h), labels)
                if i < len(self.class_maps):  # after the BN: the class leaves z's share alone
                    h = h + self.class_maps[i](labels).view_as(h)
                h = act(h)
            else:
                h = layer(h)
        return h


class DCGANDiscriminator(nn.Module):
    """images ``[B, C, S, S]`` -> stride-2 convs -> base x base -> logits ``[B]``."""

    def __init__(
        self, features: int = 64, image_size: int = 64, channels: int = 1, slope: float = 0.2,
        num_classes: int = 0, minibatch_std: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.image_size, self.num_classes = image_size, num_classes
        base, n_down = _base(image_size), _upsamplings(image_size)
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 4, 2, 1), nn.LeakyReLU(slope)]
        if num_classes:
            self.class_bias = nn.Embedding(num_classes, features)
            nn.init.normal_(self.class_bias.weight, 0.0, 0.02)  # not 0: spectral norm divides
        width = features
        for _ in range(n_down - 1):
            layers.append(_down_block(width, width * 2, slope))
            width *= 2
        # base x base -> 1 x 1 (k4 s2 p0 on 4x4 as in the tutorial; k7 on 7x7), with the
        # minibatch-std channel before it when asked
        self.spread = MinibatchStd(minibatch_std) if minibatch_std else None
        layers.append(nn.Conv2d(width + (self.spread is not None), 1, base, 2, 0))
        self.net = nn.Sequential(*layers)
        if num_classes:
            self.projection = Projection(width, num_classes)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(
                f"this discriminator takes {self.image_size}x{self.image_size} images, "
                f"got {x.shape[-1]}x{x.shape[-2]}"
            )
        if not self.num_classes and self.spread is None:
            return self.net(x).view(-1)
        first, act, *blocks, last = self.net  # conv, LeakyReLU, stride-2 blocks, logit conv
        h = first(x)
        if self.num_classes:
            labels = check_labels(labels, self.num_classes)
            h = h + self.class_bias(labels)[:, :, None, None]  # the class's bias
        h = act(h)
        for block in blocks:
            h = block(h)  # ends [B, width, base, base]
        logits = last(h if self.spread is None else self.spread(h)).view(-1)
        return logits + self.projection(h.sum(dim=(2, 3)), labels) if self.num_classes else logits


def _up_block(c_in: int, c_out: int, k: int, s: int, p: int, num_classes: int) -> nn.Sequential:
    norm = ConditionalBatchNorm2d(c_out, num_classes) if num_classes else nn.BatchNorm2d(c_out)
    conv = FastConvTranspose2d(c_in, c_out, k, s, p, bias=False)
    return nn.Sequential(conv, norm, nn.ReLU())


def _down_block(c_in: int, c_out: int, slope: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(slope)
    )
