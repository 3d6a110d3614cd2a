"""Feature extractors behind one interface, chosen by name.

Every extractor takes uint8 images ``[B, C, H, W]`` (C = 1 or 3, any size; each
one converts them to what its network expects) and returns float features
``[B, D]``; a classifier also returns logits ``[B, K]``.

- ``inception``: TF-Inception-v3 pool3 features (2048-d), those published FIDs use,
  through torch-fidelity; RGB, resized to 299 with TF1-compatible bilinear filtering.
- ``mnist-net``: ganforge's small CNN trained on the bundled MNIST sample (128-d);
  grey, 28x28.
- ``fashion-net``: the same CNN trained on Fashion-MNIST (128-d); grey, 28x28.
- ``PATH.pt``: a feature network ``ganforge featurenet train`` trained on a labelled
  image folder (its own input channels and size; scores on its own scale).
- ``auto``: the domain net for MNIST-like data (a dataset named mnist, mnist-sample
  or fashion-mnist, or other 28x28 grey data), inception otherwise.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.errors import MetricsError

NAMES = ("auto", "inception", "mnist-net", "fashion-net")
DOMAIN_NETS = {"mnist": "mnist-net", "mnist-sample": "mnist-net", "fashion-mnist": "fashion-net"}

# ITU-R 601-2 luma, as Pillow converts RGB to L.
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
NET_INPUT_FILTER = "bilinear-antialiased"  # how to_net_input resizes


class FeatureExtractor(ABC):
    """A network that maps uint8 images to feature vectors (and logits, for classifiers)."""

    name: str
    dim: int
    class_names: list[str]  # empty when the network is not used as a classifier
    fingerprint: str  # identifies the weights, so cached statistics follow them
    batch_size: int  # images per forward pass that suits the network on a CPU
    net: nn.Module
    resize_filter: str = NET_INPUT_FILTER  # for the score card: to_net_input's, by default

    @property
    def device(self) -> torch.device:
        """Where the network's weights live."""
        return next(self.net.parameters()).device

    @property
    def input_size(self) -> int:
        """The square size images are resized to for the network (its net's ``size``)."""
        size: Any = self.net.size  # FeatureNet's; a Module attribute to mypy
        return int(size)

    @abstractmethod
    def _forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """uint8 ``[B, C, H, W]`` on the device -> features ``[B, D]``, logits ``[B, K]`` / None."""

    @torch.no_grad()
    def embed(self, images: Tensor | np.ndarray) -> tuple[Tensor, Tensor | None]:
        """Features ``[B, D]`` and logits ``[B, K]`` (None if no classifier), float32 on the CPU."""
        x = torch.as_tensor(images)
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
            raise MetricsError(
                f"images must be uint8 [B, C, H, W] with C = 1 or 3, got {x.dtype} "
                f"{list(x.shape)}; convert them to 0..255 first"
            )
        features, logits = self._forward(x.to(self.device))
        return features.float().cpu(), None if logits is None else logits.float().cpu()

    def features(self, images: Tensor | np.ndarray) -> Tensor:
        """Features ``[B, D]`` of uint8 images ``[B, C, H, W]``."""
        return self.embed(images)[0]

    def logits(self, images: Tensor | np.ndarray) -> Tensor:
        """Class logits ``[B, K]`` of uint8 images ``[B, C, H, W]``."""
        logits = self.embed(images)[1]
        if logits is None:
            raise MetricsError(f"feature extractor {self.name} is not a classifier")
        return logits


def to_net_input(images: Tensor, channels: int, size: int) -> Tensor:
    """uint8 ``[B, C, H, W]`` -> float ``[B, channels, size, size]`` in [-1, 1] (grey by
    luma, colour by repeating a grey channel; antialiased bilinear resize)."""
    if channels == 1:
        x = images.float()
        if x.shape[1] == 3:
            x = (x * _LUMA.to(x.device)).sum(dim=1, keepdim=True)
    else:
        x = images.float().expand(-1, 3, -1, -1) if images.shape[1] == 1 else images.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    return x.div(127.5).sub(1.0)


def file_fingerprint(path: Path) -> str:
    """A short hash of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def resolve_auto(dataset: str, channels: int, size: int) -> str:
    """The extractor ``auto`` means for real data named ``dataset`` of this shape."""
    if dataset in DOMAIN_NETS:
        return DOMAIN_NETS[dataset]
    if channels == 1 and size == 28:
        return "mnist-net"
    return "inception"


def get_extractor(
    name: str,
    *,
    dataset: str = "",
    shape: tuple[int, ...] = (1, 28, 28),
    inception_weights: str | Path | None = None,
    download: bool = True,
    device: str | torch.device = "cpu",
) -> FeatureExtractor:
    """The extractor ``name`` (``auto`` picks by the real data's name and ``[C, H, W]`` shape)."""
    if name not in NAMES and not name.endswith(".pt"):
        raise MetricsError(
            f"unknown feature extractor '{name}'; choose one of {', '.join(NAMES)}, "
            "or the path of a feature network file (NET.pt)"
        )
    if name == "auto":
        name = resolve_auto(dataset, shape[0], shape[-1])
    if name == "inception":
        from ganforge.metrics.inception import InceptionExtractor

        return InceptionExtractor(inception_weights, download, device)
    from ganforge.metrics.featurenet import FeatureNetExtractor

    return FeatureNetExtractor(name, device)
