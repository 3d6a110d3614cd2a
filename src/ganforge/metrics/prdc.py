"""k-nearest-neighbour metrics of fidelity and diversity on feature sets.

- Improved precision and recall (Kynkaanniemi et al., 2019), k = 3: precision is
  the share of fake samples inside the real manifold (the union of balls around
  each real sample reaching its k-th nearest real neighbour); recall is the
  share of real samples inside the fake manifold, built the same way.
- Density and coverage (Naeem et al., 2020), k = 5: density counts how many real
  balls hold each fake sample, divided by k (1 on average for matching
  distributions, more when fakes crowd around real modes); coverage is the
  share of real samples whose ball holds at least one fake sample.

Distances are computed in row blocks so 10,000 x 10,000 pairs never sit in
memory at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

Features = np.ndarray | Tensor

_BLOCK = 1024  # rows per distance block: 1024 x 10,000 float32 is 40 MB


def _blocks(x: Tensor, y: Tensor, reduce: Callable[[Tensor, slice], Tensor]) -> Tensor:
    """Apply ``reduce(distances [b, M], rows)`` to each row block of cdist(x, y); concatenate."""
    parts = []
    for start in range(0, len(x), _BLOCK):
        rows = slice(start, start + _BLOCK)
        parts.append(reduce(torch.cdist(x[rows], y), rows))
    return torch.cat(parts)


def knn_radii(x: Tensor, k: int) -> Tensor:
    """Distance from each row of ``x`` ``[N, D]`` to its k-th nearest other row, ``[N]``."""
    if len(x) <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} samples, got {len(x)}")
    # the k+1-th smallest distance: the smallest is the sample itself (0)
    return _blocks(x, x, lambda d, _: d.kthvalue(k + 1, dim=1).values)


def _count_inside(points: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    """For each point, how many balls (centres ``[M, D]``, radii ``[M]``) hold it, ``[N]``."""
    return _blocks(points, centres, lambda d, _: (d <= radii[None]).sum(dim=1))


def _covered(centres: Tensor, radii: Tensor, points: Tensor) -> Tensor:
    """For each ball, whether its nearest point lies inside it, ``[M]`` bool."""
    return _blocks(centres, points, lambda d, rows: d.min(dim=1).values <= radii[rows])


def _as_tensor(features: Features) -> Tensor:
    return torch.as_tensor(features, dtype=torch.float32)


def precision_recall(real: Features, fake: Features, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall of fake against real features ``[N, D]``, ``[M, D]``."""
    r, f = _as_tensor(real), _as_tensor(fake)
    precision = (_count_inside(f, r, knn_radii(r, k)) > 0).float().mean()
    recall = (_count_inside(r, f, knn_radii(f, k)) > 0).float().mean()
    return float(precision), float(recall)


def density_coverage(real: Features, fake: Features, k: int = 5) -> tuple[float, float]:
    """Density and coverage of fake features against real features ``[N, D]``, ``[M, D]``."""
    r, f = _as_tensor(real), _as_tensor(fake)
    radii = knn_radii(r, k)
    density = _count_inside(f, r, radii).float().sum() / (k * len(f))
    coverage = _covered(r, radii, f).float().mean()
    return float(density), float(coverage)
