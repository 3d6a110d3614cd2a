"""Threads chosen by timing against fixed counts: img/s at 1 thread, 2 threads and the
measured choice, side by side in one ``bench`` run (alternating windows) per preset, on a
quiet machine and with one core kept busy by a spinning process.

PYTHONPATH=src python benchmarks/threads.py [--steps N] [--windows N] [--only quiet|busy]

Run it on all the cores (no taskset): it compares thread counts. The goal: the measured
choice is never slower than the better fixed count by more than 5%.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from ganforge.bench.timing import bench
from ganforge.config import apply, load_preset, validate
from ganforge.cores import usable_cores

# (label, preset, config changes, timed steps): a step of the colour fast-cpu takes longest
CASES: list[tuple[str, str, dict[str, Any], int]] = [
    ("seed-simple", "seed-simple", {}, 300),
    ("quick", "quick", {}, 60),
    ("fast-cpu 28 px", "fast-cpu", {}, 60),
    ("fast-cpu 64 px colour", "fast-cpu", {"channels": 3, "image_size": 64}, 20),
]
GOAL = 0.95  # the measured choice's img/s over the better fixed count's, at least


@contextlib.contextmanager
def busy_core(core: int) -> Iterator[None]:
    """A process spinning on ``core`` meanwhile (another job on the machine)."""
    spin = subprocess.Popen(
        [sys.executable, "-c", "while True: pass"],
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )
    try:
        yield
    finally:
        spin.kill()
        spin.wait()


def load() -> str:
    """The 1-minute load average, as ``uptime`` shows it."""
    return f"{os.getloadavg()[0]:.2f}"


def measure(
    scale: float, windows: int, presets: str = ""
) -> list[tuple[str, float, float, float, int]]:
    """Per case (those whose label starts with ``presets``): img/s at 1 thread, at 2
    threads, and at the count chosen by timing."""
    rows = []
    for label, preset, changes, steps in CASES:
        if not label.startswith(presets):
            continue
        cfg = validate(apply(load_preset(preset), {**changes, "tune_threads": True}, label))
        result = bench(
            cfg, steps=max(windows, int(steps * scale)), warmup=2, windows=windows,
            variants={"1 thread": {"threads": 1}, "2 threads": {"threads": 2}},
        )  # fmt: skip
        ours = result.loop("ganforge")
        one, two = (result.loop(n).median_images_per_s for n in ("1 thread", "2 threads"))
        rows.append((label, one, two, ours.median_images_per_s, ours.threads))
        print(f"  {label}: done (load {load()})", file=sys.stderr, flush=True)
    return rows


def table(case: str, rows: list[tuple[str, float, float, float, int]], before: str) -> str:
    """A markdown table of one case's figures, with the goal's verdict per preset."""
    out = [
        f"{case} (load before {before}, after {load()}):",
        "",
        "| preset | 1 thread img/s | 2 threads img/s | measured choice img/s (threads) "
        "| vs better fixed | goal (>= 0.95) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, one, two, ours, threads in rows:
        ratio = ours / max(one, two)
        out.append(
            f"| {label} | {one:,.0f} | {two:,.0f} | {ours:,.0f} ({threads}) | {ratio:.2f} "
            f"| {'met' if ratio >= GOAL else 'missed'} |"
        )
    return "\n".join(out)


def main() -> None:
    """Run both cases and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="times the default steps")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--only", choices=("quiet", "busy"))
    parser.add_argument("--presets", default="", help="only the cases whose label starts so")
    args = parser.parse_args()
    if usable_cores() < 2:
        sys.exit("threads.py compares thread counts: run it on at least two cores (no taskset)")
    for case in ("quiet", "busy"):
        if args.only and case != args.only:
            continue
        before = load()
        print(f"{case}: timing {len(CASES)} presets", file=sys.stderr, flush=True)
        with busy_core(1) if case == "busy" else contextlib.nullcontext():
            rows = measure(args.scale, args.windows, args.presets)
        label = (
            "no busy core" if case == "quiet" else "one busy core (a spinning process on core 1)"
        )
        print(table(label, rows, before) + "\n", flush=True)


if __name__ == "__main__":
    main()
