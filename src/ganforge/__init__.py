"""ganforge: train, watch, evaluate and sample generative adversarial networks with PyTorch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ganforge.config import TrainConfig
from ganforge.version import __version__

if TYPE_CHECKING:
    from ganforge.sampling import load_generator
    from ganforge.training import train

__all__ = ["TrainConfig", "__version__", "load_generator", "train"]


def __getattr__(name: str) -> Any:
    # imported on first use: processes that need only ganforge.data.decode skip torch
    if name == "train":
        from ganforge.training import train

        return train
    if name == "load_generator":
        from ganforge.sampling import load_generator

        return load_generator
    raise AttributeError(f"module 'ganforge' has no attribute '{name}'")
