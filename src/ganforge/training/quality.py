"""The loop's quality options (issue 6) built from the config: EMA, augmentation, classes."""

from __future__ import annotations

import dataclasses

from torch import nn

from ganforge.augment import Augment
from ganforge.config import TrainConfig
from ganforge.data import ImageData
from ganforge.errors import ConfigError
from ganforge.training.ema import EMA


def with_classes(cfg: TrainConfig, data: ImageData) -> TrainConfig:
    """``cfg`` with ``num_classes`` taken from the data when ``conditional`` is on."""
    if not cfg.conditional:
        return cfg
    if data.labels is None or data.num_classes < 2:
        raise ConfigError(
            "conditional = true needs labelled data (a named dataset, or an image folder with "
            "one sub-folder per class); these images have no labels"
        )
    if cfg.num_classes not in (0, data.num_classes):
        raise ConfigError(
            f"num_classes is {cfg.num_classes} but the data has {data.num_classes} classes; "
            "leave num_classes at 0 to take it from the data"
        )
    return dataclasses.replace(cfg, num_classes=data.num_classes)


def make_ema(cfg: TrainConfig, G: nn.Module) -> EMA | None:
    """The EMA of G that ``cfg.ema_decay`` asks for, or None when it is 0."""
    return EMA(G, cfg.ema_decay, cfg.ema_rampup) if cfg.ema_decay > 0 else None


def make_augment(cfg: TrainConfig) -> Augment | None:
    """D's input augmentation that ``cfg.augment`` asks for, or None when it is empty."""
    if not cfg.augment:
        return None
    return Augment(
        cfg.augment, cfg.augment_p, cfg.augment_target, cfg.augment_interval,
        cfg.augment_kimg * 1000,
    )  # fmt: skip
