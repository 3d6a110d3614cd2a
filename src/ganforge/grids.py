"""Image grids and PNGs: generated images in [-1, 1] to uint8, a grid of them, a PNG file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def to_uint8(images: Tensor) -> Tensor:
    """Images in [-1, 1] -> uint8 in [0, 255], same shape."""
    return images.detach().float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def grid_image(images: Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """uint8 ``[N, C, H, W]`` -> one uint8 grid ``[H', W', C]`` (C = 1 squeezed to grey)."""
    # imported here: torchvision's import costs about as much as torch's, and only grids need it
    from torchvision.utils import make_grid

    grid = make_grid(images.cpu(), nrow=nrow, padding=padding, pad_value=0)  # [3, H', W']
    arr = grid.permute(1, 2, 0).numpy()
    return arr[..., 0] if images.shape[1] == 1 else arr


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Write a uint8 ``[H, W]`` or ``[H, W, 3]`` array as PNG."""
    Image.fromarray(array).save(path, format="PNG")
