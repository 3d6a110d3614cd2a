"""evaluate(): score fake images against real ones with any of the metrics.

The fakes come as uint8 batches ``[B, C, H, W]`` from whatever made them: a
callable ``f(count) -> batch`` (a generator being sampled), an iterable of
batches (a folder read in pieces), or one array. The same code therefore scores
a live run, a checkpoint, a folder or an .npz.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ganforge.errors import MetricsError
from ganforge.metrics.cache import RealImages, real_features
from ganforge.metrics.extractors import FeatureExtractor, get_extractor
from ganforge.metrics.metric import Embedded
from ganforge.metrics.provenance import FakeOrigin, ScoreCard, make_card
from ganforge.metrics.registry import METRICS, needing_classifier

Batch = Tensor | np.ndarray
FakeSource = Callable[[int], Batch] | Iterable[Batch] | Batch


@dataclass
class Scores:
    """Metric values and how they were obtained."""

    values: dict[str, float]
    features: str
    n_fake: int
    n_real: int
    seconds: float
    real_cache: str | None = None
    cache_reused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    card: ScoreCard | None = None  # how the values were computed

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-serialisable values."""
        return {
            "metrics": dict(self.values),
            "features": self.features,
            "n_fake": self.n_fake,
            "n_real": self.n_real,
            "seconds": round(self.seconds, 3),
            "real_cache": self.real_cache,
            "cache_reused": self.cache_reused,
            **self.extra,
            **({"card": self.card.to_dict()} if self.card else {}),
        }

    def line(self) -> str:
        """The values and the short card, in one line."""
        shown = ", ".join(f"{k} {v:.4g}" for k, v in self.values.items())
        return f"{shown} {self.card.short()}" if self.card else shown


@contextlib.contextmanager
def fp32_scoring() -> Iterator[None]:
    """Full fp32 arithmetic while scoring: no autocast, and no TF32 matrix products or
    convolutions on CUDA, so scores do not depend on the GPU generation or the training
    precision; the previous settings come back after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def parse_metrics(metrics: str | Sequence[str]) -> list[str]:
    """Metric names from ``"fid,kid"`` or a list; refuse unknown ones."""
    names = [m.strip() for m in (metrics.split(",") if isinstance(metrics, str) else metrics)]
    names = [m for m in names if m]
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise MetricsError(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(METRICS)} (comma-separated)"
        )
    return list(dict.fromkeys(names))


def fake_batches(source: FakeSource, n: int, batch_size: int) -> Iterator[Tensor]:
    """Up to ``n`` fake images from ``source``, as uint8 tensors of at most ``batch_size``."""
    if isinstance(source, (Tensor, np.ndarray)):
        array = torch.as_tensor(source)
        for start in range(0, min(n, len(array)), batch_size):
            yield array[start : min(start + batch_size, n)]
        return
    left = n
    if callable(source):
        while left > 0:
            batch = torch.as_tensor(source(min(batch_size, left)))
            if len(batch) == 0:
                return
            yield batch[:left]
            left -= len(batch)
        return
    for item in source:
        batch = torch.as_tensor(item)[:left]
        for start in range(0, len(batch), batch_size):
            yield batch[start : start + batch_size]
        left -= len(batch)
        if left <= 0:
            return


def extract(
    extractor: FeatureExtractor,
    batches: Iterable[Batch],
    progress: bool = False,
    total: int | None = None,
    desc: str = "features",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Features ``[N, D]`` (and logits ``[N, K]`` or None) of every image in ``batches``."""
    feats: list[Tensor] = []
    logits: list[Tensor] = []
    with tqdm(total=total, disable=not progress, unit="img", desc=desc, leave=False) as bar:
        for batch in batches:
            f, lg = extractor.embed(batch)
            feats.append(f)
            if lg is not None:
                logits.append(lg)
            bar.update(len(f))
    if not feats:
        return np.zeros((0, extractor.dim), np.float32), None
    return torch.cat(feats).numpy(), torch.cat(logits).numpy() if logits else None


def _chunks(images: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size]


