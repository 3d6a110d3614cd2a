"""Scoring generators and image sets, and training the feature networks: the API behind
``ganforge eval`` and ``ganforge featurenet train``.

It joins what :mod:`ganforge.metrics` keeps apart: where fake images come from
(a run, a checkpoint, an image folder, an .npz) and which real data they are
compared with (a named dataset or a folder, fitted to the fakes' size).
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganforge import __version__
from ganforge.data import DataSpec, data_name, default_root, load_data
from ganforge.data.folder import list_images, load_folder
from ganforge.data.named import load_named, load_sample
from ganforge.errors import DataError, MetricsError
from ganforge.logging import to_uint8
from ganforge.metrics import EXTRACTORS, RealImages, Scores, evaluate, get_extractor, parse_metrics
from ganforge.metrics.featurenet import TrainedNet, save_featurenet, train_featurenet
from ganforge.sampling import load_generator
from ganforge.training.device import resolve_device
from ganforge.training.run_dir import run_of

MNIST_SAMPLE_TRAIN = (
    8000  # mnist-net trains on the first 8,000 digits of the sample, tests on the rest
)


@dataclass(frozen=True)
class _NetRecipe:
    name: str
    epochs: int


_NET_FOR_DATA = {
    "fashion-mnist": _NetRecipe("fashion-net", 5),
    "mnist-sample": _NetRecipe("mnist-net", 15),
    "mnist": _NetRecipe("mnist-net", 5),
}


def train_feature_net(
    data: str,
    root: str = "",
    epochs: int = 0,
    out: str | Path | None = None,
    seed: int = 0,
    download: bool = True,
    progress: bool = True,
) -> tuple[TrainedNet, Path]:
    """Train the feature network for ``data`` (fashion-mnist, mnist-sample or mnist); save it."""
    if data not in _NET_FOR_DATA:
        raise DataError(f"feature networks train on {', '.join(_NET_FOR_DATA)}, not '{data}'")
    recipe = _NET_FOR_DATA[data]
    if epochs < 0:
        raise MetricsError(f"--epochs must be positive, got {epochs}")
    if data == "mnist-sample":
        sample = load_sample()
        assert sample.labels is not None
        cut = MNIST_SAMPLE_TRAIN
        train = (sample.images[:cut], sample.labels[:cut])
        test = (sample.images[cut:], sample.labels[cut:])
        classes = sample.class_names
        trained_on = (
            f"trained on the bundled MNIST sample's first {cut:,} digits, "
            f"tested on its other {len(sample) - cut:,}"
        )
    else:
        data_root = Path(root) if root else default_root()
        train_set = load_named(data, data_root, "train", download)
        test_set = load_named(data, data_root, "test", download)
        if train_set.labels is None or test_set.labels is None:
            raise DataError(f"{data} has no label files; feature networks need labels")
        train = (train_set.images, train_set.labels)
        test = (test_set.images, test_set.labels)
        classes = train_set.class_names
        trained_on = (
            f"trained on {data} train ({len(train_set):,}), tested on its test split "
            f"({len(test_set):,})"
        )
    trained = train_featurenet(
        recipe.name, train, test, classes, trained_on, epochs or recipe.epochs, seed=seed,
        progress=progress,
    )  # fmt: skip
    return trained, save_featurenet(trained, out or f"{recipe.name}.pt")


@dataclass(frozen=True)
class EvalRequest:
    """What ``ganforge eval`` scores, against what, and how."""

    source: str  # run folder, checkpoint file, image folder or .npz of uint8 images
    metrics: str = "fid,kid,pr,dc"
    samples: int = 10_000
    data: str | None = None  # real data; None: the run's own
    data_root: str = ""
    split: str = "train"
    features: str = "auto"
    inception_weights: str | None = None
    download: bool = True
    batch_size: int = 0  # 0: the extractor's own
    seed: int = 0
    device: str = "cpu"
    progress: bool = True


@dataclass
class EvalReport:
    """Scores with what was scored."""

    scores: Scores
    source: str
    kind: str  # run, checkpoint, folder, npz
    data: str
    split: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values."""
        head = {"source": self.source, "kind": self.kind, "data": self.data, "split": self.split}
        return {**head, **self.scores.to_dict(), "ganforge": __version__}


def _check(request: EvalRequest) -> None:
    if request.samples <= 0:
        raise MetricsError(f"--samples must be positive, got {request.samples}")
    if request.batch_size < 0:
        raise MetricsError(f"--batch-size must not be negative, got {request.batch_size}")
    if request.features not in EXTRACTORS:
        raise MetricsError(
            f"unknown --features '{request.features}'; choose one of {', '.join(EXTRACTORS)}"
        )
    parse_metrics(request.metrics)


def _kind(path: Path) -> str:
    if not path.exists():
        raise MetricsError(
            f"{path} does not exist; give a run folder, a checkpoint, an image folder or an .npz"
        )
    if path.is_file():
        return "npz" if path.suffix == ".npz" else "checkpoint"
    return "run" if (path / "checkpoints" / "last.pt").is_file() else "folder"


def _real(request: EvalRequest, name: str, root: str, shape: tuple[int, int]) -> RealImages:
    """The real images, fitted to the fakes' ``(channels, size)``."""
    spec = DataSpec(
        data=name, root=root, image_size=shape[1], channels=shape[0],
        download=request.download, split=request.split,
    )  # fmt: skip
    resolved = data_name(spec)
    spec = dataclasses.replace(spec, data=resolved)
    data, _ = load_data(spec)
    return RealImages(data.images, resolved, request.split)


