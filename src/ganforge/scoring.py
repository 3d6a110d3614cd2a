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

from ganforge.data import DataSpec, data_name, default_root, load_data
from ganforge.data.folder import list_images, load_folder
from ganforge.data.named import load_named, load_sample
from ganforge.errors import DataError, MetricsError
from ganforge.grids import to_uint8
from ganforge.metrics import (
    EXTRACTORS,
    FakeOrigin,
    RealImages,
    ScoreCard,
    Scores,
    differences,
    evaluate,
    get_extractor,
    parse_metrics,
    which_fields_change_the_number,
)
from ganforge.metrics.featurenet import TrainedNet, save_featurenet, train_featurenet
from ganforge.metrics.registry import label
from ganforge.models import GENERATION_BATCH
from ganforge.run import checkpoint as ckpt
from ganforge.run.device import resolve_device
from ganforge.run.folder import find_checkpoint, run_of
from ganforge.sampling import load_generator
from ganforge.version import __version__

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
    channels: int = 3,
    size: int = 32,
) -> tuple[TrainedNet, Path]:
    """Train the feature network for ``data`` (fashion-mnist, mnist-sample or mnist, or a
    labelled image folder, seen as ``channels`` x ``size`` x ``size``); save it."""
    if epochs < 0:
        raise MetricsError(f"--epochs must be positive, got {epochs}")
    if data not in _NET_FOR_DATA:
        return _train_folder_net(data, root, epochs, out, seed, progress, channels, size)
    recipe = _NET_FOR_DATA[data]
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


FOLDER_NET_EPOCHS = 40  # a few thousand images: many passes, each cheap at 32x32
FOLDER_NET_TEST = 0.15  # share of each class kept out to measure the net's accuracy


