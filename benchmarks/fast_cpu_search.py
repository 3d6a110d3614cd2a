"""Cost per image of candidate `fast-cpu` recipes, in CPU seconds, on one thread.

On 2 cores, the recipe that trains on the most images in 10 minutes usually
wins (docs/BENCHMARKS.md, "Quality"). This script times GANStep (the real
training step: D and G updates, EMA, augmentation, penalties) for each
candidate on random 28x28 or 32x32 batches, with one thread, counting CPU time
of this process rather than wall time, so that the figures hold up on a shared
machine. img/CPU-s on one thread is an upper bound for a 2-core wall figure of
about 1.5-2x that.

    PYTHONPATH=src python benchmarks/fast_cpu_search.py [--steps 60] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch

from ganforge.config import TrainConfig, load_preset
from ganforge.data import ImageData, resolve_shape
from ganforge.training.build import build_run

BASE = dataclasses.replace(resolve_shape(load_preset("fast-cpu"))[0], minutes=0.0)  # MNIST
CANDIDATES: dict[str, dict[str, object]] = {
    "fast-cpu (dcgan28 W16/32, b64, EMA)": {},
    "  no EMA": {"ema_decay": 0.0},
    "  contiguous (no channels_last)": {"channels_last": False},
    "  batch 32": {"batch_size": 32},
    "  batch 128": {"batch_size": 128},
    "  wider G 24 / D 48": {"g_features": 24, "d_features": 48},
    "  narrower G 8 / D 16": {"g_features": 8, "d_features": 16},
    "  hinge + SN on D": {"loss": "hinge", "spectral_norm_d": True},
    "  + translation,cutout": {"augment": "translation,cutout"},
    "  + R1 gamma 0.1 every 16": {"r1_gamma": 0.1, "r1_every": 16},
    "  dcgan 32 px": {"image_size": 32},
    "resnet28 W32, hinge, SN": {
        "model": "resnet",
        "g_features": 32,
        "d_features": 32,
        "loss": "hinge",
        "spectral_norm_d": True,
        "weight_init": "default",
    },  # fmt: skip
    "mlp (seed-simple nets), b64": {"model": "mlp", "g_features": 256, "d_features": 128},
}


def cost(cfg: TrainConfig, steps: int, warmup: int = 5) -> float:
    """Images per CPU-second of one training step of ``cfg`` on one thread (the step
    training builds: :func:`ganforge.training.build.build_run`), on one random batch."""
    b, s = cfg.batch_size, cfg.image_size
    images = np.random.default_rng(0).integers(0, 256, (b, cfg.channels, s, s), np.uint8)
    step = build_run(cfg, ImageData(images), torch.device("cpu"), say=None).step
    real = torch.rand(b, cfg.channels, s, s) * 2 - 1
    for i in range(warmup + steps):
        if i == warmup:
            start = time.process_time()
        step(real, torch.randn(b, cfg.z_dim))
    return steps * b / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--only", nargs="*", help="substrings of candidate names to run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"| candidate | img per CPU-second (1 thread, {args.steps} steps) |")
    print("| --- | --- |")
    for name, changes in CANDIDATES.items():
        if args.only and not any(o in name for o in args.only):
            continue
        cfg = dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]
        print(f"| {name.strip()} | {cost(cfg, args.steps):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
