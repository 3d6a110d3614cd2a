"""Generator and discriminator networks, built by name. Models know no data and no loss.

Every generator takes z ``[B, z_dim]`` (and optional labels) and returns images
``[B, C, H, W]`` in [-1, 1]; it has ``z_dim``, ``image_size`` and ``channels``
attributes. Every discriminator returns one logit per image, ``[B]``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError
from ganforge.models.dcgan import SIZES, DCGANDiscriminator, DCGANGenerator
from ganforge.models.init import dcgan_init_
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator

Builder = Callable[[TrainConfig], tuple[nn.Module, nn.Module]]


def _mlp(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    g = MLPGenerator(cfg.z_dim, cfg.g_features, cfg.image_size, cfg.channels, cfg.leaky_slope)
    d = MLPDiscriminator(cfg.d_features, cfg.image_size, cfg.channels, cfg.leaky_slope)
    return g, d


def _dcgan(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    if cfg.image_size not in SIZES:
        raise ConfigError(
            f"model dcgan supports image_size {', '.join(map(str, SIZES))}, got {cfg.image_size}"
        )
    g = DCGANGenerator(cfg.z_dim, cfg.g_features, cfg.image_size, cfg.channels)
    d = DCGANDiscriminator(cfg.d_features, cfg.image_size, cfg.channels, cfg.leaky_slope)
    return g, d


MODELS: dict[str, Builder] = {"mlp": _mlp, "dcgan": _dcgan}


def build_models(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) for ``cfg.model``, initialised as ``weight_init`` and ``bn_init`` say."""
    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model '{cfg.model}'; choose one of: {', '.join(MODELS)}")
    g, d = MODELS[cfg.model](cfg)
    if cfg.weight_init == "dcgan":
        dcgan_init_(g, cfg.bn_init)
        dcgan_init_(d, cfg.bn_init)
    return g, d
