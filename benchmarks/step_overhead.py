"""Where one training step of the real loop goes: per-step ms and a torch.profiler table.

    PYTHONPATH=src taskset -c 1 python benchmarks/step_overhead.py --preset seed-simple \
        --steps 3000 --warmup 200 --set threads=1

Trains ``--warmup + --steps`` steps with :class:`ganforge.training.loop.Trainer` as
``ganforge train`` does (logs, progress bar, NaN guard, checkpoints as the preset sets
them) on the bundled MNIST sample, and times each call of ``Trainer.step`` in CPU time
of the process (``time.process_time``: other jobs on a shared core do not count; the
TensorBoard writer's thread does) and in wall time. The figures are means over the
measured steps (log steps included: they are part of what a step costs on average),
with the median CPU time beside them. ``--profile`` runs a second pass under
torch.profiler and prints the top rows of its table by self CPU time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ganforge.config import apply, load_preset, parse_set
from ganforge.training.loop import Trainer


def timed_run(
    args: argparse.Namespace, out: Path, after_step: Callable[[], None] = lambda: None
) -> tuple[list[float], list[float]]:
    """Train once; return the CPU and the wall seconds of each measured ``Trainer.step``."""
    cfg = apply(load_preset(args.preset), parse_set(args.set), "--set")
    cfg = apply(cfg, {"data": "mnist-sample", "steps": args.warmup + args.steps}, "benchmark")
    cfg = apply(cfg, {"epochs": 0, "minutes": 0.0}, "benchmark")
    trainer = Trainer(cfg, out=out)
    plain = Trainer.step
    cpu: list[float] = []
    wall: list[float] = []

    def step(self: Trainer) -> None:
        start_cpu, start = time.process_time(), time.perf_counter()
        plain(self)
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
        after_step()

    Trainer.step = step  # type: ignore[method-assign]
    try:
        trainer.run()
    finally:
        Trainer.step = plain  # type: ignore[method-assign]
    return cpu[args.warmup :], wall[args.warmup :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seed-simple")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--set", action="append", default=[], help="config key=value")
    parser.add_argument("--profile", action="store_true", help="also print a profiler table")
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--shapes", action="store_true", help="profile rows per input shape")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cpu, wall = timed_run(args, Path(tmp) / "timed")
        print(f"{args.preset}: {len(cpu)} steps, CPU {statistics.mean(cpu) * 1e3:.3f} ms/step "
              f"(median {statistics.median(cpu) * 1e3:.3f}), wall "
              f"{statistics.mean(wall) * 1e3:.3f} ms/step")  # fmt: skip
        if not args.profile:
            return
        from torch.profiler import ProfilerActivity, profile, schedule

        plan = schedule(wait=0, warmup=args.warmup, active=args.steps, repeat=1)
        with profile(
            activities=[ProfilerActivity.CPU], schedule=plan, record_shapes=args.shapes
        ) as prof:
            timed_run(args, Path(tmp) / "profiled", prof.step)
        averages = prof.key_averages(group_by_input_shape=args.shapes)
        table = averages.table(sort_by="self_cpu_time_total", row_limit=args.rows)
        print(table)


if __name__ == "__main__":
    main()
