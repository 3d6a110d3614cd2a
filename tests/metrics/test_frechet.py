"""Frechet distance: the matrix square root against scipy's, and answers known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from ganforge.metrics.frechet import Gaussian, fid, frechet_distance, sqrtm_psd, trace_sqrt_product


def _spd(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or d))
    return a @ a.T + (1e-3 * np.eye(d) if rank is None else 0.0)


@pytest.mark.parametrize("d", [2, 16, 64])
def test_sqrtm_matches_scipy_on_random_spd(d: int) -> None:
    rng = np.random.default_rng(d)
    for _ in range(3):
        a = _spd(rng, d)
        ours = sqrtm_psd(a)
        np.testing.assert_allclose(ours, np.real(linalg.sqrtm(a)), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(ours @ ours, a, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("d", [3, 64])
def test_trace_term_matches_scipy(d: int) -> None:
    rng = np.random.default_rng(100 + d)
    a, b = _spd(rng, d), _spd(rng, d)
    expected = float(np.trace(np.real(linalg.sqrtm(a @ b))))
    assert trace_sqrt_product(a, b) == pytest.approx(expected, rel=1e-7)


def test_rank_deficient_covariances_give_the_same_trace_as_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = _spd(rng, 50, rank=5), _spd(rng, 50, rank=5)  # as from 6 samples in 50 dimensions
    expected = float(np.trace(np.real(linalg.sqrtm(a @ b))))
    assert trace_sqrt_product(a, b) == pytest.approx(expected, rel=1e-5)
    value = frechet_distance(Gaussian(np.zeros(50), a), Gaussian(np.ones(50), b))
    assert np.isfinite(value) and value > 50  # at least |mu_a - mu_b|^2 = 50 apart


def test_equal_covariances_leave_the_squared_mean_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 8))
    shift = np.array([3.0, 0, 0, 0, 0, 0, 0, 4.0])
    assert fid(x, x) == pytest.approx(0.0, abs=1e-8)
    assert fid(x, x + shift) == pytest.approx(25.0, rel=1e-6)


def test_known_gaussians_closed_form() -> None:
    # N(0, I) vs N(0, 4I) in d dims: d * (1 + 4 - 2 * 2) = d
    d = 10
    value = frechet_distance(Gaussian(np.zeros(d), np.eye(d)), Gaussian(np.zeros(d), 4 * np.eye(d)))
    assert value == pytest.approx(d)


def test_too_few_features_are_refused() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        fid(np.zeros((1, 4)), np.zeros((5, 4)))
