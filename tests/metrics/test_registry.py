"""The metric registry: a metric is one record plus one entry, read by scoring and the tables."""

from __future__ import annotations

import numpy as np
import pytest

from ganforge.errors import MetricsError
from ganforge.metrics import (
    METRICS,
    Embedded,
    FeatureExtractor,
    Metric,
    RealImages,
    parse_metrics,
    prdc,
    score_features,
)
from ganforge.metrics.registry import label
from ganforge.scoring import EvalReport, format_table


def _mean_shift(e: Embedded) -> dict[str, float]:
    return {"mean_shift": float(np.linalg.norm(e.fake.mean(0) - e.real.mean(0)))}


SHIFT = Metric("shift", {"mean_shift": "mean shift"}, "distance of the feature means", _mean_shift)


def test_a_metric_added_to_the_registry_is_scored_and_labelled(
    monkeypatch: pytest.MonkeyPatch, mnist_net: FeatureExtractor, digits: np.ndarray
) -> None:
    with pytest.raises(MetricsError, match="unknown metric"):
        parse_metrics("shift")
    monkeypatch.setitem(METRICS, "shift", SHIFT)
    real = RealImages(digits[:300], "mnist-sample")
    feats, logits = mnist_net.embed(digits[-200:])
    scores = score_features(
        feats.numpy(), logits.numpy(), real, "shift,fid", mnist_net, cache=False
    )
    assert list(scores.values) == ["fid", "mean_shift"]  # the registry's order
    assert scores.values["mean_shift"] > 0
    assert label("mean_shift") == "mean shift"
    table = format_table(EvalReport(scores, "fakes.npz", "npz", "mnist-sample", "train"))
    assert any(line.startswith("mean shift ") for line in table.splitlines()), table


def test_every_metric_reports_exactly_its_declared_values() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 10))
    e = Embedded(rng.normal(size=(40, 8)), logits, rng.normal(size=(60, 8)), seed=1)
    for metric in METRICS.values():
        assert set(metric.compute(e)) == set(metric.values), metric.name
        assert metric.help and all(metric.values.values())


def test_pr_and_dc_share_one_knn_pass_on_a_seeded_real_subset() -> None:
    rng = np.random.default_rng(0)
    fake, real = rng.normal(size=(40, 8)), rng.normal(size=(60, 8))
    e = Embedded(fake, None, real, seed=3)
    values = {**METRICS["pr"].compute(e), **METRICS["dc"].compute(e)}
    assert list(e._shared) == ["prdc"]  # computed once, for both
    subset = real[np.random.default_rng(3).choice(60, 40, replace=False)]
    expected = prdc(subset, fake)
    assert values == {
        "precision": expected.precision, "recall": expected.recall,
        "density": expected.density, "coverage": expected.coverage,
    }  # fmt: skip
    calls: list[int] = []
    e.shared("prdc", lambda _: calls.append(1))
    assert not calls
