"""ModelSpec: the few settings a model builder reads, and nothing of data, loss or training."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """What :func:`ganforge.models.build_models` needs to build a G and a D.

    The widths mean what each model makes of them: for ``mlp`` the hidden units of G and
    of D; for ``dcgan`` G's last hidden feature map has ``2 * g_features`` channels
    (doubling towards z) and D's first has ``d_features`` (doubling towards the logit);
    for ``resnet`` the channels of every residual block.
    """

    model: str = "dcgan"
    image_size: int = 64  # square side in pixels
    channels: int = 1  # 1 grey, 3 RGB
    z_dim: int = 100
    g_features: int = 64
    d_features: int = 64
    num_classes: int = 0  # classes G and D condition on; 0: unconditional
    leaky_slope: float = 0.2  # mlp and dcgan
    weight_init: str = "dcgan"  # dcgan: conv weights ~ N(0, 0.02) | default: PyTorch's
    bn_init: str = "paper"  # paper: BN weight ~ N(1, 0.02) | tutorial: N(0, 0.02)
    spectral_norm_g: bool = False
    spectral_norm_d: bool = False
    minibatch_std: int = 0  # dcgan D: group size of the minibatch-std channel; 0: none
