"""The score card: how a FID, KID, precision/recall or density/coverage was computed.

A score means little without its card: the same generator scores differently
with another extractor, another number of samples, other real images, other
seeds or truncated latents. Every score ganforge prints or writes carries a
:class:`ScoreCard`; two scores may be compared only when their cards agree in
every field of :data:`CHANGES_THE_NUMBER` (see docs/METRICS.md).

The card is built from plain values: this module knows no model and no training;
what made the fake images comes in as a :class:`FakeOrigin`.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.errors import MetricsError
from ganforge.metrics.cache import RealImages
from ganforge.metrics.extractors import FeatureExtractor


@dataclass(frozen=True)
class FakeOrigin:
    """What made the fake images, as plain values from the caller."""

    source: str = ""  # run folder, checkpoint, image folder or .npz; "" when unknown
    kind: str = "images"  # run, checkpoint, folder, npz, training (a live run), images
    step: int | None = None  # the generator's training step, when known
    ema: bool | None = None  # True: the EMA weights; None: not a generator
    truncation: float | None = None  # latent truncation threshold; None: untruncated
    latent_seed: int | None = None  # seed of the latents the generator was sampled from


@dataclass(frozen=True)
class ScoreCard:
    """Everything that decides a score's value, and what it was a score of."""

    # the measurement
    extractor: str
    extractor_hash: str  # hash of its weights file
    resize: str  # "28x28 -> 299x299", or "28x28" when the images are not resized
    resize_filter: str  # the filter of that resize, "none" when there is none
    n_real: int
    n_fake: int
    data: str  # the real data's name (dataset or folder)
    split: str
    data_hash: str  # hash of the real uint8 array (the one keying the features cache)
    seed: int  # seed of KID's subsets and precision/recall's real subset
    precision: str  # arithmetic of sampling and feature extraction: fp32, tf32, bf16, fp16
    device: str
    # what was measured
    source: str
    kind: str
    step: int | None
    ema: bool | None
    truncation: float | None
    latent_seed: int | None
    # by what
    ganforge: str
    torch: str
    numpy: str
    created: str  # UTC, ISO 8601

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "score file") -> ScoreCard:
        """A card from :meth:`to_dict`'s values; refuse one with fields missing."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in values]
        if missing:
            raise MetricsError(
                f"{where}: its score card lacks {', '.join(missing)}; score it again with "
                "this ganforge"
            )
        return cls(**{n: values[n] for n in names})

    def short(self) -> str:
        """The card in one line, to print beside the score."""
        resize = self.resize
        if self.resize_filter != "none":
            resize += f" {self.resize_filter}"
        data = Path(self.data).name or self.data
        split = f" {self.split}" if self.split else ""
        made = [self.kind]
        if self.step is not None:
            made.append(f"step {self.step}")
        if self.ema is not None:
            made.append("ema" if self.ema else "no ema")
        if self.truncation is not None:
            made.append(f"truncation {self.truncation:g}")
        return (
            f"[{self.extractor}#{self.extractor_hash[:8]} {resize} | {self.n_fake:,} fake vs "
            f"{self.n_real:,} real {data}{split}#{self.data_hash[:8]} | {' '.join(made)} | "
            f"{self.precision} {self.device.split(' ')[0]}]"
        )

    def markdown(self) -> str:
        """The card as a two-column markdown table (TensorBoard's text tab renders it)."""
        rows = [f"| {k} | {'' if v is None else v} |" for k, v in self.to_dict().items()]
        return "\n".join(["| field | value |", "| --- | --- |", *rows])


# Fields whose difference changes the number: two scores that differ in one are not
# comparable. Both seeds are among them: at 2,000 samples another subset of the reals
# moved precision by 0.11 and other latents moved FID by 3 (docs/METRICS.md). The other
# fields say what was scored (another step or run is the point of a comparison), where,
# by which software and when; on another device the same fp32 arithmetic differs only in
# rounding order.
CHANGES_THE_NUMBER: tuple[str, ...] = (
    "extractor", "extractor_hash", "resize", "resize_filter", "n_real", "n_fake", "split",
    "data_hash", "seed", "precision", "ema", "truncation", "latent_seed",
)  # fmt: skip


def differences(a: ScoreCard, b: ScoreCard) -> dict[str, tuple[Any, Any]]:
    """Every field in which two cards differ, with both values."""
    da, db = a.to_dict(), b.to_dict()
    return {k: (da[k], db[k]) for k in da if da[k] != db[k]}


def which_fields_change_the_number(a: ScoreCard, b: ScoreCard) -> list[str]:
    """The fields in which two cards differ that make their scores incomparable."""
    return [k for k in differences(a, b) if k in CHANGES_THE_NUMBER]


def scoring_precision(device: torch.device) -> str:
    """The float arithmetic matrix products and convolutions run in on ``device`` now:
    fp32, tf32, or the autocast dtype (bf16, fp16) when autocast is on."""
    if torch.is_autocast_enabled(device.type):
        return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(
            torch.get_autocast_dtype(device.type), str(torch.get_autocast_dtype(device.type))
        )
    if device.type == "cuda" and (
        torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32
    ):
        return "tf32"
    return "fp32"


def describe_device(device: torch.device) -> str:
    """``cpu``, or ``cuda:0 (NVIDIA H200)``: the device with its model where torch knows it."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def describe_resize(extractor: FeatureExtractor, shape: tuple[int, ...]) -> tuple[str, str]:
    """What ``extractor`` does to images of ``[C, H, W]`` ``shape``: the resize and its filter."""
    h, w = int(shape[-2]), int(shape[-1])
    size = extractor.input_size
    if (h, w) == (size, size):
        return f"{h}x{w}", "none"
    return f"{h}x{w} -> {size}x{size}", extractor.resize_filter


def make_card(
    extractor: FeatureExtractor,
    real: RealImages,
    n_fake: int,
    n_real: int,
    seed: int,
    origin: FakeOrigin | None = None,
) -> ScoreCard:
    """The card of a score of ``n_fake`` fakes from ``origin`` against ``real`` in ``extractor``'s
    features, computed now on the extractor's device."""
    from ganforge.version import __version__

    origin = origin or FakeOrigin()
    resize, resize_filter = describe_resize(extractor, real.images.shape[1:])
    device = extractor.device
    return ScoreCard(
        extractor=extractor.name, extractor_hash=extractor.fingerprint, resize=resize,
        resize_filter=resize_filter, n_real=n_real, n_fake=n_fake, data=real.name,
        split=real.split, data_hash=real.fingerprint, seed=seed,
        precision=scoring_precision(device), device=describe_device(device),
        source=origin.source, kind=origin.kind, step=origin.step, ema=origin.ema,
        truncation=origin.truncation, latent_seed=origin.latent_seed,
        ganforge=__version__, torch=torch.__version__, numpy=np.__version__,
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )  # fmt: skip
