"""The floor of seed-simple's step: the tutorial's math as bare torch calls, beside ganforge.

The fully connected GAN's step (G's forward, D on real and fake as one batch, D's BCE
gradient in closed form, D's backward and Adam step, D on the fake again, G's backward
through it and G's Adam step) written as plain matrix products and element-wise calls,
with no loss object, no autograd and PyTorch's own fused Adam: what no toolkit's step
can beat with the same kernels. Then ganforge's own step (``ganforge bench``'s), in
alternating blocks of steps on the same threads.

    PYTHONPATH=src python benchmarks/mlp_floor.py [--threads 2] [--steps 1000] [--blocks 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ganforge.bench.timing import bench_data, ganforge_steps
from ganforge.config import load_preset, validate
from ganforge.data import resolve_shape

B, Z, H_G, H_D, PIXELS, SLOPE = 32, 64, 256, 128, 784, 0.1


def floor_step(data: torch.Tensor) -> Callable[[int], None]:
    """One bare step of the fully connected GAN per call (the batch index as argument)."""
    g = [torch.randn(H_G, Z) * 0.1, torch.zeros(H_G), torch.randn(PIXELS, H_G) * 0.05,
         torch.zeros(PIXELS)]  # fmt: skip
    d = [torch.randn(H_D, PIXELS) * 0.03, torch.zeros(H_D), torch.randn(1, H_D) * 0.1,
         torch.zeros(1)]  # fmt: skip
    opt_g, opt_d = (torch.optim.Adam(p, 3e-4, fused=True) for p in (g, d))
    sign = torch.cat([-torch.ones(B), torch.ones(B)]).view(-1, 1)
    w1, b1, w2, b2 = g
    v1, c1, v2, c2 = d

    @torch.no_grad()
    def step(i: int) -> None:
        start = (i * B) % (len(data) - B)
        real, z = data[start : start + B], torch.randn(B, Z)
        h = F.leaky_relu(torch.addmm(b1, z, w1.t()), SLOPE)
        fake = torch.tanh(torch.addmm(b2, h, w2.t()))
        both = torch.cat([real, fake])
        u = F.leaky_relu(torch.addmm(c1, both, v1.t()), SLOPE)
        grad = torch.sigmoid(torch.addmm(c2, u, v2.t()) * sign) * sign / (2 * B)
        gu = torch.ops.aten.leaky_relu_backward(grad.mm(v2), u, SLOPE, True)
        for p, gp in zip(d, [gu.t().mm(both), gu.sum(0), grad.t().mm(u), grad.sum(0)], strict=True):
            p.grad = gp
        opt_d.step()
        u = F.leaky_relu(torch.addmm(c1, fake, v1.t()), SLOPE)
        grad = -torch.sigmoid(-torch.addmm(c2, u, v2.t())) / B
        gu = torch.ops.aten.leaky_relu_backward(grad.mm(v2), u, SLOPE, True)
        gx = torch.ops.aten.tanh_backward(gu.mm(v1), fake)
        gh = torch.ops.aten.leaky_relu_backward(gx.mm(w2), h, SLOPE, True)
        for p, gp in zip(g, [gh.t().mm(z), gh.sum(0), gx.t().mm(h), gx.sum(0)], strict=True):
            p.grad = gp
        opt_g.step()

    return step


def main() -> None:
    """Print ms per step of the floor and of ganforge's step, per block and their medians."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--blocks", type=int, default=3)
    args = p.parse_args()
    cfg = dataclasses.replace(load_preset("seed-simple"), data="mnist-sample")
    cfg, _ = resolve_shape(cfg)
    cfg = validate(dataclasses.replace(cfg, threads=args.threads, tune_threads=False))
    data = bench_data(cfg)
    ours, _ = ganforge_steps(cfg, torch.device("cpu"), data)
    torch.set_num_threads(args.threads)
    floor = floor_step(torch.from_numpy(data.images).float().div(127.5).sub(1).flatten(1))
    runs: dict[str, Callable[[int], object]] = {"floor": floor, "ganforge": lambda i: next(ours)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():  # warm up
        for i in range(100):
            fn(i)
    for _ in range(args.blocks):
        for name, fn in runs.items():
            t = time.perf_counter()
            for i in range(args.steps):
                fn(i)
            times[name].append((time.perf_counter() - t) / args.steps * 1e3)
    for name, ms in times.items():
        blocks = ", ".join(f"{m:.2f}" for m in ms)
        print(f"{name}: {statistics.median(ms):.2f} ms a step (blocks: {blocks})")


if __name__ == "__main__":
    main()
