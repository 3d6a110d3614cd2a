"""Holding out part of a dataset: real images the run never trains on, to compare with."""

from __future__ import annotations

import numpy as np

from ganforge.data.images import ImageData
from ganforge.errors import ConfigError


def holdout_split(
    data: ImageData, fraction: float, seed: int
) -> tuple[ImageData, ImageData | None]:
    """``(train, heldout)``: ``fraction`` of ``data``'s images, chosen by ``seed`` alone, kept
    out of training. Both keep the data's order; a memory-mapped array is read into memory.
    A fraction of 0 keeps nothing out: ``(data, None)``, the same data object."""
    if fraction == 0:
        return data, None
    n_out = round(len(data) * fraction)
    if not 1 <= n_out < len(data):
        raise ConfigError(
            f"holdout {fraction} of {len(data)} images keeps {n_out} out of training; "
            "choose a fraction that leaves at least one image on each side"
        )
    order = np.random.default_rng([seed, 0x401D]).permutation(len(data))
    out = np.zeros(len(data), dtype=bool)
    out[order[:n_out]] = True
    return _subset(data, ~out), _subset(data, out)


def _subset(data: ImageData, keep: np.ndarray) -> ImageData:
    labels = None if data.labels is None else np.asarray(data.labels)[keep]
    return ImageData(np.asarray(data.images[keep]), labels, data.class_names, data.source)
