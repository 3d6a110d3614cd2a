"""What a metric is: a name, the values it reports, and a function of embedded features.

Each metric's record lives in its own module (frechet.py, kid.py, prdc.py,
class_coverage.py) and has one entry in :mod:`ganforge.metrics.registry`; scoring,
evaluation during training, the tables of ``ganforge eval`` and the command line's
help all read the records (docs/METRICS.md, "Adding a metric").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass
class Embedded:
    """The features every metric computes from, embedded by one extractor."""

    fake: np.ndarray  # [N, D]
    fake_logits: np.ndarray | None  # [N, K], or None when the extractor is no classifier
    real: np.ndarray  # [M, D]
    seed: int = 0  # seed of any random subsets a metric draws
    _shared: dict[str, Any] = field(default_factory=dict, repr=False)

    def shared(self, key: str, compute: Callable[[Embedded], T]) -> T:
        """``compute(self)``, computed once for all the metrics that ask for ``key`` (the
        k-NN radii that precision/recall and density/coverage both use)."""
        if key not in self._shared:
            self._shared[key] = compute(self)
        result: T = self._shared[key]
        return result


@dataclass(frozen=True)
class Metric:
    """One metric: its name (as ``--metrics`` takes it), the values it reports with their
    display labels, one line of help, and how to compute it."""

    name: str
    values: Mapping[str, str]  # value key (as in Scores.values) -> label in tables
    help: str
    compute: Callable[[Embedded], dict[str, float]]  # returns exactly the keys of ``values``
    needs_classifier: bool = False  # needs an extractor with class logits (mnist-net, ...)
