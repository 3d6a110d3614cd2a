"""Kernel Inception Distance: unbiased squared MMD with a cubic polynomial kernel, over subsets.

k(x, y) = (x.y / D + 1)^3 (Binkowski et al., "Demystifying MMD GANs", 2018). Each
subset draws ``subset_size`` features from each side without replacement; the
unbiased estimate leaves out the kernel's diagonal, so two draws of one
distribution score 0 on average (single subsets can be slightly negative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ganforge.metrics.metric import Embedded, Metric


@dataclass(frozen=True)
class KIDEstimate:
    """Mean and standard deviation of the squared MMD over the subsets."""

    mean: float
    std: float


def polynomial_kernel(x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> Tensor:
    """(x.y / D + 1)^3 for every pair of rows: ``[N, D]``, ``[M, D]`` -> ``[N, M]`` (float32)."""
    x32 = torch.as_tensor(x, dtype=torch.float32)
    y32 = torch.as_tensor(y, dtype=torch.float32)
    return (x32 @ y32.T).mul_(1.0 / x32.shape[1]).add_(1.0).pow_(3)


def _sums(x: Tensor, y: Tensor) -> tuple[float, float]:
    """Sum of every kernel value and of its diagonal, accumulated in float64."""
    k = polynomial_kernel(x, y)
    return float(k.sum(dtype=torch.float64)), float(k.diagonal().sum(dtype=torch.float64))


def mmd2_unbiased(x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> float:
    """Unbiased squared MMD between two equal-sized feature sets under the polynomial kernel.

    Kernel values are float32 (their rounding is unbiased noise far below KID's
    subset spread); every sum is float64.
    """
    m = len(x)
    xx, xx_diag = _sums(torch.as_tensor(x), torch.as_tensor(x))
    yy, yy_diag = _sums(torch.as_tensor(y), torch.as_tensor(y))
    xy, _ = _sums(torch.as_tensor(x), torch.as_tensor(y))
    return (xx - xx_diag + yy - yy_diag) / (m * (m - 1)) - 2.0 * xy / (m * m)


def kid(
    features_a: np.ndarray,
    features_b: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KIDEstimate:
    """KID between feature sets ``[N, D]`` and ``[M, D]``; subsets shrink to the smaller set."""
    a = torch.as_tensor(features_a, dtype=torch.float32)
    b = torch.as_tensor(features_b, dtype=torch.float32)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 features on each side, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            mmd2_unbiased(
                a[torch.from_numpy(rng.choice(len(a), size, replace=False))],
                b[torch.from_numpy(rng.choice(len(b), size, replace=False))],
            )
            for _ in range(subsets)
        ]
    )
    return KIDEstimate(float(values.mean()), float(values.std()))


def _kid_values(e: Embedded) -> dict[str, float]:
    estimate = kid(e.real, e.fake, seed=e.seed)
    return {"kid": estimate.mean, "kid_std": estimate.std}


KID = Metric(
    "kid", {"kid": "KID", "kid_std": "KID std"},
    "kernel (MMD) distance of real and fake features, mean and spread over 100 subsets",
    _kid_values,
)  # fmt: skip
