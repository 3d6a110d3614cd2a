"""Small, fast configurations for training tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from ganforge.config import TrainConfig, load_preset


def tiny(preset: str = "quick", **changes: Any) -> TrainConfig:
    """A preset shrunk to train in well under a second per few steps."""
    base = load_preset(preset)
    # one thread: tests that compare two runs bit for bit need the same count in both (a
    # count chosen by timing may differ); the thread tests ask for timing themselves
    small: dict[str, Any] = {
        "progress": False, "steps": 6, "epochs": 0, "minutes": 0.0, "threads": 1,
    }  # fmt: skip
    if base.model == "dcgan":
        small |= {"g_features": 4, "d_features": 4, "z_dim": 8, "batch_size": 16}
    return dataclasses.replace(base, **(small | changes))


def on_mnist(preset: str) -> TrainConfig:
    """A preset, validated, with the channels and size the default data (MNIST) gives it."""
    from ganforge.config import validate
    from ganforge.data import resolve_shape

    return resolve_shape(validate(load_preset(preset)))[0]
