"""The memorisation measure: ~1 for new real images, ~0 for copies of training images."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from ganforge.errors import MetricsError
from ganforge.metrics import FeatureExtractor
from ganforge.metrics.memorisation import memorisation, memorisation_report, nearest_distances


def _split(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2,000 training digits, 500 held out and 500 others (all real, all distinct)."""
    return digits[:2000], digits[2000:2500], digits[2500:3000]


def test_new_real_images_score_about_one(digits: np.ndarray) -> None:
    train, heldout, new = _split(digits)
    result = memorisation(train, heldout, new)
    assert result.space == "pixels" and (result.n_train, result.n_heldout) == (2000, 500)
    assert 0.9 < result.ratio < 1.1
    assert result.sample_distance > 1.0  # distinct digits lie far apart in pixels


def test_copies_of_training_images_score_about_zero(digits: np.ndarray) -> None:
    train, heldout, _ = _split(digits)
    copies = train[np.random.default_rng(0).permutation(len(train))[:500]]
    assert memorisation(train, heldout, copies).ratio < 0.01  # 0 but for rounding in cdist
    # copies with a little noise (as a generator draws them) are still far under 1
    noise = np.random.default_rng(1).integers(-8, 9, copies.shape)
    noisy = np.clip(copies.astype(np.int16) + noise, 0, 255)
    assert memorisation(train, heldout, noisy.astype(np.uint8)).ratio < 0.3


def test_the_ratio_falls_as_the_share_of_copies_grows(digits: np.ndarray) -> None:
    train, heldout, new = _split(digits)
    ratios = [
        memorisation(train, heldout, np.concatenate([train[:k], new[: 500 - k]])).ratio
        for k in (0, 100, 200, 300)
    ]
    assert ratios == sorted(ratios, reverse=True)
    assert ratios[1] > 0.6  # 20% copies: the median is still a new image
    assert ratios[3] < 0.01  # 60% copies: the median sample is a copy


def test_feature_space_beside_pixels(digits: np.ndarray, mnist_net: FeatureExtractor) -> None:
    train, heldout, new = _split(digits)
    report = memorisation_report(train, heldout, new, mnist_net)
    assert set(report) == {"pixels", "mnist-net"}
    assert 0.85 < report["mnist-net"].ratio < 1.15
    shifted = np.roll(train[:500], 1, axis=-1)  # copies moved by one pixel
    report = memorisation_report(train, heldout, shifted, mnist_net)
    # pixels miss copies moved by a pixel (0.98 measured); the features see them (0.73)
    assert report["pixels"].ratio > 0.9
    assert report["mnist-net"].ratio < report["pixels"].ratio - 0.15


def test_nearest_distances_match_the_full_matrix() -> None:
    gen = torch.Generator().manual_seed(0)
    q, r = torch.randn(1100, 7, generator=gen), torch.randn(300, 7, generator=gen)
    expected = torch.cdist(q, r).min(dim=1).values
    torch.testing.assert_close(nearest_distances(q, r, chunk=256), expected)


def test_shapes_must_match() -> None:
    with pytest.raises(MetricsError, match="compare images of one shape"):
        nearest_distances(np.zeros((2, 1, 28, 28), np.uint8), np.zeros((2, 3, 28, 28), np.uint8))


def test_1000_samples_against_3400_rgb_images_take_seconds() -> None:
    gen = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (3400, 3, 64, 64), dtype=torch.uint8, generator=gen)
    samples = torch.randint(0, 256, (1000, 3, 64, 64), dtype=torch.uint8, generator=gen)
    start = time.perf_counter()
    nearest_distances(samples, train)
    # about 3 s on one core (5,000 samples: 16 s; docs/BENCHMARKS.md)
    assert time.perf_counter() - start < 20
