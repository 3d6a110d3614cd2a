"""Using a trained generator: loading it from a run or checkpoint, sampling, grids."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ganforge import config as cfgmod
from ganforge.config import TrainConfig
from ganforge.errors import UserError
from ganforge.logging import grid_image, save_png, to_uint8
from ganforge.models import build_models
from ganforge.training import checkpoint as ckpt
from ganforge.training.run_dir import find_checkpoint


class Generator(nn.Module):
    """A trained generator in eval mode, with the config it was trained with."""

    def __init__(self, net: nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.net = net.eval()
        self.cfg = cfg
        self.z_dim: int = cfg.z_dim

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(z, labels)

    def latents(self, n: int, seed: int = 0) -> Tensor:
        """``n`` latents ``[n, z_dim]`` drawn on the CPU from ``seed`` (the same on any device)."""
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(n, self.z_dim, generator=gen)

    @torch.no_grad()
    def sample(
        self, n: int, seed: int = 0, labels: Tensor | None = None, uint8: bool = True
    ) -> Tensor:
        """``n`` images ``[n, C, H, W]``: uint8 in [0, 255], or floats in [-1, 1] (uint8=False)."""
        if n <= 0:
            raise UserError(f"number of samples must be positive, got {n}")
        device = next(self.net.parameters()).device
        images = self.net(self.latents(n, seed).to(device), labels).float()
        return to_uint8(images) if uint8 else images


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """The generator of a run folder or checkpoint file, ready to sample."""
    state = ckpt.load(find_checkpoint(path))
    cfg = cfgmod.from_dict(state["config"])
    G, _ = build_models(cfg)
    G.load_state_dict(state["G"])
    return Generator(G, cfg).to(device)


def save_grid(images: Tensor, path: str | Path, nrow: int = 8, padding: int = 2) -> Path:
    """Write uint8 images ``[N, C, H, W]`` as one grid PNG."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"folder {path.parent} does not exist; create it or choose another path")
    save_png(grid_image(images, nrow=nrow, padding=padding), path)
    return path
