"""seed-dcgan's transposed convs (batch 128): the library's kernel against
:class:`ganforge.models.layers.FastConvTranspose2d`'s matrix-product forms, forward and
backward, one layer at a time, channels_last, in bf16 autocast (fp32 with --fp32).

PYTHONPATH=src python benchmarks/convt_forms.py [--threads 2] [--repeats 7]

The fold form is forced on every stride-2 layer here (``FOLD_MAX_SIDE`` raised) to show
where it pays; training uses it only from inputs of at most ``FOLD_MAX_SIDE``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

from ganforge.models import layers

# (name, in channels, out channels, kernel, stride, padding, input side)
LAYERS = [
    ("G first, from 1x1", 100, 1024, 4, 1, 0, 1),
    ("G 4x4 -> 8x8", 1024, 512, 4, 2, 1, 4),
    ("G 8x8 -> 16x16", 512, 256, 4, 2, 1, 8),
    ("G 16x16 -> 32x32", 256, 128, 4, 2, 1, 16),
    ("G last, 32x32 -> 64x64", 128, 1, 4, 2, 1, 32),
]


def timed(module: nn.Module, x: torch.Tensor, bf16: bool, repeats: int) -> float:
    """Median ms of forward + backward (input and weight gradients), after 2 warm-ups."""
    x = x.detach().requires_grad_(x.shape[-1] > 1)  # z needs no gradient
    times = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            y = module(x)
        y.backward(torch.ones_like(y))
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--fp32", action="store_true", help="fp32 instead of bf16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    layers.FOLD_MAX_SIDE = 64  # force the fold form wherever it applies, to compare
    print(f"load before: {os.getloadavg()[0]:.2f}; {args.threads} threads, batch 128")
    print("| layer | library kernel ms | matrix-product form ms |")
    print("| --- | ---: | ---: |")
    for name, c_in, c_out, k, s, p, side in LAYERS:
        torch.manual_seed(0)
        plain = nn.ConvTranspose2d(c_in, c_out, k, s, p, bias=c_out == 1)
        fast = layers.FastConvTranspose2d(c_in, c_out, k, s, p, bias=c_out == 1)
        fast.load_state_dict(plain.state_dict())
        cl = torch.channels_last
        plain, fast = plain.to(memory_format=cl), fast.to(memory_format=cl)
        x = torch.randn(128, c_in, side, side).contiguous(memory_format=cl)
        a, b = (timed(m, x, not args.fp32, args.repeats) for m in (plain, fast))
        print(f"| {name} | {a:.1f} | {b:.1f} |", flush=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
