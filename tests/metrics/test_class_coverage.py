"""Class coverage: KL of the predicted class histogram from uniform."""

from __future__ import annotations

import numpy as np
import pytest

from ganforge.metrics.class_coverage import class_histogram, class_kl


def _logits_for(classes: list[int], k: int = 10) -> np.ndarray:
    return np.eye(k)[classes] * 5.0


def test_balanced_predictions_score_zero_and_one_class_log_k() -> None:
    assert class_kl(_logits_for(list(range(10)) * 3)) == pytest.approx(0.0)
    assert class_kl(_logits_for([4] * 30)) == pytest.approx(np.log(10))


def test_half_the_classes() -> None:
    logits = _logits_for([0, 1, 2, 3, 4] * 4)
    np.testing.assert_allclose(class_histogram(logits)[:5], 0.2)
    assert class_kl(logits) == pytest.approx(np.log(2))


def test_kl_against_the_datas_own_histogram() -> None:
    data = np.array([0.7, 0.2, 0.1])  # classes far from balanced
    fakes_like_data = _logits_for([0] * 7 + [1] * 2 + [2], k=3)
    assert class_kl(fakes_like_data, data) == pytest.approx(0.0)
    assert class_kl(fakes_like_data) > 0.2  # against uniform the same fakes look skewed
    only_rare = _logits_for([2] * 10, k=3)
    assert class_kl(only_rare, data) == pytest.approx(np.log(10))
