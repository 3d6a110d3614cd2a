"""What the training-health monitor costs per step of `fast-cpu` on the CPU.

Two runs of the same config side by side, health = off and health = warn, stepped in
alternating blocks of 50 steps (in ABBA order) so that a change in the machine's load
hits both alike; and the
time spent inside the monitor itself, measured around its calls. With --holdout the
warn run also holds 10% of the images out and probes memorisation.

taskset -c 1 env PYTHONPATH=src python benchmarks/health_cost.py [--holdout] [--rounds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ganforge.config import load_preset
from ganforge.console import Progress
from ganforge.training.loop import Trainer
from ganforge.training.run_log import RunLogger

BLOCK = 50  # steps per block: one health check at the default health_every = 50


def _trainer(health: str, holdout: float, out: Path) -> Trainer:
    """A fast-cpu Trainer on the bundled MNIST digits, ready to step without run()."""
    cfg = dataclasses.replace(
        load_preset("fast-cpu"), data="mnist-sample", minutes=0.0, steps=10**9, log_every=0,
        ckpt_every=0, progress=False, health=health, holdout=holdout,
    )  # fmt: skip
    trainer = Trainer(cfg, out=out)
    trainer.logger = RunLogger(trainer.folder)  # run() opens these; we step by hand
    trainer.progress = Progress(None, 0.0, enabled=False)
    trainer._window_start, trainer._window_images = time.perf_counter(), 0
    return trainer


def _timed_monitor(trainer: Trainer, spent: list[float]) -> None:
    """Add the seconds each call of the trainer's monitor takes to ``spent``."""
    monitor = trainer.health
    assert monitor is not None
    observe = monitor.observe

    def timed(*args: Any) -> None:
        start = time.perf_counter()
        observe(*args)
        spent.append(time.perf_counter() - start)

    monitor.observe = timed  # type: ignore[method-assign]


def main() -> None:
    """Print ms per step with health off and on, the monitor's own ms per step, and %."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--holdout", action="store_true", help="hold out 10%% too")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--control", action="store_true", help="both runs off: the noise floor")
    args = parser.parse_args()
    holdout = 0.1 if args.holdout else 0.0
    with tempfile.TemporaryDirectory() as tmp:
        off = _trainer("off", holdout, Path(tmp) / "off")
        warn = _trainer("off" if args.control else "warn", holdout, Path(tmp) / "warn")
        spent: list[float] = []
        if not args.control:
            _timed_monitor(warn, spent)
        for t in (off, warn):  # warm-up: first steps allocate
            for _ in range(50):
                t.step()
        spent.clear()
        per_step: dict[str, list[float]] = {"off": [], "warn": []}
        for r in range(args.rounds):
            pair = (("off", off), ("warn", warn))
            for name, t in pair if r % 2 == 0 else pair[::-1]:  # ABBA: drift hits both alike
                start = time.perf_counter()
                for _ in range(BLOCK):
                    t.step()
                per_step[name].append((time.perf_counter() - start) / BLOCK)
        for t in (off, warn):
            t.logger.close()
    step_off = statistics.median(per_step["off"]) * 1000
    step_warn = statistics.median(per_step["warn"]) * 1000
    ratios = [w / o for o, w in zip(per_step["off"], per_step["warn"], strict=True)]
    monitor = sum(spent) / (args.rounds * BLOCK) * 1000
    control = " (control: both off)" if args.control else ""
    rounds = f"{args.rounds} rounds of {BLOCK} steps"
    print(f"fast-cpu, MNIST sample, holdout {holdout}, {rounds}{control}")
    print(f"health=off : {step_off:.2f} ms/step (median of blocks)")
    print(f"health=warn: {step_warn:.2f} ms/step (median of blocks)")
    print(f"warn / off per round: median {statistics.median(ratios):.3f}")
    print(f"monitor's own time: {monitor:.3f} ms/step = {100 * monitor / step_off:.2f}% of a step")
    for name, times in per_step.items():
        print(f"  {name} blocks (ms/step): {', '.join(f'{1000 * t:.1f}' for t in times)}")


if __name__ == "__main__":
    main()
