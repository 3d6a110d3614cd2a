"""Generator and discriminator networks, built by name. Models know no data and no loss.

Every generator takes z ``[B, z_dim]`` (and optional labels) and returns images
``[B, C, H, W]`` in [-1, 1]; it has ``z_dim``, ``image_size``, ``channels`` and
``num_classes`` (0 = unconditional) attributes. Every discriminator takes images
and labels and returns one logit per image, ``[B]``. Class-conditional networks
need the labels; the class count comes from ``cfg.num_classes`` (the training loop
fills it from the data), so models stay free of data code.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError
from ganforge.models.dcgan import SIZES, DCGANDiscriminator, DCGANGenerator
from ganforge.models.init import dcgan_init_
from ganforge.models.layers import spectral_norm_
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator
from ganforge.models.resnet import SIZES as RESNET_SIZES
from ganforge.models.resnet import ResNetDiscriminator, ResNetGenerator

Builder = Callable[[TrainConfig], tuple[nn.Module, nn.Module]]


def _classes(cfg: TrainConfig) -> int:
    """The class count the networks condition on: 0 unless ``cfg.conditional``."""
    if not cfg.conditional:
        return 0
    if cfg.num_classes < 2:
        raise ConfigError(
            "conditional = true needs num_classes >= 2: train on labelled data (the loop fills "
            "it in) or set num_classes"
        )
    return cfg.num_classes


def _check_size(cfg: TrainConfig, sizes: tuple[int, ...]) -> None:
    if cfg.image_size not in sizes:
        raise ConfigError(
            f"model {cfg.model} supports image_size {', '.join(map(str, sizes))}, "
            f"got {cfg.image_size}"
        )


def _mlp(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    k = _classes(cfg)
    g = MLPGenerator(cfg.z_dim, cfg.g_features, cfg.image_size, cfg.channels, cfg.leaky_slope, k)
    d = MLPDiscriminator(cfg.d_features, cfg.image_size, cfg.channels, cfg.leaky_slope, k)
    return g, d


def _dcgan(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    _check_size(cfg, SIZES)
    k = _classes(cfg)
    g = DCGANGenerator(cfg.z_dim, cfg.g_features, cfg.image_size, cfg.channels, k)
    d = DCGANDiscriminator(cfg.d_features, cfg.image_size, cfg.channels, cfg.leaky_slope, k)
    return g, d


def _resnet(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    _check_size(cfg, RESNET_SIZES)
    k = _classes(cfg)
    g = ResNetGenerator(cfg.z_dim, cfg.g_features, cfg.image_size, cfg.channels, k)
    d = ResNetDiscriminator(cfg.d_features, cfg.image_size, cfg.channels, k)
    return g, d


MODELS: dict[str, Builder] = {"mlp": _mlp, "dcgan": _dcgan, "resnet": _resnet}
# The image sizes each model builds; None: any size.
IMAGE_SIZES: dict[str, tuple[int, ...] | None] = {
    "mlp": None, "dcgan": SIZES, "resnet": RESNET_SIZES,
}  # fmt: skip
# Models that start from their own initialisation whatever cfg.weight_init says.
OWN_INIT = {"resnet"}


def build_models(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) for ``cfg.model``: initialised as ``weight_init`` and ``bn_init`` say,
    spectrally normalised where ``spectral_norm_d`` / ``spectral_norm_g`` ask."""
    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model '{cfg.model}'; choose one of: {', '.join(MODELS)}")
    if not (cfg.channels and cfg.image_size):
        raise ConfigError(
            "channels and image_size are 0 (from the data): choose them first with "
            "ganforge.data.resolve_shape(cfg), or set both"
        )
    g, d = MODELS[cfg.model](cfg)
    if cfg.weight_init == "dcgan" and cfg.model not in OWN_INIT:
        dcgan_init_(g, cfg.bn_init)
        dcgan_init_(d, cfg.bn_init)
    if cfg.spectral_norm_g:
        spectral_norm_(g)
    if cfg.spectral_norm_d:
        spectral_norm_(d)
    return g, d