def read_npz(path: Path) -> np.ndarray:
    """uint8 images ``[N, C, H, W]`` from an .npz (key ``images``, else its only array)."""
    try:
        with np.load(path) as arrays:
            key = "images" if "images" in arrays.files else arrays.files[0]
            images = np.asarray(arrays[key])
    except (OSError, ValueError, IndexError, zipfile.BadZipFile) as exc:
        raise MetricsError(f"cannot read {path} as .npz ({type(exc).__name__})") from None
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[1] not in (1, 3) and images.shape[-1] in (1, 3):
        images = images.transpose(0, 3, 1, 2)  # [N, H, W, C] -> [N, C, H, W]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise MetricsError(
            f"{path}: expected uint8 images [N, C, H, W] (or [N, H, W], [N, H, W, C]) with "
            f"C = 1 or 3, got {images.dtype} {list(images.shape)}"
        )
    return np.ascontiguousarray(images)


def _folder_shape(path: Path) -> tuple[int, int]:
    """(channels, size) to decode an image folder at: its first image's mode and shorter side."""
    files = list_images(path).files
    if not files:
        raise MetricsError(f"{path} holds no images and no checkpoints/last.pt")
    with Image.open(files[0]) as img:
        channels = 1 if img.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
        return channels, min(img.size)


def _generator_batches(source: str, request: EvalRequest) -> tuple[Iterator[Tensor], Any]:
    """uint8 batches from the generator of a run or checkpoint, and its config."""
    device = resolve_device(request.device)
    G = load_generator(source, device)  # its EMA weights when it has them
    latents = G.latents(request.samples, request.seed)
    labels = G.labels_for(request.samples)  # conditional: every class in turn
    size = request.batch_size or 1000

    def batches() -> Iterator[Tensor]:
        with torch.no_grad():
            for start in range(0, request.samples, size):
                y = None if labels is None else labels[start : start + size].to(device)
                yield to_uint8(G(latents[start : start + size].to(device), y)).cpu()

    return batches(), G


def evaluate_source(request: EvalRequest, out: str | Path | None = None) -> tuple[EvalReport, Path]:
    """Score ``request.source`` against real data; write the JSON report; return it and its path."""
    _check(request)
    path = Path(request.source)
    kind = _kind(path)
    fake: Any
    weights = None
    if kind in ("run", "checkpoint"):
        fake, G = _generator_batches(request.source, request)
        cfg = G.cfg
        weights = G.weights
        name = cfg.data if request.data is None else request.data
        try:
            real = _real(
                request, name, request.data_root or cfg.data_root, (cfg.channels, cfg.image_size)
            )
        except DataError as exc:
            if request.data is not None:
                raise
            raise DataError(
                f"{exc}; if the run's data moved, give its new place: --data PATH"
            ) from None
        default_out = (path if kind == "run" else run_of(path)) / "eval.json"
    else:
        if request.data is None:
            raise MetricsError(
                f"--data is needed to score a {kind}: name the real data to compare with"
            )
        if kind == "npz":
            fake = read_npz(path)
            shape = (int(fake.shape[1]), int(fake.shape[2]))
        else:
            shape = _folder_shape(path)
            fake = load_folder(path, shape[1], shape[0])[0].images
        real = _real(request, request.data, request.data_root, shape)
        default_out = Path("eval.json")
    extractor = get_extractor(
        request.features, dataset=real.name, shape=real.images.shape[1:],
        inception_weights=request.inception_weights, download=request.download,
        device=resolve_device(request.device),
    )  # fmt: skip
    scores = evaluate(
        fake, real, request.metrics, extractor, request.samples,
        batch_size=request.batch_size or None, seed=request.seed, progress=request.progress,
    )  # fmt: skip
    if weights is not None:
        scores.extra["generator_weights"] = weights  # "ema" or "G"
    report = EvalReport(scores, str(path), kind, real.name, request.split)
    return report, _write_json(report, Path(out) if out else default_out)


def _write_json(report: EvalReport, path: Path) -> Path:
    if not path.parent.is_dir():
        raise MetricsError(
            f"folder {path.parent} does not exist; create it or choose another --out"
        )
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return path


_LABELS = {
    "fid": "FID", "kid": "KID", "precision": "precision (k=3)", "recall": "recall (k=3)",
    "density": "density (k=5)", "coverage": "coverage (k=5)", "class_kl": "class KL",
}  # fmt: skip


def format_table(report: EvalReport) -> str:
    """The report as a small text table."""
    s = report.scores
    lines = [
        f"{report.source} ({report.kind}) vs {report.data} {report.split}: "
        f"{s.n_fake:,} fake / {s.n_real:,} real images, features {s.features}",
        f"{'metric':<18} value",
    ]
    for key, value in s.values.items():
        if key == "kid_std":
            continue
        text = f"{value:.5f} +- {s.values['kid_std']:.5f}" if key == "kid" else f"{value:.4f}"
        lines.append(f"{_LABELS.get(key, key):<18} {text}")
    cache = "reused" if s.cache_reused else "computed"
    lines.append(f"{'time':<18} {s.seconds:.1f} s (real features {cache})")
    return "\n".join(lines)
