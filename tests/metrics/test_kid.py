"""KID: unbiased (near 0 for two draws of one distribution), positive for different ones."""

from __future__ import annotations

import numpy as np
import pytest

from ganforge.metrics.kid import kid, mmd2_unbiased, polynomial_kernel


def test_kernel_is_the_cubic_polynomial() -> None:
    x = np.array([[1.0, 2.0]])
    y = np.array([[3.0, -1.0]])
    assert polynomial_kernel(x, y)[0, 0] == pytest.approx((1.0 / 2 + 1) ** 3)


def test_two_draws_of_one_distribution_score_near_zero() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1000, 16)), rng.normal(size=(1000, 16))
    result = kid(a, b, subsets=40, subset_size=300)
    # subsets overlap, so their spread (not spread / sqrt(subsets)) bounds the mean's error
    assert abs(result.mean) < result.std
    shifted = kid(a, b + 0.5, subsets=40, subset_size=300)
    assert shifted.mean > 10 * result.std and shifted.mean > 3 * shifted.std


def test_estimator_is_unbiased_where_the_biased_one_is_not() -> None:
    # averaged over many tiny independent draws, the unbiased MMD^2 of equal distributions
    # stays near 0; including the kernel diagonal (the biased V-statistic) would not
    rng = np.random.default_rng(1)
    values = [mmd2_unbiased(rng.normal(size=(10, 4)), rng.normal(size=(10, 4))) for _ in range(400)]
    spread = np.std(values) / np.sqrt(len(values))
    assert abs(np.mean(values)) < 3 * spread
    assert min(values) < 0 < max(values)  # single unbiased estimates straddle zero


def test_subsets_shrink_to_the_smaller_set_and_need_two() -> None:
    rng = np.random.default_rng(2)
    assert np.isfinite(kid(rng.normal(size=(30, 4)), rng.normal(size=(3000, 4))).mean)
    with pytest.raises(ValueError, match="at least 2"):
        kid(np.zeros((1, 4)), np.zeros((10, 4)))
