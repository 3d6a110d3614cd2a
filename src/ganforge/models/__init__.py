"""Generator and discriminator networks, built by name. Models know no data and no loss.

Every generator takes z ``[B, z_dim]`` (and optional labels) and returns images
``[B, C, H, W]`` in [-1, 1]; it has ``z_dim``, ``image_size``, ``channels`` and
``num_classes`` (0 = unconditional) attributes. Every discriminator takes images
and labels and returns one logit per image, ``[B]``. Class-conditional networks
need the labels. A builder reads a :class:`ModelSpec` only (the training config makes
one with :meth:`ganforge.config.TrainConfig.model_spec`), so models stay free of data,
loss and training code.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ganforge.errors import ConfigError
from ganforge.models.dcgan import SIZES, DCGANDiscriminator, DCGANGenerator
from ganforge.models.init import dcgan_init_
from ganforge.models.layers import spectral_norm_
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator
from ganforge.models.resnet import SIZES as RESNET_SIZES
from ganforge.models.resnet import ResNetDiscriminator, ResNetGenerator
from ganforge.models.spec import ModelSpec

Builder = Callable[[ModelSpec], tuple[nn.Module, nn.Module]]

__all__ = ["GENERATION_BATCH", "IMAGE_SIZES", "MODELS", "ModelSpec", "build_models"]


def _check_size(spec: ModelSpec, sizes: tuple[int, ...]) -> None:
    if spec.image_size not in sizes:
        raise ConfigError(
            f"model {spec.model} supports image_size {', '.join(map(str, sizes))}, "
            f"got {spec.image_size}"
        )


def _mlp(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    size, ch, slope, k = spec.image_size, spec.channels, spec.leaky_slope, spec.num_classes
    g = MLPGenerator(spec.z_dim, spec.g_features, size, ch, slope, k)
    d = MLPDiscriminator(spec.d_features, size, ch, slope, k)
    return g, d


def _dcgan(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    _check_size(spec, SIZES)
    k = spec.num_classes
    g = DCGANGenerator(spec.z_dim, spec.g_features, spec.image_size, spec.channels, k)
    d = DCGANDiscriminator(
        spec.d_features, spec.image_size, spec.channels, spec.leaky_slope, k, spec.minibatch_std
    )
    return g, d


def _resnet(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    _check_size(spec, RESNET_SIZES)
    k = spec.num_classes
    g = ResNetGenerator(spec.z_dim, spec.g_features, spec.image_size, spec.channels, k)
    d = ResNetDiscriminator(spec.d_features, spec.image_size, spec.channels, k)
    return g, d


MODELS: dict[str, Builder] = {"mlp": _mlp, "dcgan": _dcgan, "resnet": _resnet}
# The image sizes each model builds; None: any size.
IMAGE_SIZES: dict[str, tuple[int, ...] | None] = {
    "mlp": None, "dcgan": SIZES, "resnet": RESNET_SIZES,
}  # fmt: skip
# Images a generator draws at once when many are wanted (sampling, scoring, evaluation):
# memory sets it, not the result (in eval mode each image depends on its own latent only).
GENERATION_BATCH = 500
# Models that start from their own initialisation whatever spec.weight_init says.
OWN_INIT = {"resnet"}


def build_models(spec: ModelSpec) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) for ``spec.model``: initialised as ``weight_init`` and ``bn_init`` say,
    spectrally normalised where ``spectral_norm_d`` / ``spectral_norm_g`` ask."""
    if spec.model not in MODELS:
        raise ConfigError(f"unknown model '{spec.model}'; choose one of: {', '.join(MODELS)}")
    if not (spec.channels and spec.image_size):
        raise ConfigError(
            "channels and image_size are 0: set both (a training config chooses them from "
            "its data with ganforge.data.resolve_shape)"
        )
    if spec.minibatch_std and spec.model != "dcgan":
        raise ConfigError(f"minibatch_std is a dcgan option; model {spec.model} has none")
    g, d = MODELS[spec.model](spec)
    if spec.weight_init == "dcgan" and spec.model not in OWN_INIT:
        dcgan_init_(g, spec.bn_init)
        dcgan_init_(d, spec.bn_init)
    if spec.spectral_norm_g:
        spectral_norm_(g)
    if spec.spectral_norm_d:
        spectral_norm_(d)
    return g, d
