"""The fully connected GAN of the tutorial (its first program), returning logits.

With ``num_classes`` > 0 they are class-conditional: G concatenates a learned class
embedding to z, D adds a projection term on its hidden layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganforge.models.layers import Projection, check_labels


class MLPGenerator(nn.Module):
    """z ``[B, z_dim]`` -> Linear -> LeakyReLU -> Linear -> Tanh -> images ``[B, C, H, W]``."""

    def __init__(
        self, z_dim: int = 64, hidden: int = 256, image_size: int = 28, channels: int = 1,
        slope: float = 0.1, num_classes: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels
        self.num_classes = num_classes
        if num_classes:
            self.embed = nn.Embedding(num_classes, z_dim)
        self.net = nn.Sequential(
            nn.Linear(z_dim * 2 if num_classes else z_dim, hidden),
            nn.LeakyReLU(slope),
            nn.Linear(hidden, channels * image_size * image_size),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes:
            z = torch.cat([z, self.embed(check_labels(labels, self.num_classes))], dim=1)
        return self.net(z).view(-1, self.channels, self.image_size, self.image_size)

    def stack(self) -> nn.Sequential | None:
        """The layers ``forward`` applies to z (training/by_hand.py); None when conditional."""
        return None if self.num_classes else self.net


class MLPDiscriminator(nn.Module):
    """images ``[B, C, H, W]`` -> flatten -> Linear -> LeakyReLU -> Linear -> logits ``[B]``."""

    per_image = True  # each image's logit depends on that image alone

    def __init__(
        self, hidden: int = 128, image_size: int = 28, channels: int = 1, slope: float = 0.1,
        num_classes: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.num_classes = num_classes
        if num_classes:
            self.projection = Projection(hidden, num_classes)
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * image_size * image_size, hidden),
            nn.LeakyReLU(slope),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if not self.num_classes:
            return self.net(x).view(-1)
        h = self.net[:-1](x)  # [B, hidden]
        return self.net[-1](h).view(-1) + self.projection(h, labels)

    def stack(self) -> nn.Sequential | None:
        """The layers ``forward`` applies to the flattened images (training/by_hand.py);
        None when conditional."""
        return None if self.num_classes else self.net
