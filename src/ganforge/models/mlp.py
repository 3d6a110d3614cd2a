"""The fully connected GAN of the tutorial (SEED.md, program 1), returning logits."""

from __future__ import annotations

from torch import Tensor, nn


class MLPGenerator(nn.Module):
    """z ``[B, z_dim]`` -> Linear -> LeakyReLU -> Linear -> Tanh -> images ``[B, C, H, W]``."""

    def __init__(
        self, z_dim: int = 64, hidden: int = 256, image_size: int = 28, channels: int = 1,
        slope: float = 0.1,
    ) -> None:  # fmt: skip
        super().__init__()
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden),
            nn.LeakyReLU(slope),
            nn.Linear(hidden, channels * image_size * image_size),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z).view(-1, self.channels, self.image_size, self.image_size)


class MLPDiscriminator(nn.Module):
    """images ``[B, C, H, W]`` -> flatten -> Linear -> LeakyReLU -> Linear -> logits ``[B]``."""

    def __init__(
        self, hidden: int = 128, image_size: int = 28, channels: int = 1, slope: float = 0.1
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * image_size * image_size, hidden),
            nn.LeakyReLU(slope),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(x).view(-1)
