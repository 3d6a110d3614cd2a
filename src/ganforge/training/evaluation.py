"""Scoring the generator during training: every ``eval_every`` steps, FID (and the other
metrics asked for) on ``eval_samples`` images, logged as ``eval/<metric>`` scalars to
TensorBoard and metrics.jsonl; the loop keeps ``checkpoints/best.pt`` by FID.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from ganforge.config import TrainConfig
from ganforge.data import ImageData, default_root
from ganforge.data.named import NAMED
from ganforge.errors import ConfigError
from ganforge.logging import RunLogger, info, to_uint8
from ganforge.metrics import RealImages, evaluate, get_extractor, parse_metrics

_BATCH = 500  # images generated and scored at once


def _dataset_name(cfg: TrainConfig) -> str:
    """The data a config trains on; the implicit default resolves as the data loader does."""
    if cfg.data:
        return cfg.data
    root = Path(cfg.data_root) if cfg.data_root else default_root()
    return "mnist" if NAMED["mnist"].locate(root) is not None else "mnist-sample"


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
    """Scores a generator against the training data every ``cfg.eval_every`` steps."""

    def __init__(self, cfg: TrainConfig, data: ImageData, device: torch.device) -> None:
        for key in ("eval_every", "eval_samples"):
            if getattr(cfg, key) <= 0:
                raise ConfigError(f"{key} must be positive to evaluate, got {getattr(cfg, key)}")
        self.every = cfg.eval_every
        self.n = cfg.eval_samples
        self.metrics = parse_metrics(cfg.eval_metrics)
        self.real = RealImages(data.images, _dataset_name(cfg), "train")
        self.extractor = get_extractor(
            cfg.eval_features, dataset=self.real.name, shape=data.images.shape[1:], device=device
        )
        # the same latents at every evaluation, so scores move only with the generator
        self.latents = torch.randn(
            self.n, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 3)
        )
        # conditional generators draw every class equally often
        self.labels = torch.arange(self.n) % cfg.num_classes if cfg.conditional else None
        self.best: float | None = None

    def due(self, step: int) -> bool:
        """Whether ``step`` is an evaluation step."""
        return self.every > 0 and step % self.every == 0

    @torch.no_grad()
    def __call__(self, G: nn.Module, step: int, logger: RunLogger) -> bool:
        """Score ``G`` (in eval mode), log the values; True when its FID is the best so far."""
        if self.best is None:
            self.best = best_fid(logger.run_dir / "metrics.jsonl")
        device = next(G.parameters()).device
        was_training = G.training
        G.eval()
        try:
            batches = (
                to_uint8(G(z.to(device), None if y is None else y.to(device)).float())
                for z, y in zip(
                    self.latents.split(_BATCH),
                    [None] * self.n if self.labels is None else self.labels.split(_BATCH),
                    strict=False,
                )
            )
            scores = evaluate(batches, self.real, self.metrics, self.extractor, self.n)
        finally:
            G.train(was_training)
        values = {f"eval/{k}": v for k, v in scores.values.items()}
        logger.scalars(step, {**values, "eval/seconds": scores.seconds})
        shown = ", ".join(f"{k} {v:.4g}" for k, v in scores.values.items())
        info(f"eval at step {step} ({scores.n_fake} samples, {scores.features}): {shown}")
        fid = scores.values.get("fid")
        if fid is not None and fid < self.best:
            self.best = fid
            return True
        return False
