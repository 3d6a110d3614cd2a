"""k-nearest-neighbour metrics of fidelity and diversity on feature sets.

- Improved precision and recall (Kynkaanniemi et al., 2019), k = 3: precision is
  the share of fake samples inside the real manifold (the union of balls around
  each real sample reaching its k-th nearest real neighbour); recall is the
  share of real samples inside the fake manifold, built the same way.
- Density and coverage (Naeem et al., 2020), k = 5: density counts how many real
  balls hold each fake sample, divided by k (1 on average for matching
  distributions); coverage is the share of real samples whose ball holds at
  least one fake sample.

As metrics (``pr`` and ``dc``) they compare equal numbers of real and fake samples
(a seeded random subset of the real ones), as the k-NN radii depend on N; when both
are asked for, the k-NN work is done once.

Distances are computed in row blocks, so 10,000 x 10,000 pairs never sit in
memory at once, and each of the three distance matrices (real-real, fake-fake,
real-fake) is computed once for all four values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import MetricsError
from ganforge.metrics.metric import Embedded, Metric

Features = np.ndarray | Tensor
_BLOCK = 1024  # rows per distance block: 1024 x 10,000 float32 is 40 MB


@dataclass(frozen=True)
class PRDC:
    """Precision and recall (k = 3), density and coverage (k = 5)."""

    precision: float
    recall: float
    density: float
    coverage: float


def _blocks(x: Tensor, y: Tensor) -> Iterator[tuple[slice, Tensor]]:
    """Row slices of ``x`` and their distances to every row of ``y``, ``[b, M]``."""
    for start in range(0, len(x), _BLOCK):
        rows = slice(start, start + _BLOCK)
        yield rows, torch.cdist(x[rows], y)


def knn_radii(x: Tensor, *ks: int) -> list[Tensor]:
    """For each k, the distance from each row of ``x`` ``[N, D]`` to its k-th nearest other row."""
    top = max(ks)
    if len(x) <= top:
        raise ValueError(f"k-NN radii with k={top} need more than {top} samples, got {len(x)}")
    # the k+1 smallest distances of each row: the smallest is the row itself (0)
    nearest = torch.cat([d.topk(top + 1, dim=1, largest=False).values for _, d in _blocks(x, x)])
    return [nearest[:, k] for k in ks]


def _as_tensor(features: Features) -> Tensor:
    return torch.as_tensor(features, dtype=torch.float32)


def prdc(real: Features, fake: Features, k_pr: int = 3, k_dc: int = 5) -> PRDC:
    """All four k-NN metrics of fake features ``[M, D]`` against real features ``[N, D]``."""
    r, f = _as_tensor(real), _as_tensor(fake)
    real_pr, real_dc = knn_radii(r, k_pr, k_dc)
    (fake_pr,) = knn_radii(f, k_pr)
    fake_in_real = torch.zeros(len(f), dtype=torch.bool)  # precision
    balls_per_fake = torch.zeros(len(f))  # density
    real_in_fake = torch.zeros(len(r), dtype=torch.bool)  # recall
    covered = torch.zeros(len(r), dtype=torch.bool)  # coverage
    for rows, d in _blocks(r, f):  # d: [b, M], real rows x fake columns
        fake_in_real |= (d <= real_pr[rows, None]).any(dim=0)
        balls_per_fake += (d <= real_dc[rows, None]).sum(dim=0)
        real_in_fake[rows] = (d <= fake_pr[None]).any(dim=1)
        covered[rows] = d.min(dim=1).values <= real_dc[rows]
    return PRDC(
        precision=float(fake_in_real.float().mean()),
        recall=float(real_in_fake.float().mean()),
        density=float(balls_per_fake.sum() / (k_dc * len(f))),
        coverage=float(covered.float().mean()),
    )


def precision_recall(real: Features, fake: Features, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall of fake against real features ``[N, D]``, ``[M, D]``."""
    result = prdc(real, fake, k_pr=k, k_dc=k)
    return result.precision, result.recall


def density_coverage(real: Features, fake: Features, k: int = 5) -> tuple[float, float]:
    """Density and coverage of fake against real features ``[N, D]``, ``[M, D]``."""
    result = prdc(real, fake, k_pr=k, k_dc=k)
    return result.density, result.coverage


_K_MAX = 5  # the larger k: both sides need more samples than this


def _knn(e: Embedded) -> PRDC:
    """All four k-NN values on equal numbers of real and fake samples: the first fakes
    and a random subset of the reals (by ``e.seed``)."""
    rng = np.random.default_rng(e.seed)
    count = min(len(e.real), len(e.fake))
    if count <= _K_MAX:
        raise MetricsError(
            "precision/recall and density/coverage need more than "
            f"{_K_MAX} images on each side, got {count}"
        )
    real_sub = e.real[rng.choice(len(e.real), count, replace=False)]
    return prdc(real_sub, e.fake[:count])


def _pr_values(e: Embedded) -> dict[str, float]:
    knn = e.shared("prdc", _knn)
    return {"precision": knn.precision, "recall": knn.recall}


def _dc_values(e: Embedded) -> dict[str, float]:
    knn = e.shared("prdc", _knn)
    return {"density": knn.density, "coverage": knn.coverage}


PRECISION_RECALL = Metric(
    "pr", {"precision": "precision (k=3)", "recall": "recall (k=3)"},
    "improved precision (fidelity) and recall (diversity), k = 3", _pr_values,
)  # fmt: skip
DENSITY_COVERAGE = Metric(
    "dc", {"density": "density (k=5)", "coverage": "coverage (k=5)"},
    "density (fidelity) and coverage (diversity), k = 5", _dc_values,
)  # fmt: skip
