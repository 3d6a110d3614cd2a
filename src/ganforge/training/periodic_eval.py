"""Scoring the generator during training: every ``eval_every`` steps, FID (and the other
metrics asked for) on ``eval_samples`` images, logged as ``eval/<metric>`` scalars to
TensorBoard and metrics.jsonl with the score card (``eval/card``: a JSON object in the
same metrics.jsonl line, a text summary in TensorBoard, its short form on the console);
the loop keeps ``checkpoints/best.pt`` by FID.

Under torchrun every rank samples and embeds its own share of the fixed latents; rank 0
gathers the features and scores them, so the figures equal a one-process evaluation.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganforge import seeds
from ganforge.console import info
from ganforge.data import ImageData
from ganforge.errors import ConfigError
from ganforge.grids import to_uint8
from ganforge.metrics import (
    FakeOrigin,
    RealImages,
    Scores,
    extract,
    fp32_scoring,
    get_extractor,
    parse_metrics,
    score_features,
)
from ganforge.metrics.registry import needing_classifier
from ganforge.models import GENERATION_BATCH
from ganforge.training import distributed
from ganforge.training.distributed import World
from ganforge.training.run_log import RunLogger


def best_fid(metrics_file: Path) -> float:
    """The lowest ``eval/fid`` logged in a run's metrics.jsonl so far (inf when none)."""
    best = math.inf
    if metrics_file.is_file():
        for line in metrics_file.read_text().splitlines():
            try:
                value = json.loads(line).get("eval/fid")
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
            if isinstance(value, (int, float)):
                best = min(best, float(value))
    return best


@dataclass(frozen=True)
class EvalSpec:
    """What evaluation during training reads of the run's config (see
    :func:`ganforge.training.build.eval_spec`)."""

    every: int  # steps between evaluations
    samples: int  # generated images scored each time
    metrics: str  # comma-separated metric names (ganforge.metrics.registry)
    features: str  # auto | an extractor's name | PATH.pt
    data_name: str  # the dataset's name or path: picks the extractor for "auto", names the cache
    z_dim: int
    num_classes: int = 0  # conditional generators: every class drawn equally often; 0: none
    seed: int = 0  # the run's seed: the latents come from its evaluation stream
    ema: bool = False  # whether the scored generator is the EMA of G (for the score card)


class PeriodicEval:
    """Scores a generator against the training data every ``spec.every`` steps.

    Every rank builds one and calls it at the same steps; only rank 0 logs and learns
    whether the score is the best so far."""

    def __init__(
        self, spec: EvalSpec, data: ImageData, device: torch.device, world: World | None = None
    ) -> None:
        for key, value in (("eval_every", spec.every), ("eval_samples", spec.samples)):
            if value <= 0:
                raise ConfigError(f"{key} must be positive to evaluate, got {value}")
        self.every, self.n, self.ema = spec.every, spec.samples, spec.ema
        self.latent_seed = seeds.stream(spec.seed, seeds.EVAL)
        self.world = world = world or World()
        self.metrics = parse_metrics(spec.metrics)
        self.real = RealImages(data.images, spec.data_name, "train")
        self.extractor = get_extractor(
            spec.features, dataset=self.real.name, shape=data.images.shape[1:], device=device
        )
        needing = needing_classifier(self.metrics)
        if needing and not self.extractor.class_names:
            raise ConfigError(
                f"eval metric '{needing[0]}' needs a classifier of the data's classes; "
                f"{self.extractor.name} is not one (set eval_features to mnist-net or fashion-net)"
            )
        # the same latents at every evaluation, so scores move only with the generator;
        # each rank draws the full set and samples its own share of it
        share = distributed.shard(self.n, world)
        self.latents = torch.randn(
            self.n, spec.z_dim, generator=torch.Generator().manual_seed(self.latent_seed)
        )[share]
        # conditional generators draw every class equally often
        k = spec.num_classes
        self.labels = (torch.arange(self.n) % k)[share] if k else None
        self.best: float | None = None

    def due(self, step: int) -> bool:
        """Whether ``step`` is an evaluation step."""
        return self.every > 0 and step % self.every == 0

    @torch.no_grad()
    def scores(self, G: nn.Module, origin: FakeOrigin | None = None) -> Scores | None:
        """Scores of ``G`` (sampled in eval mode, with rank 0's BatchNorm statistics, in fp32)
        on rank 0, with their card (``origin`` says which generator it is); None on the
        other ranks."""
        started = time.perf_counter()
        device = next(G.parameters()).device
        distributed.broadcast_buffers(G, self.world)
        was_training = G.training
        G.eval()
        try:
            with fp32_scoring():
                feats, logits = extract(self.extractor, self._batches(G, device))
        finally:
            G.train(was_training)
        all_feats, all_logits = distributed.gather_arrays([feats, logits], self.world)
        if not self.world.is_main:
            return None
        assert all_feats is not None
        with fp32_scoring():  # the card names the arithmetic the fakes were embedded in
            scores = score_features(
                all_feats, all_logits, self.real, self.metrics, self.extractor, origin=origin
            )
        scores.seconds = time.perf_counter() - started
        return scores

    def _batches(self, G: nn.Module, device: torch.device) -> Iterator[torch.Tensor]:
        """``G``'s uint8 images ``[B, C, H, W]`` of this rank's share of the fixed latents."""
        size = GENERATION_BATCH
        labels = [None] * len(self.latents) if self.labels is None else self.labels.split(size)
        for z, y in zip(self.latents.split(size), labels, strict=False):
            yield to_uint8(G(z.to(device), None if y is None else y.to(device)).float())

    def __call__(self, G: nn.Module, step: int, logger: RunLogger) -> bool:
        """Score ``G``, log the values with their card; True (on rank 0) when its FID is the
        best so far."""
        if self.best is None:
            self.best = best_fid(logger.run_dir / "metrics.jsonl")
        origin = FakeOrigin(
            str(logger.run_dir), "training", step, self.ema, latent_seed=self.latent_seed
        )
        scores = self.scores(G, origin)
        if scores is None:
            return False
        assert scores.card is not None
        values = {f"eval/{k}": v for k, v in scores.values.items()}
        ranks = f" on {self.world.size} ranks" if self.world.enabled else ""
        line = f"eval at step {step} ({scores.n_fake} samples{ranks}): {scores.line()}"
        logger.record(
            step, {**values, "eval/seconds": scores.seconds},
            fields={"eval/card": scores.card.to_dict()},
            texts={"eval/card": f"{line}\n\n{scores.card.markdown()}"},
        )  # fmt: skip
        info(line)
        fid = scores.values.get("fid")
        if fid is not None and fid < self.best:
            self.best = fid
            return True
        return False
