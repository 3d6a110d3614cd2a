"""A tiny class-conditional generator, standing in for ganforge's conditional models in the
sampling and export tests, and a checkpoint of it that ``build_models`` can rebuild."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from ganforge.config import TrainConfig
from ganforge.models import MODELS
from ganforge.models.mlp import MLPDiscriminator
from ganforge.run import checkpoint as ckpt

NAME = "tiny-conditional"
NUM_CLASSES = 3


class TinyConditionalGenerator(nn.Module):
    """z ``[B, z_dim]`` and labels ``[B]`` -> images ``[B, C, S, S]``: the class embedding is
    added to z, so each class draws different images from the same latents."""

    def __init__(self, z_dim: int, image_size: int, channels: int, num_classes: int) -> None:
        super().__init__()
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, z_dim)
        self.net = nn.Sequential(
            nn.Linear(z_dim, channels * image_size * image_size),
            nn.BatchNorm1d(channels * image_size * image_size),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        x = self.net(z + self.embed(labels))
        return x.view(-1, self.channels, self.image_size, self.image_size)


def build(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """The tiny conditional generator and a small MLP discriminator."""
    g = TinyConditionalGenerator(cfg.z_dim, cfg.image_size, cfg.channels, NUM_CLASSES)
    return g, MLPDiscriminator(8, cfg.image_size, cfg.channels)


def register() -> None:
    """Make ``model = "tiny-conditional"`` buildable."""
    MODELS[NAME] = build


def config() -> TrainConfig:
    """The config of the tiny conditional model."""
    return dataclasses.replace(
        TrainConfig(), model=NAME, z_dim=8, image_size=8, channels=1, weight_init="default"
    )


def write_checkpoint(path: Path) -> Path:
    """A ganforge checkpoint of a randomly initialised tiny conditional generator."""
    torch.manual_seed(0)
    cfg = config()
    G, _ = build(cfg)
    with torch.no_grad():  # running statistics other than 0 and 1, so eval mode shows
        G.net[1].running_mean.uniform_(-0.5, 0.5)
        G.net[1].running_var.uniform_(0.5, 2.0)
    state = {
        "format": ckpt.FORMAT,
        "version": ckpt.VERSION,
        "config": cfg.to_dict(),
        "G": G.state_dict(),
    }
    ckpt.save_atomic(state, path)
    return path


if __name__ == "__main__":  # the CLI with the tiny conditional model registered
    from ganforge.cli import main

    register()
    sys.exit(main(sys.argv[1:]))
