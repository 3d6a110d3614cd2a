"""Class coverage: how far the classes a classifier sees in the fakes are from uniform.

KL(h || uniform) = sum_c h_c log(h_c K) for the histogram h of predicted classes
over K classes: 0 when every class is predicted equally often, log K when every
fake is predicted as one class (a collapsed generator). Meant for data with
balanced classes, like MNIST and Fashion-MNIST.
"""

from __future__ import annotations

import numpy as np


def class_histogram(logits: np.ndarray) -> np.ndarray:
    """Share of samples predicted as each class, from logits ``[N, K]`` -> ``[K]``."""
    counts = np.bincount(np.argmax(logits, axis=1), minlength=logits.shape[1])
    return counts / counts.sum()


def class_kl(logits: np.ndarray) -> float:
    """KL divergence (nats) of the predicted class histogram from the uniform distribution."""
    hist = class_histogram(logits)
    nonzero = hist[hist > 0]
    return float((nonzero * np.log(nonzero * len(hist))).sum())
