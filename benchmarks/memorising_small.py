"""Does a real G copy its training images when trained on 32 of them for long?

Writes the bundled MNIST sample's first digits as PNGs, trains a variant on them for
``--steps`` steps on one thread: `fast-cpu` on 64 digits with ``holdout = 0.5`` (32 trained
on, 32 held out), or the tutorial's fully connected GAN with a wide D on 40 digits with
``holdout = 0.2`` (32 and 8; the test's run). It prints the health monitor's memorisation
ratio (samples' median distance to their nearest training image over the held-out
digits'; 1: new images, 0: copies) every few probes, and the health warnings raised.

    PYTHONPATH=src taskset -c 0 python benchmarks/memorising_small.py --steps 30000
    PYTHONPATH=src taskset -c 1 python benchmarks/memorising_small.py --steps 18000 --variant r1-10
    PYTHONPATH=src taskset -c 1 python benchmarks/memorising_small.py --steps 8000 \
        --variant mlp-wide-d --seed 1
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ganforge.config import apply, load_preset
from ganforge.data import load_sample
from ganforge.training import train

# name: (preset, digits, holdout, changes)
VARIANTS = {
    "fast-cpu": ("fast-cpu", 64, 0.5, {}),  # R1 0.05 every 16
    "r1-10": ("fast-cpu", 64, 0.5, {"r1_gamma": 10.0, "r1_every": 1, "lr_g": 2e-4}),  # D held
    "mlp-wide-d": (
        "seed-simple", 40, 0.2,
        {"d_features": 512, "lr_g": 2e-3, "lr_d": 2e-3, "beta1": 0.5, "z_dim": 8,
         "log_epoch_start": False},
    ),
}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--variant", choices=sorted(VARIANTS), default="fast-cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    args = p.parse_args()
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp())
    preset, digits, holdout, variant = VARIANTS[args.variant]
    folder = root / f"digits{digits}"
    folder.mkdir()
    for i, img in enumerate(load_sample().images[:digits]):
        Image.fromarray(img[0]).save(folder / f"{i:03d}.png")
    changes = {
        "data": str(folder), "holdout": holdout, "seed": args.seed, "minutes": 0, "epochs": 0,
        "steps": args.steps, "batch_size": 32, "progress": False, "threads": 1, "log_every": 0,
        "ckpt_every": 0, "health_every": 50, **variant,
    }  # fmt: skip
    cfg = apply(load_preset(preset), changes, "memorising_small")
    start, err = time.time(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        run = train(cfg, out=args.out or root / args.variant)
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    ratios = [(e.step, round(e.value, 3)) for e in acc.Scalars("health/memorisation")]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    warnings = [(r["health"], r["step"]) for r in records if r.get("status") == "warning"]
    print(f"{args.variant}: {args.steps:,} steps in {time.time() - start:.0f} s")
    print("memorisation ratio (step, ratio):", ratios[:: max(1, len(ratios) // 12)], ratios[-1])
    print("warnings (name, step):", warnings)


if __name__ == "__main__":
    main()
