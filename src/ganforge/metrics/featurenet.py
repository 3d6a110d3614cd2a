"""ganforge's own feature networks: a small CNN classifier and its training.

``mnist-net`` and ``fashion-net`` are this network trained by ``ganforge
featurenet train`` on grey 28x28 digits and clothes; their weights ship in
``ganforge/metrics/weights/`` as plain ``torch.save`` dicts of tensors, strings and
numbers (they load with ``torch.load(weights_only=True)``). The same command trains
one on any labelled image folder (one sub-folder per class), in colour at 32x32 by
default, for data no shipped network knows; such a file is then named by its path
(``--eval-features NET.pt``). The 128-d penultimate layer gives the features, the
last layer the class logits. Scores in such a feature space are on its own scale.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from ganforge.errors import MetricsError
from ganforge.metrics.extractors import FeatureExtractor, file_fingerprint, to_net_input

FORMAT = "ganforge-featurenet"
VERSION = 1
FEATURE_DIM = 128


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class FeatureNet(nn.Module):
    """CNN for images ``[B, channels, size, size]`` in [-1, 1]: three conv blocks, a 128-d
    feature layer, logits. The grey 28x28 nets have width 16, the colour 32x32 ones 32.

    Narrow on purpose (about 52,000 weights at 28x28): scoring 10,000 images must take
    seconds on a CPU.
    """

    def __init__(
        self, num_classes: int = 10, width: int = 16, channels: int = 1, size: int = 28
    ) -> None:
        super().__init__()
        self.channels, self.size, self.width = channels, size, width
        side = size // 8  # three 2x poolings: 28 -> 3, 32 -> 4
        self.body = nn.Sequential(
            _block(channels, width),  # size -> size / 2
            _block(width, 2 * width),
            _block(2 * width, 2 * width),
            nn.Flatten(),
            nn.Linear(2 * width * side * side, FEATURE_DIM),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images ``[B, C, S, S]`` -> features ``[B, 128]`` and logits ``[B, K]``."""
        features = self.body(x)
        return features, self.head(self.dropout(features))


@dataclass
class TrainedNet:
    """A trained feature network with what is known about it."""

    net: FeatureNet
    name: str
    class_names: list[str]
    test_accuracy: float
    trained_on: str
    seconds: float = 0.0


def _as_input(net: FeatureNet, images: np.ndarray) -> Tensor:
    return to_net_input(torch.from_numpy(np.ascontiguousarray(images)), net.channels, net.size)


@torch.no_grad()
def accuracy(net: FeatureNet, images: np.ndarray, labels: np.ndarray, batch: int = 1000) -> float:
    """Share of uint8 images ``[N, C, H, W]`` that ``net`` classifies as ``labels``."""
    net.eval()
    correct = 0
    for start in range(0, len(images), batch):
        logits = net(_as_input(net, images[start : start + batch]))[1]
        correct += int((logits.argmax(1) == torch.from_numpy(labels[start : start + batch])).sum())
    return correct / len(images)


def train_featurenet(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    class_names: list[str],
    trained_on: str,
    epochs: int = 5,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
    shape: tuple[int, int, int] = (1, 28, 16),
) -> TrainedNet:
    """Train a FeatureNet on uint8 ``(images [N, C, H, W], labels [N])``; measure it on ``test``.

    ``shape`` is the net's input (channels, size) and its width; colour nets also learn
    from mirrored images (a mirrored emoji, face or car is still one)."""
    if epochs <= 0:
        raise MetricsError(f"epochs must be positive, got {epochs}")
    start_time = time.perf_counter()
    torch.manual_seed(seed)
    channels, size, width = shape
    net = FeatureNet(len(class_names), width, channels, size)
    images, labels = train
    x_all = _as_input(net, images)  # [N, C, S, S]
    y_all = torch.from_numpy(labels.astype(np.int64))
    steps = epochs * math.ceil(len(x_all) / batch_size)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    bar = tqdm(total=steps, disable=not progress, unit="step", desc=f"training {name}")
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x_all), generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x = _shift(x_all[idx], gen)
            if channels == 3 and bool(torch.rand((), generator=gen) < 0.5):
                x = x.flip(-1)
            loss = F.cross_entropy(net(x)[1], y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    acc = accuracy(net, *test)
    return TrainedNet(
        net.eval(), name, class_names, acc, trained_on, time.perf_counter() - start_time
    )


def _shift(x: Tensor, gen: torch.Generator, pad: int = 2) -> Tensor:
    """Translate a batch ``[B, C, S, S]`` by up to ``pad`` pixels (one random shift per batch)."""
    dx, dy = (int(v) for v in torch.randint(-pad, pad + 1, (2,), generator=gen))
    side = x.shape[-1]
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    return padded[..., pad + dy : pad + dy + side, pad + dx : pad + dx + side]


def save_featurenet(trained: TrainedNet, path: str | Path) -> Path:
    """Write a trained network as a weights-only file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise MetricsError(
            f"folder {path.parent} does not exist; create it or choose another --out"
        )
    state: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "name": trained.name,
        "class_names": trained.class_names,
        "test_accuracy": trained.test_accuracy,
        "trained_on": trained.trained_on,
        "channels": trained.net.channels,
        "size": trained.net.size,
        "width": trained.net.width,
        "state_dict": {k: v.detach().clone() for k, v in trained.net.state_dict().items()},
    }
    torch.save(state, path)
    return path


def is_weights_path(name: str) -> bool:
    """Whether an extractor name is the path of a feature network file, not a shipped name."""
    return name.endswith(".pt")


def shipped_path(name: str) -> Path:
    """The weights file of a network shipped with ganforge."""
    return Path(str(resources.files("ganforge.metrics").joinpath("weights", f"{name}.pt")))


def load_featurenet(path: str | Path) -> TrainedNet:
    """Load a feature network written by :func:`save_featurenet` (weights only, no code)."""
    path = Path(path)
    if not path.is_file():
        raise MetricsError(
            f"feature network weights {path} are missing; train them with "
            "`ganforge featurenet train --data fashion-mnist` (or mnist-sample)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise MetricsError(
            f"{path} is not a readable feature network ({type(exc).__name__})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MetricsError(f"{path} is not a ganforge feature network file")
    # files written before colour nets existed hold grey 28x28 nets of width 16
    net = FeatureNet(
        len(state["class_names"]), int(state.get("width", 16)), int(state.get("channels", 1)),
        int(state.get("size", 28)),
    )  # fmt: skip
    net.load_state_dict(state["state_dict"])
    return TrainedNet(
        net.eval(), state["name"], list(state["class_names"]), float(state["test_accuracy"]),
        state["trained_on"],
    )  # fmt: skip


class FeatureNetExtractor(FeatureExtractor):
    """``mnist-net`` or ``fashion-net`` (shipped), or a FeatureNet file named by its path."""

    def __init__(self, name: str, device: str | torch.device = "cpu") -> None:
        path = Path(name) if is_weights_path(name) else shipped_path(name)
        trained = load_featurenet(path)
        self.name = name
        self.dim = FEATURE_DIM
        self.class_names = trained.class_names
        self.fingerprint = file_fingerprint(path)
        self.test_accuracy = trained.test_accuracy
        self.batch_size = 1000
        self.channels, self.size = trained.net.channels, trained.net.size  # the net's input
        # channels_last and large batches make this small CNN about 3x cheaper on a CPU
        self.net = trained.net.to(device).to(memory_format=torch.channels_last)

    def _forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        x = to_net_input(images, self.channels, self.size).contiguous(
            memory_format=torch.channels_last
        )
        features, logits = self.net(x)
        return features, logits
