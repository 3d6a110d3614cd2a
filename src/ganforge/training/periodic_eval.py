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
from pathlib import Path

import torch
from torch import nn

from ganforge import seeds
from ganforge.config import TrainConfig
from ganforge.console import info
from ganforge.data import DataSpec, ImageData, data_name
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
from ganforge.training import distributed
from ganforge.training.distributed import World
from ganforge.training.run_log import RunLogger

_BATCH = 500  # images generated and scored at once


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


class PeriodicEval:
    """Scores a generator against the training data every ``cfg.eval_every`` steps.

    Every rank builds one and calls it at the same steps; only rank 0 logs and learns
    whether the score is the best so far."""

    def __init__(
        self, cfg: TrainConfig, data: ImageData, device: torch.device, world: World | None = None
    ) -> None:
        for key in ("eval_every", "eval_samples"):
            if getattr(cfg, key) <= 0:
                raise ConfigError(f"{key} must be positive to evaluate, got {getattr(cfg, key)}")
        self.every = cfg.eval_every
        self.n = cfg.eval_samples
        # the loop scores the EMA generator when there is one (Trainer.evaluate)
        self.ema = cfg.ema_decay > 0
        self.latent_seed = seeds.stream(cfg.seed, seeds.EVAL)
        self.world = world = world or World()
        self.metrics = parse_metrics(cfg.eval_metrics)
        self.real = RealImages(data.images, data_name(DataSpec(cfg.data, cfg.data_root)), "train")
        self.extractor = get_extractor(
            cfg.eval_features, dataset=self.real.name, shape=data.images.shape[1:], device=device
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
            self.n, cfg.z_dim, generator=torch.Generator().manual_seed(self.latent_seed)
        )[share]
        # conditional generators draw every class equally often
        self.labels = (torch.arange(self.n) % cfg.num_classes)[share] if cfg.conditional else None
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
        labels = [None] * len(self.latents) if self.labels is None else self.labels.split(_BATCH)
        for z, y in zip(self.latents.split(_BATCH), labels, strict=False):
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
