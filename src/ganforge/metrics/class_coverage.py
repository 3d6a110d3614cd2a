"""Class coverage: how far the classes a classifier sees in the fakes are from the data's.

KL(h || uniform) = sum_c h_c log(h_c K) for the histogram h of predicted classes
over K classes: 0 when every class is predicted equally often, log K when every
fake is predicted as one class (a collapsed generator). Meant for data with
balanced classes, like MNIST and Fashion-MNIST. For data whose classes are not
balanced, KL(h || r) against the histogram r the same classifier predicts for the
real images is the measure: 0 when the fakes' classes come as often as the data's.
"""

from __future__ import annotations

import numpy as np

from ganforge.metrics.metric import Embedded, Metric


def class_histogram(logits: np.ndarray) -> np.ndarray:
    """Share of samples predicted as each class, from logits ``[N, K]`` -> ``[K]``."""
    counts = np.bincount(np.argmax(logits, axis=1), minlength=logits.shape[1])
    return counts / counts.sum()


def class_kl(logits: np.ndarray, reference: np.ndarray | None = None) -> float:
    """KL divergence (nats) of the predicted class histogram from ``reference`` (a class
    histogram ``[K]``, e.g. the real images'), or from the uniform distribution."""
    hist = class_histogram(logits)
    ref = np.full(len(hist), 1.0 / len(hist)) if reference is None else np.asarray(reference)
    ref = np.maximum(ref, 1e-6)  # a class the data never shows: a large, finite penalty
    keep = hist > 0
    return float((hist[keep] * np.log(hist[keep] / ref[keep])).sum())


def _classes_values(e: Embedded) -> dict[str, float]:
    assert e.fake_logits is not None  # score_features checks needs_classifier first
    return {"class_kl": class_kl(e.fake_logits)}


CLASSES = Metric(
    "classes", {"class_kl": "class KL"},
    "KL of the fakes' predicted classes from uniform (needs a classifier: mnist-net, ...)",
    _classes_values, needs_classifier=True,
)  # fmt: skip
