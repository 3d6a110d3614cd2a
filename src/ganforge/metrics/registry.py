"""The metrics by name. A metric is one module holding its :class:`Metric` record and one
entry here (docs/METRICS.md, "Adding a metric"); the order here is the order of the
values in every score."""

from __future__ import annotations

from collections.abc import Sequence

from ganforge.metrics.class_coverage import CLASSES
from ganforge.metrics.frechet import FID
from ganforge.metrics.kid import KID
from ganforge.metrics.metric import Metric
from ganforge.metrics.prdc import DENSITY_COVERAGE, PRECISION_RECALL

METRICS: dict[str, Metric] = {
    m.name: m for m in (FID, KID, PRECISION_RECALL, DENSITY_COVERAGE, CLASSES)
}


def label(value: str) -> str:
    """The label tables show for a reported value (``"FID"`` for ``"fid"``); unknown
    values (a score file from another version) show their key."""
    for metric in METRICS.values():
        if value in metric.values:
            return metric.values[value]
    return value


def needing_classifier(names: Sequence[str]) -> list[str]:
    """Those of the metric ``names`` that need a classifier's class logits."""
    return [name for name in names if METRICS[name].needs_classifier]
