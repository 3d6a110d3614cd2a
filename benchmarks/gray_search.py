"""Search for the grey `fast-cpu` recipe: quality per CPU-minute on Fashion-MNIST.

Trains each candidate (changes on top of `fast-cpu`, the base of its preset file: grey
data take no ``[colour]`` table; the base row is the grey recipe before the search) for
the same wall-clock minutes on ONE thread (pin the process to a core that nothing else
uses, e.g. ``taskset -c 0``), then scores 10,000 EMA samples against the 60,000
training images with the fashion-net features, as benchmarks/quality.py scores
`fast-cpu` (its ``run_entry``):
FID, KID, precision/recall and the class-histogram KL from uniform. Each result line
also records the machine's load (``os.getloadavg``) before and after the run.

    PYTHONPATH=src:benchmarks taskset -c 0 python benchmarks/gray_search.py \\
        --minutes 10 --out gray-search --only "batch 32, lr_g 5e-4"
    PYTHONPATH=src:benchmarks taskset -c 0 python benchmarks/gray_search.py \\
        --minutes 10 --seed 1 --out gray-search --only "batch 32, lr_g 5e-4"

One thread for a fixed time measures quality per CPU-minute; a 2-core run of the
same recipe gets roughly 1.6-1.8x its steps in the same minutes.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
from quality import Entry, run_entry

FAST_G = {"batch_size": 32, "lr_g": 5e-4}  # the colour search's: more updates, a faster G
R1 = {"r1_gamma": 0.05, "r1_every": 16}  # its light lazy R1 on D
# the grey recipe before this search, spelled out (the preset now holds its winner)
OLD_GRAY = {"batch_size": 64, "lr_g": 2e-4, "r1_gamma": 0.0, "r1_every": 1}
CANDIDATES: dict[str, dict[str, Any]] = {
    "base (fast-cpu: G 16 / D 32, batch 64, lr 2e-4, EMA 0.999)": OLD_GRAY,
    "fast-cpu as the preset now is": {},
    "batch 32, lr_g 5e-4": FAST_G,
    "batch 32, lr_g 5e-4, R1 0.05 every 16": {**FAST_G, **R1},
    "batch 32, lr_g 5e-4, R1, EMA 0.9995": {**FAST_G, **R1, "ema_decay": 0.9995},
    "batch 16, lr_g 5e-4": {"batch_size": 16, "lr_g": 5e-4},
    "the colour recipe (G 8 / D 16, batch 32, lr_g 5e-4, R1)": {
        **FAST_G,
        **R1,
        "g_features": 8,
        "d_features": 16,
    },  # fmt: skip
}


def slug(name: str) -> str:
    """A run folder's name for a candidate."""
    return "".join(c if c.isalnum() else "-" for c in name.strip()).strip("-")[:48]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0, help="the training seed (--set seed=N)")
    p.add_argument("--out", type=Path, default=Path("gray-search"))
    p.add_argument("--only", nargs="*", help="names of the candidates to run (default: all)")
    args = p.parse_args()
    torch.set_num_threads(1)  # sampling and scoring too
    args.out.mkdir(parents=True, exist_ok=True)
    head = "| candidate | seed | steps | FID | KID | precision | recall | class KL | load |"
    print(head + "\n" + "| --- " * 9 + "|", flush=True)
    for name, changes in CANDIDATES.items():
        if args.only and name not in args.only:
            continue
        entry = Entry(
            f"{slug(name)}-seed{args.seed}", "fast-cpu", args.data,
            {**changes, "threads": 1, "seed": args.seed},
        )  # fmt: skip
        load = os.getloadavg()[0]
        r = run_entry(entry, args.out, args.minutes, args.samples, True)
        loads = [round(load, 2), round(os.getloadavg()[0], 2)]
        r.update(candidate=name, seed=args.seed, load=loads)
        with open(args.out / "results.jsonl", "a") as fh:
            fh.write(json.dumps(r) + "\n")
        print(
            f"| {name} | {args.seed} | {r['steps']:,} | {r['fid']:.2f} | {r['kid']:.4f} "
            f"| {r['precision']:.3f} | {r['recall']:.3f} | {r['class_kl']:.4f} "
            f"| {r['load'][0]:.1f} / {r['load'][1]:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