def evaluate(
    fake: FakeSource,
    real: RealImages | np.ndarray,
    metrics: str | Sequence[str] = ("fid",),
    features: str | FeatureExtractor = "auto",
    n: int = 10_000,
    *,
    batch_size: int | None = None,
    seed: int = 0,
    cache: bool = True,
    device: str | torch.device = "cpu",
    inception_weights: str | None = None,
    download: bool = True,
    progress: bool = False,
    origin: FakeOrigin | None = None,
) -> Scores:
    """Score up to ``n`` fake images against the real images with the named metrics.

    ``batch_size`` defaults to the extractor's own (1,000 for the domain nets, 50 for
    Inception). FID and KID use the features of every real image (cached); precision/recall
    and density/coverage compare equal numbers of real and fake samples (a
    seeded random subset of the real ones), as their k-NN radii depend on N. ``origin``
    says what made the fakes, for the score card (:attr:`Scores.card`).
    """
    started = time.perf_counter()
    names = parse_metrics(metrics)
    if n <= 0:
        raise MetricsError(f"number of samples must be positive, got {n}")
    real = _real_images(real)
    extractor = (
        features
        if isinstance(features, FeatureExtractor)
        else get_extractor(
            features,
            dataset=real.name,
            shape=real.images.shape[1:],
            inception_weights=inception_weights,
            download=download,
            device=device,
        )  # fmt: skip
    )
    batch_size = batch_size or extractor.batch_size
    _check_classes(names, extractor)
    with fp32_scoring():
        fake_feats, fake_logits = extract(
            extractor, fake_batches(fake, n, batch_size), progress, n, "fake features"
        )
        scores = score_features(
            fake_feats, fake_logits, real, names, extractor,
            batch_size=batch_size, seed=seed, cache=cache, progress=progress, origin=origin,
        )  # fmt: skip
    scores.seconds = time.perf_counter() - started
    return scores


def score_features(
    fake_feats: np.ndarray,
    fake_logits: np.ndarray | None,
    real: RealImages | np.ndarray,
    metrics: str | Sequence[str],
    extractor: FeatureExtractor,
    *,
    batch_size: int | None = None,
    seed: int = 0,
    cache: bool = True,
    progress: bool = False,
    origin: FakeOrigin | None = None,
) -> Scores:
    """The named metrics of fake images already embedded by ``extractor`` (features
    ``[N, D]``, logits ``[N, K]`` or None) against the real images, whose features come
    from the cache or are computed here, with their card. :func:`evaluate` is extraction
    plus this; a distributed evaluation gathers each rank's features and calls this once."""
    started = time.perf_counter()
    names = parse_metrics(metrics)
    real = _real_images(real)
    _check_classes(names, extractor)
    batch_size = batch_size or extractor.batch_size
    if len(fake_feats) < 2:
        raise MetricsError(f"need at least 2 fake images to score, got {len(fake_feats)}")
    with fp32_scoring():
        real_set = real_features(
            real,
            extractor,
            lambda imgs: extract(
                extractor, _chunks(imgs, batch_size), progress, len(imgs), "real features"
            )[0],
            cache,
        )
    # the card names the arithmetic the caller embedded the fakes in (evaluate(): fp32)
    card = make_card(extractor, real, len(fake_feats), len(real_set.features), seed, origin)
    real_feats = real_set.features
    needing = needing_classifier(names)
    if needing and fake_logits is None:
        raise MetricsError(f"metric '{needing[0]}' needs the fake images' class logits")
    embedded = Embedded(fake_feats, fake_logits, real_feats, seed)
    values: dict[str, float] = {}
    for metric in METRICS.values():  # the registry's order, whatever order they were asked in
        if metric.name in names:
            values.update(metric.compute(embedded))
    return Scores(
        values, extractor.name, len(fake_feats), len(real_feats), time.perf_counter() - started,
        str(real_set.path) if real_set.path else None, real_set.reused, card=card,
    )  # fmt: skip


def _real_images(real: RealImages | np.ndarray) -> RealImages:
    if isinstance(real, np.ndarray):
        real = RealImages(real)
    if real.images.dtype != np.uint8 or real.images.ndim != 4 or len(real.images) < 2:
        raise MetricsError(
            f"real images must be uint8 [N >= 2, C, H, W], got {real.images.dtype} "
            f"{list(real.images.shape)}"
        )
    return real


def _check_classes(names: Sequence[str], extractor: FeatureExtractor) -> None:
    needing = needing_classifier(names)
    if needing and not extractor.class_names:
        raise MetricsError(
            f"metric '{needing[0]}' needs a classifier of the data's classes; {extractor.name} "
            "is not one (use --features mnist-net or fashion-net)"
        )