def _train_folder_net(
    folder: str, root: str, epochs: int, out: str | Path | None, seed: int, progress: bool,
    channels: int, size: int,
) -> tuple[TrainedNet, Path]:  # fmt: skip
    """A colour (or grey) feature network for a labelled image folder, one sub-folder per
    class; a fixed share of every class is kept out to test it."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        names = ", ".join(_NET_FOR_DATA)
        raise DataError(
            f"feature networks train on {names} or a labelled image folder; '{folder}' is neither"
        )
    if size % 8 or size < 16:
        raise MetricsError(f"--image-size must be a multiple of 8 from 16 up, got {size}")
    data, _ = load_data(DataSpec(str(path), root, size, channels))
    if data.labels is None or data.num_classes < 2:
        raise DataError(
            f"{path} has no class sub-folders; a feature network learns from labels, so put "
            "each class's images in a sub-folder of its own"
        )
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(data), dtype=bool)
    for k in range(data.num_classes):
        members = np.flatnonzero(data.labels == k)
        n_test = int(round(len(members) * FOLDER_NET_TEST))
        test_mask[rng.choice(members, size=n_test, replace=False)] = True
    train = (data.images[~test_mask], data.labels[~test_mask])
    test = (data.images[test_mask], data.labels[test_mask])
    name = f"{path.name}-net"
    trained_on = (
        f"trained on {len(train[0]):,} images of {path} ({data.num_classes} classes, "
        f"{channels}x{size}x{size}), tested on the other {len(test[0]):,}"
    )
    trained = train_featurenet(
        name, train, test, data.class_names, trained_on, epochs or FOLDER_NET_EPOCHS,
        seed=seed, progress=progress, shape=(channels, size, 32 if channels == 3 else 16),
    )  # fmt: skip
    return trained, save_featurenet(trained, out or f"{name}.pt")


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
    truncation: float | None = None  # latent truncation of a generator; None: untruncated
    ema: bool = True  # a generator's EMA weights when it has them


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
    G = load_generator(source, device, request.ema)  # its EMA weights when asked and there
    latents = G.latents(request.samples, request.seed, request.truncation)
    labels = G.labels_for(request.samples)  # conditional: every class in turn
    size = request.batch_size or GENERATION_BATCH

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
    origin = FakeOrigin(str(path), kind)
    if kind in ("run", "checkpoint"):
        fake, G = _generator_batches(request.source, request)
        cfg = G.cfg
        weights = G.weights
        origin = dataclasses.replace(
            origin, step=_step(path), ema=weights == "ema", truncation=request.truncation,
            latent_seed=request.seed,
        )  # fmt: skip
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
        if request.truncation is not None or not request.ema:
            raise MetricsError(
                f"--truncation and --no-ema apply to a generator; a {kind} holds images"
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
        origin=origin,
    )  # fmt: skip
    if weights is not None:
        scores.extra["generator_weights"] = weights  # "ema" or "G"
    report = EvalReport(scores, str(path), kind, real.name, request.split)
    return report, _write_json(report, Path(out) if out else default_out)


def _step(path: Path) -> int | None:
    """The training step of a run's or checkpoint's generator (None for an export)."""
    if path.suffix == ".safetensors":
        return None
    step = ckpt.load(find_checkpoint(path)).get("position", {}).get("step")
    return int(step) if step is not None else None


def _write_json(report: EvalReport, path: Path) -> Path:
    if not path.parent.is_dir():
        raise MetricsError(
            f"folder {path.parent} does not exist; create it or choose another --out"
        )
    path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return path


def format_table(report: EvalReport) -> str:
    """The report as a small text table."""
    s = report.scores
    lines = [
        f"{report.source} ({report.kind}) vs {report.data} {report.split}: "
        f"{s.n_fake:,} fake / {s.n_real:,} real images, features {s.features}",
        *([s.card.short()] if s.card else []),
        f"{'metric':<18} value",
    ]
    for key, value in s.values.items():
        if key.endswith("_std") and key[: -len("_std")] in s.values:
            continue  # shown beside its mean: KID's spread over its subsets
        spread = s.values.get(f"{key}_std")
        text = f"{value:.4f}" if spread is None else f"{value:.5f} +- {spread:.5f}"
        lines.append(f"{label(key):<18} {text}")
    cache = "reused" if s.cache_reused else "computed"
    lines.append(f"{'time':<18} {s.seconds:.1f} s (real features {cache})")
    return "\n".join(lines)


def read_scores(path: str | Path) -> tuple[dict[str, float], ScoreCard]:
    """The metric values and the card of a score file (``ganforge eval``'s JSON report)."""
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetricsError(f"cannot read {path} as a score file ({type(exc).__name__})") from None
    if not isinstance(report, dict) or not isinstance(report.get("metrics"), dict):
        raise MetricsError(f"{path} is not a score file: give the JSON ganforge eval writes")
    if not isinstance(report.get("card"), dict):
        raise MetricsError(f"{path} has no score card; score it again with ganforge eval")
    return dict(report["metrics"]), ScoreCard.from_dict(report["card"], str(path))


def compare_scores(a: str | Path, b: str | Path) -> str:
    """Both files' scores side by side with how their cards differ; a MetricsError naming the
    fields when the cards differ in one that changes the number."""
    (values_a, card_a), (values_b, card_b) = read_scores(a), read_scores(b)
    diff = differences(card_a, card_b)
    blocking = which_fields_change_the_number(card_a, card_b)
    if blocking:
        named = ", ".join(f"{k} ({diff[k][0]} vs {diff[k][1]})" for k in blocking)
        raise MetricsError(
            f"refusing to compare {a} with {b}: their cards differ in {named}, which changes "
            "the number; score both the same way"
        )
    lines = [f"A: {a} {card_a.short()}", f"B: {b} {card_b.short()}"]
    lines.append(f"{'metric':<18} {'A':>12} {'B':>12} {'B - A':>12}")
    for key in dict.fromkeys([*values_a, *values_b]):
        va, vb = values_a.get(key), values_b.get(key)
        cells = [f"{v:12.5g}" if v is not None else f"{'-':>12}" for v in (va, vb)]
        delta = f"{vb - va:+12.4g}" if va is not None and vb is not None else f"{'-':>12}"
        lines.append(f"{label(key):<18} {cells[0]} {cells[1]} {delta}")
    if diff:
        shown = "; ".join(f"{k} {diff[k][0]} -> {diff[k][1]}" for k in diff)
        lines.append(f"cards differ only where the number does not change: {shown}")
    else:
        lines.append("cards identical")
    return "\n".join(lines)
