"""Precision/recall and density/coverage on point clouds whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.metrics.prdc import density_coverage, knn_radii, precision_recall


def test_exact_answers_on_a_line() -> None:
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [10.0]])
    # k=1: every real ball has radius 1; fake 0.5 is inside the balls of 0 and 1, fake 10 in none
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == 0.5
    assert recall == 1.0  # the fake balls (radius 9.5) hold every real point
    density, coverage = density_coverage(real, fake, k=1)
    assert density == pytest.approx(2 / (1 * 2))
    assert coverage == 0.5  # reals 0 and 1 have a fake within 1; 2 and 3 do not


def test_radii_skip_the_point_itself() -> None:
    x = np.array([[0.0], [1.0], [3.0], [6.0]])
    one, two = knn_radii(torch.as_tensor(x), 1, 2)
    np.testing.assert_allclose(one.numpy(), [1, 1, 2, 3])
    np.testing.assert_allclose(two.numpy(), [3, 2, 3, 5])


def _two_clusters(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.normal(size=(n, 8))
    b = rng.normal(size=(n, 8)) + 50.0
    return np.concatenate([a, b])


def test_identical_sets_are_perfect_and_distant_sets_score_zero() -> None:
    rng = np.random.default_rng(0)
    real = _two_clusters(rng, 300)
    assert precision_recall(real, real) == (1.0, 1.0)
    assert density_coverage(real, real)[1] == 1.0
    far = real + 1000.0
    assert precision_recall(real, far) == (0.0, 0.0)
    assert density_coverage(real, far) == (0.0, 0.0)


def test_a_generator_that_drops_a_mode_keeps_precision_and_loses_recall() -> None:
    rng = np.random.default_rng(1)
    real = _two_clusters(rng, 1500)  # 3,000 points in two modes
    fake = rng.normal(size=(3000, 8))  # all in the first mode
    precision, recall = precision_recall(real, fake)
    density, coverage = density_coverage(real, fake)
    assert precision > 0.85  # as high as for a second draw of that mode itself
    assert 0.4 < recall < 0.55
    assert 0.4 < coverage < 0.55
    assert 0.8 < density < 1.2  # the fakes are as dense as the reals in the mode they cover
