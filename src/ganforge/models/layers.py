"""Layers shared by the models: spectral normalisation, class conditioning, projection.

- :func:`spectral_norm_` divides every weight of a network by its largest
  singular value (Miyato et al. 2018), keeping D 1-Lipschitz per layer.
- :class:`ConditionalBatchNorm2d` gives each class its own BatchNorm gain and bias
  (de Vries et al. 2017), the usual way to condition a ResNet generator.
- :class:`Projection` adds ``<embed(y), h>`` to D's logit (Miyato & Koyama 2018,
  the projection discriminator).
- :class:`FastConvTranspose2d` is ``nn.ConvTranspose2d`` with the same weights and
  math, computed as a matrix product where that is faster (measured, below).
- :class:`MinibatchStd` appends the spread of a feature map across a group of images
  as one more channel (Karras et al. 2018), so D can see a batch that lacks variety.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrizations

_SN_TYPES = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)


def spectral_norm_(module: nn.Module) -> nn.Module:
    """Put spectral normalisation (one power iteration per step) on every conv, linear
    and embedding weight of ``module``, in place; return ``module``."""
    for m in list(module.modules()):
        if isinstance(m, _SN_TYPES) and not parametrizations.parametrize.is_parametrized(m):
            parametrizations.spectral_norm(m)
    return module


def check_labels(labels: Tensor | None, num_classes: int) -> Tensor:
    """The labels a conditional network needs; a clear error when they are missing."""
    if labels is None:
        raise ValueError(f"this network is class-conditional ({num_classes} classes): pass labels")
    return labels


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine, then a gain and a bias looked up per class;
    with ``num_classes`` 0, a plain BatchNorm2d that ignores the labels."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.bn = nn.BatchNorm2d(channels, affine=not num_classes)
        if num_classes:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor | None) -> Tensor:
        if not self.num_classes:
            return self.bn(x)
        labels = check_labels(labels, self.num_classes)
        gain = self.gain(labels)[:, :, None, None]  # [B, C, 1, 1]
        bias = self.bias(labels)[:, :, None, None]
        return self.bn(x) * gain + bias


class Projection(nn.Module):
    """The class term of a projection discriminator: ``<embed(y), h>`` per image ``[B]``."""

    per_image = True

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, h: Tensor, labels: Tensor | None) -> Tensor:
        labels = check_labels(labels, self.num_classes)
        return (self.embed(labels) * h.flatten(1)).sum(1)


class MinibatchStd(nn.Module):
    """``[B, C, H, W]`` -> ``[B, C + 1, H, W]``: the last channel is, for each group of
    ``group`` images (the largest size up to ``group`` that divides the batch), the
    standard deviation across the group of every feature, averaged over features and
    positions. Computed in fp32 whatever the input's precision."""

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        g = next(n for n in range(min(self.group, b), 0, -1) if b % n == 0)
        y = x.float().reshape(g, b // g, c, h, w)
        spread = y.var(dim=0, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3))  # [B / g]
        feature = spread.view(1, b // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(b, 1, h, w)
        return torch.cat([x, feature.to(x.dtype)], dim=1)


# FastConvTranspose2d's matrix product + fold under CPU bf16: for inputs up to this side
FOLD_MAX_SIDE = 4


class FastConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (same parameters, state dict and result up to rounding),
    computed by a faster formulation in two cases measured on the CPU
    (benchmarks/convt_forms.py; docs/BENCHMARKS.md, "Convolutions near the roofline"):

    - from a 1x1 input without padding (a DCGAN generator's first layer): one matrix
      product ``z @ W``, exactly the transposed conv's sum; 34.9 -> 4.0 ms forward and
      backward for seed-dcgan's 100 -> 1024 channels at batch 128 in bf16 on 2 cores;
    - kernel 4, stride 2, padding 1 from an input of at most 4x4 under CPU bf16 autocast:
      a matrix product of every input pixel with the kernel, then ``fold`` adding the
      overlapping 4x4 patches (what the transposed conv computes); 288 -> 198 ms for
      seed-dcgan's 4x4 -> 8x8 layer (1024 -> 512 channels) on 2 cores with AMX, while from
      8x8 and larger inputs the library's kernel is faster.

    Every other case, and groups, dilation or output padding, take the library's kernel.
    """

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        plain = (
            output_size is not None
            or self.groups != 1
            or self.dilation != (1, 1)
            or self.output_padding != (0, 0)
            or x.dim() != 4
        )
        if plain:
            return super().forward(x, output_size)
        b, c, h, w = x.shape
        if h == 1 and w == 1 and self.padding == (0, 0):
            y = (x.flatten(1) @ self._flat_weight(x)).view(b, self.out_channels, *self.kernel_size)
        elif (
            max(h, w) <= FOLD_MAX_SIDE
            and (self.kernel_size, self.stride, self.padding) == ((4, 4), (2, 2), (1, 1))
            and x.device.type == "cpu"
            and torch.is_autocast_enabled("cpu")
        ):
            pixels = x.permute(0, 2, 3, 1).reshape(b * h * w, c)  # free for channels_last
            cols = (pixels @ self._flat_weight(x)).view(b, h * w, -1).transpose(1, 2)
            y = F.fold(cols, (2 * h, 2 * w), 4, stride=2, padding=1)
        else:
            return super().forward(x, output_size)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype).view(1, -1, 1, 1)
        # the layout the library's kernel would give: the model's (its weights' when converted)
        weight = self.weight
        channels_last = weight.is_contiguous(memory_format=torch.channels_last) and not (
            weight.is_contiguous()
        )
        return y.contiguous(
            memory_format=torch.channels_last if channels_last else torch.contiguous_format
        )

    def _flat_weight(self, x: Tensor) -> Tensor:
        """The weight as ``[in, out * kh * kw]``, cast first to autocast's dtype when autocast
        is on: flattening a channels_last weight copies it, and a bf16 copy is half an fp32
        one (autocast would cast the fp32 copy again for the product)."""
        weight = self.weight
        kind = x.device.type
        if torch.is_autocast_enabled(kind):
            weight = weight.to(torch.get_autocast_dtype(kind))
        return weight.flatten(1)
