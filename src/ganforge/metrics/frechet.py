"""Frechet distance between Gaussians fitted to two feature sets (FID on Inception features).

FID = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2)).

The trace of the square root is computed from the symmetric matrix
S_a^(1/2) S_b S_a^(1/2), which has the same eigenvalues as S_a S_b but is
positive semi-definite, so ``eigh`` gives real, non-negative eigenvalues
(rounding errors clipped at zero) where a general ``sqrtm`` of the product
returns complex values with small imaginary parts on near-singular covariances.
The linear algebra runs in float64 through torch, whose thread count ganforge
controls (numpy's BLAS threads spin badly on a busy machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ganforge.metrics.metric import Embedded, Metric


@dataclass(frozen=True)
class Gaussian:
    """Mean ``[D]`` and covariance ``[D, D]`` (float64) of a feature set."""

    mu: np.ndarray
    sigma: np.ndarray


def _f64(array: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(array), dtype=torch.float64)


def gaussian(features: np.ndarray) -> Gaussian:
    """Fit mean and (unbiased) covariance to features ``[N, D]``, N >= 2."""
    x = _f64(features)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need features [N >= 2, D], got shape {tuple(x.shape)}")
    mu = x.mean(dim=0)
    centred = x - mu
    sigma = centred.T @ centred / (x.shape[0] - 1)
    return Gaussian(mu.numpy(), sigma.numpy())


def _sqrtm_psd(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    return _sqrtm_psd(_f64(matrix)).numpy()


def trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """tr((S_a S_b)^(1/2)) for covariances S_a, S_b, via a PSD matrix similar to S_a S_b.

    When S_a = L L^T is positive definite, L^T S_b L has the eigenvalues of S_a S_b
    and needs only a Cholesky factor and eigenvalues (fast for 2048-d features);
    a singular S_a falls back to S_a^(1/2) S_b S_a^(1/2), which needs eigenvectors.
    """
    a, b = _f64(sigma_a), _f64(sigma_b)
    factor, info = torch.linalg.cholesky_ex((a + a.T) / 2)
    root = factor if int(info) == 0 else _sqrtm_psd(a)
    inner = root.T @ b @ root
    values = torch.linalg.eigvalsh((inner + inner.T) / 2)
    return float(values.clamp(min=0).sqrt().sum())


def frechet_distance(a: Gaussian, b: Gaussian) -> float:
    """Frechet distance between two Gaussians (never negative)."""
    diff = a.mu - b.mu
    value = (
        float(diff @ diff)
        + float(np.trace(a.sigma))
        + float(np.trace(b.sigma))
        - 2.0 * trace_sqrt_product(a.sigma, b.sigma)
    )
    return max(value, 0.0)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets ``[N, D]`` and ``[M, D]``."""
    return frechet_distance(gaussian(features_a), gaussian(features_b))


def _fid_values(e: Embedded) -> dict[str, float]:
    return {"fid": fid(e.real, e.fake)}


FID = Metric(
    "fid", {"fid": "FID"}, "Frechet distance of Gaussians fitted to real and fake features",
    _fid_values,
)  # fmt: skip
