"""What each fast path of ganforge's step buys: each switched off in turn, in one run.

    PYTHONPATH=src python benchmarks/speed_ablation.py --preset seed-dcgan --steps 10

Every variant is ganforge's step with one config change, timed in the same
alternating windows as the default step (and the reference loop with
``--vs-reference``, which adds the reference loop at PyTorch's default thread count
and at one thread), so the ratios compare like with like on a noisy machine.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ganforge.bench.timing import bench
from ganforge.config import load_preset, validate
from ganforge.data import resolve_shape
from ganforge.models import build_models
from ganforge.training.speed import choose_threads


def variants(preset: str, compile: bool) -> dict[str, dict[str, Any]]:
    """One config change per fast path, turning it off (or the thread count the other way)."""
    cfg, _ = resolve_shape(validate(load_preset(preset)))  # the bench's data: the MNIST sample
    threads = choose_threads(0, list(build_models(cfg.model_spec())))
    out: dict[str, dict[str, Any]] = {
        "D not frozen in G step": {"freeze_d": False},
        "torch's fused Adam (not lean)": {"adam_impl": "fused"},
        "foreach Adam": {"adam_impl": "foreach"},
        "for-loop Adam": {"adam_impl": "for-loop"},
        f"{2 if threads == 1 else 1} thread(s)": {"threads": 2 if threads == 1 else 1},
    }
    if cfg.model != "mlp":
        out["no channels_last"] = {"channels_last": False}
    else:  # an MLP's D treats each image alone: real and fake go through it as one batch
        out["real and fake in two D passes"] = {"joint_d": False}
        out["autograd's backward (not by hand)"] = {"by_hand": False}
    if compile:
        out["--compile"] = {"compile": True}
    return out


def main() -> None:
    """Print the ablation table for ``--preset``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seed-simple")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--vs-reference", action="store_true")
    parser.add_argument("--compile", action="store_true", help="add a --compile variant")
    parser.add_argument(
        "--only", default="", help="comma-separated words: keep the variants whose name has one"
    )
    args = parser.parse_args()
    cfg = validate(load_preset(args.preset))
    changes = variants(args.preset, args.compile)
    if args.only:
        words = args.only.split(",")
        changes = {k: v for k, v in changes.items() if any(w in k for w in words)}
    result = bench(
        cfg, args.steps, args.warmup, args.windows, args.vs_reference,
        lambda line: print(line, file=sys.stderr), changes, (1,) if args.vs_reference else (),
    )  # fmt: skip
    print("\n".join(result.lines()))


if __name__ == "__main__":
    main()
