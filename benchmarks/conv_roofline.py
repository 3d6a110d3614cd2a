"""seed-dcgan's convolutions one by one: forward and backward GFLOP/s of each layer at its
training shape, contiguous (NCHW) against channels_last (NHWC), in fp32 or under bf16
autocast. The FLOPs are counted by torch.utils.flop_counter; times are medians.

taskset -c 1 env PYTHONPATH=src python benchmarks/conv_roofline.py [--precision bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ganforge.config import load_preset
from ganforge.data import resolve_shape
from ganforge.models import build_models


def layer_inputs(batch: int) -> list[tuple[str, nn.Module, torch.Size]]:
    """Each conv of seed-dcgan's G and D with the input shape it sees in training."""
    cfg, _ = resolve_shape(load_preset("seed-dcgan"))
    G, D = build_models(cfg.model_spec())
    found: list[tuple[str, nn.Module, torch.Size]] = []
    hooks = []
    for net_name, net in (("G", G), ("D", D)):
        for name, module in net.named_modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                hooks.append(module.register_forward_hook(
                    lambda m, args, out, label=f"{net_name}.{name}": found.append(
                        (label, m, args[0].shape)
                    )
                ))  # fmt: skip
    with torch.no_grad():
        fake = G(torch.randn(batch, cfg.z_dim))
        D(fake)
    for hook in hooks:
        hook.remove()
    return found


def _time(fn: object, reps: int) -> float:
    """Median seconds of ``fn()`` over ``reps`` calls after one warm-up call."""
    fn()  # type: ignore[operator]
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(
    module: nn.Module, shape: torch.Size, channels_last: bool, precision: str, reps: int
) -> tuple[float, float, float, float]:
    """(forward GFLOP, forward s, backward GFLOP, backward s) of ``module`` on ``shape``."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    module = module.to(memory_format=fmt)
    x = torch.randn(shape).contiguous(memory_format=fmt).requires_grad_(True)
    cast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if precision == "bf16"
        else contextlib.nullcontext
    )

    def forward() -> torch.Tensor:
        with cast():
            return module(x)

    with torch.no_grad(), FlopCounterMode(display=False) as fwd_count:
        out = forward()
    grad = torch.randn_like(out, dtype=torch.float32).contiguous(memory_format=fmt)

    def backward() -> None:
        y = forward()
        y.backward(grad.to(y.dtype))
        x.grad = None
        for p in module.parameters():
            p.grad = None

    with FlopCounterMode(display=False) as all_count:
        backward()
    fwd_flops = fwd_count.get_total_flops()
    bwd_flops = all_count.get_total_flops() - fwd_flops
    with torch.no_grad():
        t_fwd = _time(forward, reps)
    t_all = _time(backward, reps)
    return fwd_flops / 1e9, t_fwd, bwd_flops / 1e9, max(t_all - t_fwd, 1e-9)


def main() -> None:
    """Print one row per layer and the totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"seed-dcgan convolutions, batch {args.batch}, {args.precision}, "
          f"{torch.get_num_threads()} thread(s); GFLOP/s (NCHW / NHWC)")  # fmt: skip
    print(f"{'layer':<14} {'input':<20} {'fwd GFLOP':>9} {'fwd NCHW':>9} {'fwd NHWC':>9} "
          f"{'bwd GFLOP':>9} {'bwd NCHW':>9} {'bwd NHWC':>9}")  # fmt: skip
    totals = {False: [0.0, 0.0], True: [0.0, 0.0]}  # channels_last -> [GFLOP, seconds]
    for label, module, shape in layer_inputs(args.batch):
        row = {cl: measure(module, shape, cl, args.precision, args.reps) for cl in (False, True)}
        for cl, (ff, tf, bf, tb) in row.items():
            totals[cl][0] += ff + bf
            totals[cl][1] += tf + tb
        ff, tf, bf, tb = row[False]
        _, tf2, _, tb2 = row[True]
        print(
            f"{label:<14} {'x'.join(map(str, shape)):<20} {ff:>9.3f} {ff / tf:>9.1f} "
            f"{ff / tf2:>9.1f} {bf:>9.3f} {bf / tb:>9.1f} {bf / tb2:>9.1f}",
            flush=True,
        )
    for cl, (flops, seconds) in totals.items():
        name = "NHWC" if cl else "NCHW"
        print(f"all convolutions, {name}: {flops:.2f} GFLOP in {seconds:.3f} s = "
              f"{flops / seconds:.1f} GFLOP/s")  # fmt: skip


if __name__ == "__main__":
    main()
