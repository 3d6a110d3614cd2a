"""The CPU cores this process may use: the one count every part of ganforge reads."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """How many cores this process may run on (its affinity mask, e.g. under taskset)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(cores or 1, 1)
