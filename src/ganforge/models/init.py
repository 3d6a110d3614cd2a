"""Weight initialisation schemes."""

from __future__ import annotations

from torch import nn


def dcgan_init_(module: nn.Module, bn: str = "paper") -> None:
    """Conv weights ~ N(0, 0.02); BatchNorm weights ~ N(1, 0.02) with bias 0 ("paper")
    or ~ N(0, 0.02) with PyTorch's bias ("tutorial", as the tutorial's DCGAN does)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
            if bn == "paper":
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)
            else:
                nn.init.normal_(m.weight, 0.0, 0.02)
