"""Time one Adam step over each preset's parameters with each implementation (CPU, fp32).

PYTHONPATH=src python benchmarks/adam_impls.py
"""

from __future__ import annotations

import time

import torch

from ganforge.config import load_preset
from ganforge.data import resolve_shape
from ganforge.models import build_models


def time_adam(params: list[torch.Tensor], options: dict[str, bool], steps: int) -> float:
    """Mean seconds per ``Adam.step()`` after three warm-up steps."""
    opt = torch.optim.Adam(params, 2e-4, **options)
    for _ in range(3):
        opt.step()
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    """Print ms per step for fused, foreach and for-loop Adam on seed-simple and seed-dcgan."""
    torch.set_num_threads(1)
    for preset, steps in (("seed-simple", 2000), ("seed-dcgan", 20)):
        cfg, _ = resolve_shape(load_preset(preset))  # on MNIST
        params = [p for net in build_models(cfg.model_spec()) for p in net.parameters()]
        for p in params:
            p.grad = torch.randn_like(p)
        count = sum(p.numel() for p in params)
        for name, options in (
            ("fused", {"fused": True}),
            ("foreach", {"foreach": True}),
            ("for-loop", {"foreach": False}),
        ):
            ms = time_adam(params, options, steps) * 1e3
            print(f"{preset} ({count:,} parameters), {name} Adam: {ms:.2f} ms/step")


if __name__ == "__main__":
    main()
