"""The reference loop: the tutorial's two training programs, re-implemented.

``ganforge bench --vs-reference`` times ganforge's training step against this
loop. It follows the tutorial's programs (docs/how-training-works.md), on purpose without any of
ganforge's fast paths: a torchvision-style dataset returning one PIL image per
sample, per-sample transforms (Resize for the DCGAN, ToTensor, Normalize), a
``DataLoader`` with its default single process, a discriminator ending in
``Sigmoid`` with ``BCELoss``, PyTorch's default Adam, default thread count, fp32,
contiguous tensors, and D's weight gradients computed in the G step too.

Program 1 (``model = "mlp"``): Linear(784, 128) -> LeakyReLU(0.1) -> Linear(128, 1)
-> Sigmoid; G: Linear(64, 256) -> LeakyReLU(0.1) -> Linear(256, 784) -> Tanh.
Program 2 (``model = "dcgan"`` at 64 pixels): the tutorial's DCGAN, every
conv and BatchNorm weight ~ N(0, 0.02), noise always ``(batch, z_dim, 1, 1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError


class ArrayImageDataset(Dataset):
    """uint8 images ``[N, C, H, W]`` served one PIL image at a time, as torchvision's MNIST does."""

    def __init__(
        self, images: np.ndarray, labels: np.ndarray | None, transform: Callable[[Any], Tensor]
    ) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        array = self.images[index]  # [C, H, W]
        image = (
            Image.fromarray(array[0], mode="L")
            if array.shape[0] == 1
            else Image.fromarray(array.transpose(1, 2, 0), mode="RGB")
        )
        label = int(self.labels[index]) if self.labels is not None else 0
        return self.transform(image), label


class _SimpleDiscriminator(nn.Module):
    def __init__(self, in_features: int, hidden: int) -> None:
        super().__init__()
        self.disc = nn.Sequential(
            nn.Linear(in_features, hidden), nn.LeakyReLU(0.1), nn.Linear(hidden, 1), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.disc(x)


class _SimpleGenerator(nn.Module):
    def __init__(self, z_dim: int, hidden: int, img_dim: int) -> None:
        super().__init__()
        self.gen = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.LeakyReLU(0.1), nn.Linear(hidden, img_dim), nn.Tanh()
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.gen(x)


def _dcgan_discriminator(channels: int, features: int) -> nn.Sequential:
    def block(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)
        )

    return nn.Sequential(
        nn.Conv2d(channels, features, 4, 2, 1),  # 32x32
        nn.LeakyReLU(0.2),
        block(features, features * 2),  # 16x16
        block(features * 2, features * 4),  # 8x8
        block(features * 4, features * 8),  # 4x4
        nn.Conv2d(features * 8, 1, 4, 2, 0),  # 1x1
        nn.Sigmoid(),
    )


def _dcgan_generator(z_dim: int, channels: int, features: int) -> nn.Sequential:
    def block(c_in: int, c_out: int, k: int, s: int, p: int) -> nn.Sequential:
        return nn.Sequential(
            nn.ConvTranspose2d(c_in, c_out, k, s, p, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
        )

    return nn.Sequential(
        block(z_dim, features * 16, 4, 1, 0),  # 4x4
        block(features * 16, features * 8, 4, 2, 1),  # 8x8
        block(features * 8, features * 4, 4, 2, 1),  # 16x16
        block(features * 4, features * 2, 4, 2, 1),  # 32x32
        nn.ConvTranspose2d(features * 2, channels, 4, 2, 1),  # 64x64
        nn.Tanh(),
    )


def _init_dcgan(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.BatchNorm2d):
            nn.init.normal_(m.weight.data, 0.0, 0.02)


def check_supported(cfg: TrainConfig) -> None:
    """Raise ConfigError unless ``cfg`` is one of the tutorial's two programs' model shapes."""
    if cfg.model == "mlp" or (cfg.model == "dcgan" and cfg.image_size == 64):
        return
    raise ConfigError(
        "--vs-reference compares against the tutorial's two programs: use a preset whose model is "
        f"mlp, or dcgan at 64 pixels (seed-simple, seed-dcgan); got {cfg.model} at "
        f"{cfg.image_size} pixels"
    )


def reference_steps(
    cfg: TrainConfig,
    images: np.ndarray,
    labels: np.ndarray | None,
    device: torch.device,
    seed: int = 0,
) -> Iterator[int]:
    """Train as the tutorial's program for ``cfg.model`` does, forever; yield each batch's size.

    ``images`` are the dataset's uint8 ``[N, C, H, W]`` at their stored size: the
    per-sample transforms resize them, as the programs do.
    """
    check_supported(cfg)
    torch.manual_seed(seed)
    norm = transforms.Normalize([0.5] * cfg.channels, [0.5] * cfg.channels)
    disc: nn.Module
    gen: nn.Module
    if cfg.model == "mlp":
        img_dim = cfg.channels * cfg.image_size * cfg.image_size
        pipeline = [transforms.ToTensor(), norm]
        disc = _SimpleDiscriminator(img_dim, cfg.d_features).to(device)
        gen = _SimpleGenerator(cfg.z_dim, cfg.g_features, img_dim).to(device)
    else:
        pipeline = [transforms.Resize(cfg.image_size), transforms.ToTensor(), norm]
        disc = _dcgan_discriminator(cfg.channels, cfg.d_features).to(device)
        gen = _dcgan_generator(cfg.z_dim, cfg.channels, cfg.g_features).to(device)
        _init_dcgan(disc)
        _init_dcgan(gen)
    dataset = ArrayImageDataset(images, labels, transforms.Compose(pipeline))
    loader = DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True)
    opt_disc = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    opt_gen = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    criterion = nn.BCELoss()
    gen.train()
    disc.train()
    while True:
        for real, _ in loader:
            if cfg.model == "mlp":
                real = real.view(-1, img_dim).to(device)
                noise = torch.randn(real.shape[0], cfg.z_dim).to(device)
            else:
                real = real.to(device)
                noise = torch.randn(cfg.batch_size, cfg.z_dim, 1, 1).to(device)
            fake = gen(noise)

            disc_real = disc(real).view(-1)
            loss_d_real = criterion(disc_real, torch.ones_like(disc_real))
            disc_fake = disc(fake.detach()).view(-1)
            loss_d_fake = criterion(disc_fake, torch.zeros_like(disc_fake))
            loss_d = (loss_d_real + loss_d_fake) / 2
            disc.zero_grad()
            loss_d.backward()
            opt_disc.step()

            output = disc(fake).view(-1)
            loss_g = criterion(output, torch.ones_like(output))
            gen.zero_grad()
            loss_g.backward()
            opt_gen.step()
            yield real.shape[0]
