"""Data: named datasets, image folders, prepared files, the bundled MNIST sample, batch loading.

Names are imported on first use, so that a decoder process importing
``ganforge.data.decode`` loads numpy and Pillow only, not torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ganforge.data.images import ImageData
    from ganforge.data.loader import BatchLoader
    from ganforge.data.named import load_sample, names, survey
    from ganforge.data.shape import resolve_shape
    from ganforge.data.source import Prepared, data_name, load_data, prepare
    from ganforge.data.spec import DataSpec, default_root

_HOMES = {
    "BatchLoader": "loader",
    "DataSpec": "spec",
    "ImageData": "images",
    "Prepared": "source",
    "data_name": "source",
    "default_root": "spec",
    "load_data": "source",
    "load_sample": "named",
    "names": "named",
    "prepare": "source",
    "resolve_shape": "shape",
    "survey": "named",
}

__all__ = [
    "BatchLoader", "DataSpec", "ImageData", "Prepared", "data_name", "default_root",
    "load_data", "load_sample", "names", "prepare", "resolve_shape", "survey",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"ganforge.data.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'ganforge.data' has no attribute '{name}'")
