"""Train with the reference loop alone (the tutorial's programs, as ``ganforge bench`` times them).

    PYTHONPATH=src python benchmarks/reference_loop.py --preset seed-simple --steps 200

The loop itself lives in ``ganforge.bench.reference`` so that the installed
``ganforge bench --vs-reference`` can run it; this script times it by itself.
"""

from __future__ import annotations

import argparse
import time

import torch

from ganforge.bench.reference import reference_steps
from ganforge.config import load_preset
from ganforge.data import load_sample, resolve_shape
from ganforge.run.device import resolve_device


def main() -> None:
    """Time ``--steps`` steps of the reference loop after ``--warmup`` steps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seed-simple", help="seed-simple or seed-dcgan")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    cfg, _ = resolve_shape(load_preset(args.preset))  # the sample's shape
    device = resolve_device(args.device)
    sample = load_sample()
    steps = reference_steps(cfg, sample.images, sample.labels, device, cfg.seed)
    for _ in range(args.warmup):
        next(steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    images = sum(next(steps) for _ in range(args.steps))
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(
        f"reference loop, {args.preset} on {device} ({torch.get_num_threads()} threads): "
        f"{images / seconds:.1f} img/s, {seconds / args.steps * 1e3:.2f} ms/step"
    )


if __name__ == "__main__":
    main()
