"""Fixtures for the metrics tests: the bundled MNIST digits and the shipped mnist-net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import load_sample
from ganforge.metrics import FeatureExtractor, get_extractor


@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    """The bundled 10,000 real MNIST digits, uint8 [N, 1, 28, 28]."""
    return load_sample().images


@pytest.fixture(scope="session")
def mnist_net() -> FeatureExtractor:
    """The shipped mnist-net extractor."""
    return get_extractor("mnist-net")


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of uint8 images [N, C, H, W] (sigma in pixels; 0 = unchanged)."""
    if sigma == 0:
        return images
    radius = int(np.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    x = torch.from_numpy(images).float()
    c = x.shape[1]
    x = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (radius,) * 4, mode="replicate"),
        kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
        groups=c,
    )
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def digit_folder(path: Path, images: np.ndarray) -> Path:
    """Write uint8 grey images [N, 1, H, W] as PNG files into ``path``; return it."""
    path.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img[0]).save(path / f"{i:05d}.png")
    return path
