"""bf16 on a CPU that has it (AVX512-BF16 or AMX): seed-dcgan in fp32 and in bf16 beside the
tutorial's reference loop, side by side in one ``bench`` run, then the loss agreement of
bf16 and fp32 training from the same seed over the first steps.

taskset -c 1 env PYTHONPATH=src python benchmarks/bf16_cpu.py [--steps N] [--check-steps N]

On a CPU without bf16 it stops with ganforge's one-line refusal.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path

from ganforge import train
from ganforge.bench.timing import bench
from ganforge.config import load_preset, validate
from ganforge.console import info
from ganforge.errors import UserError
from ganforge.run.device import cpu_has_bf16


def losses(cfg_changes: dict, steps: int, out: Path) -> list[tuple[float, float]]:
    """(loss of D, loss of G) at each of the first ``steps`` steps of seed-dcgan training."""
    cfg = dataclasses.replace(
        load_preset("seed-dcgan"), data="mnist-sample", steps=steps, epochs=0, log_every=1,
        ckpt_every=0, progress=False, seed=0, **cfg_changes,
    )  # fmt: skip
    run = train(cfg, out=out)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["loss/D"], r["loss/G"]) for r in rows]


def main() -> int:
    """Print the bench table and the loss agreement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per loop")
    parser.add_argument("--check-steps", type=int, default=10, help="steps of loss agreement")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f}; CPU has bf16: {cpu_has_bf16()}", flush=True)
    try:
        result = bench(
            validate(load_preset("seed-dcgan")), steps=args.steps, warmup=2, windows=5,
            vs_reference=True, report=info, variants={"bf16": {"precision": "bf16"}},
        )  # fmt: skip
    except UserError as exc:
        print(exc)
        return 2
    print("\n".join(result.lines()))
    ref = result.loop("reference").median_images_per_s
    for name in ("ganforge", "bf16"):
        print(f"{name} / reference: {result.loop(name).median_images_per_s / ref:.2f}x")
    print(f"load after bench: {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = losses({}, args.check_steps, Path(tmp) / "fp32")
        bf16 = losses({"precision": "bf16"}, args.check_steps, Path(tmp) / "bf16")
    print("step  D fp32   D bf16   G fp32   G bf16")
    for i, ((d32, g32), (d16, g16)) in enumerate(zip(fp32, bf16, strict=True), 1):
        print(f"{i:>4}  {d32:.4f}  {d16:.4f}  {g32:.4f}  {g16:.4f}")
    worst = max(max(abs(a - c), abs(b - d)) for (a, b), (c, d) in zip(fp32, bf16, strict=True))
    print(f"largest |bf16 - fp32| loss difference over {len(fp32)} steps: {worst:.4f}")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
