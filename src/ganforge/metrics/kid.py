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


@dataclass(frozen=True)
class KID:
    """Mean and standard deviation of the squared MMD over the subsets."""

    mean: float
    std: float


def _f64(array: np.ndarray | Tensor) -> Tensor:
    return torch.as_tensor(array, dtype=torch.float64)


def polynomial_kernel(x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> Tensor:
    """(x.y / D + 1)^3 for every pair of rows: ``[N, D]``, ``[M, D]`` -> ``[N, M]`` (float64)."""
    x, y = _f64(x), _f64(y)
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> float:
    """Unbiased squared MMD between two equal-sized feature sets under the polynomial kernel."""
    m = len(x)
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    within = (k_xx.sum() - k_xx.trace() + k_yy.sum() - k_yy.trace()) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kid(
    features_a: np.ndarray,
    features_b: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KID:
    """KID between feature sets ``[N, D]`` and ``[M, D]``; subsets shrink to the smaller set."""
    a, b = _f64(features_a), _f64(features_b)
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
    return KID(float(values.mean()), float(values.std()))
