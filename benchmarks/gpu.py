"""The GPU benchmark behind benchmarks/gpu.sh: one prepared command for a lent GPU.

It times seed-dcgan (the tutorial's 64-pixel DCGAN, grey), fast-cpu and best (64-pixel
colour shapes) with ``ganforge.bench``, in bf16 and fp32, plain, with CUDA graphs, with
torch.compile and with both, the tutorial's reference loop beside seed-dcgan; then trains a
few hundred steps on the GPU and checks that the first steps' losses match the CPU's (same
seed, fp32). It prints img/s, step ms and the fraction of the chip's dense bf16 peak.

No network: the data are the bundled MNIST sample and a small colour folder it draws itself
(or ``--colour PATH``). A time budget (``--budget-s``, default 440 s) keeps it under 8
minutes: work runs most important first, and what the budget leaves out is named.
``--dry-run`` takes every path on the CPU with tiny step counts (CUDA graphs through their
CPU fallback, torch.compile with the no-codegen ``aot_eager`` backend) and exits quickly.

Each bench group runs in its own process, so a failure (or a hang, cut by a timeout) in one
loses nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Dense bf16 tensor-core peaks, TFLOP/s, from NVIDIA's datasheets (the H100/H200 sheet
# lists 1,979 TFLOP/s for SXM and 1,513 for PCIe "with sparsity"; dense is half: 989 and
# 756; the A100 sheet lists 312 dense). The H200 is the H100's chip with more memory.
BF16_PEAK_TFLOPS = [("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0)]
# (label, preset, config changes): the three recipes at 64 pixels
PRESETS: list[tuple[str, str, dict[str, Any]]] = [
    ("seed-dcgan", "seed-dcgan", {}),
    ("fast-cpu 64 colour", "fast-cpu", {"image_size": 64, "channels": 3}),
    ("best 64 colour", "best", {"image_size": 64, "channels": 3}),
]
# the dry run shrinks the networks so that every path runs in seconds on one core
DRY_CHANGES = {"batch_size": 8, "g_features": 8, "d_features": 8}
FP32_TOLERANCE = 0.05  # largest |CPU - GPU| of a loss over the first steps, fp32
CHECK_STEPS = 20  # the first steps compared


@dataclasses.dataclass
class Group:
    """One bench process: a preset at one precision with the variants timed beside it."""

    label: str
    preset: str
    changes: dict[str, Any]
    precision: str
    compiled: bool  # the torch.compile variants (slow to start), else plain and CUDA graphs

    @property
    def name(self) -> str:
        """How the output names it."""
        kind = "compile, compile + CUDA graphs" if self.compiled else "plain, CUDA graphs"
        return f"{self.label} {self.precision} ({kind})"

    def variants(self, dry: bool) -> dict[str, dict[str, Any]]:
        """The loops besides the first, as config changes."""
        if not self.compiled:
            return {"cuda-graphs": {"cuda_graphs": True}}
        both = {"compile": True, "cuda_graphs": True}
        return {"compile + cuda-graphs": both | ({"compile_backend": "aot_eager"} if dry else {})}

    def base(self, dry: bool) -> dict[str, Any]:
        """The first loop's config changes."""
        first = {"precision": self.precision} | self.changes
        if self.compiled:
            first |= {"compile": True} | ({"compile_backend": "aot_eager"} if dry else {})
        return first | (DRY_CHANGES if dry else {})


def plan() -> list[Group]:
    """Every bench group, most important first: the plain ones, then compiled bf16, then
    compiled fp32 (the last to be left out when time runs short)."""
    plain = [Group(lb, p, c, prec, False) for lb, p, c in PRESETS for prec in ("bf16", "fp32")]
    compiled = [Group(lb, p, c, prec, True) for prec in ("bf16", "fp32") for lb, p, c in PRESETS]
    return plain + compiled


def bf16_peak(gpu: str) -> float | None:
    """The dense bf16 peak of the GPU called ``gpu``, TFLOP/s, when the table has it."""
    return next((peak for key, peak in BF16_PEAK_TFLOPS if key in gpu), None)


# --- a child process: one bench group -------------------------------------------------------


def child(spec: dict[str, Any]) -> None:
    """Run one bench group and print its table, then one ``ROW {json}`` line per loop."""
    from ganforge.bench.timing import bench
    from ganforge.config import apply, load_preset, validate
    from ganforge.console import info
    from ganforge.errors import UserError

    group = Group(**spec["group"])
    dry = spec["dry"]
    changes = group.base(dry) | {"device": spec["device"]}
    try:
        cfg = validate(apply(load_preset(group.preset), changes, group.name))
        result = bench(
            cfg, spec["steps"], spec["warmup"], spec["windows"],
            vs_reference=group.preset == "seed-dcgan" and not group.compiled,
            report=info, variants=group.variants(dry),
        )  # fmt: skip
    except UserError as exc:  # e.g. bf16 on a CPU without it: one line, not a failure
        print(f"SKIP {exc}", flush=True)
        return
    print("\n".join(result.lines()), flush=True)
    first = "compile" if group.compiled else "plain"
    for loop in result.loops:
        row = {
            "loop": first if loop.name == "ganforge" else loop.name,
            "img_s": loop.median_images_per_s,
            "step_ms": loop.median_step_s * 1e3, "gflop_img": loop.flops_per_image / 1e9,
            "machine": result.machine,
        }  # fmt: skip
        print("ROW " + json.dumps(row), flush=True)


# --- the parent: runs the groups and the training check under a time budget -----------------


class Budget:
    """Seconds left of the whole run's budget."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left."""
        return self.end - time.monotonic()


def launch(argv: list[str], dry: bool, timeout: float, main: Any = None) -> tuple[int, str, str]:
    """Run ``python ARGV`` in a fresh process, or in the dry run ``main(ARGV)`` in this one
    (the same code without a process start each time); return (status, stdout, stderr)."""
    if dry:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's errors
                code = exc.code if isinstance(exc.code, int) else 1
        sys.stderr.write(err.getvalue())
        return code or 0, out.getvalue(), err.getvalue()
    try:
        proc = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, timeout=max(timeout, 5)
        )
    except subprocess.TimeoutExpired as exc:
        return 124, _text(exc.stdout), _text(exc.stderr)
    sys.stderr.write(proc.stderr)
    return proc.returncode, proc.stdout, proc.stderr


def _text(data: bytes | str | None) -> str:
    return data.decode() if isinstance(data, bytes) else (data or "")


def _child_main(argv: list[str]) -> int:
    child(json.loads(argv[2]))
    return 0


def bench_groups(args: argparse.Namespace, budget: Budget, groups: list[Group]) -> list[dict]:
    """Run ``groups`` while the budget lasts; return every loop's row (with its group)."""
    rows: list[dict] = []
    ran: list[Group] = []
    steps, warmup, windows = (1, 0, 1) if args.dry_run else (50, 5, 5)
    for group in groups:
        print(f"\n== config: {group.name}", flush=True)
        reserve = 20 if args.dry_run else 60  # kept back for the summary
        if budget.left() < reserve + (5 if args.dry_run else 30):
            print(f"   skipped: the time budget is spent ({args.budget_s:.0f} s)", flush=True)
            continue
        spec = {
            "group": dataclasses.asdict(group), "dry": args.dry_run, "device": args.device,
            "steps": steps, "warmup": warmup, "windows": windows,
        }  # fmt: skip
        if args.dry_run and group.compiled and any(g.compiled for g in ran):
            print("   dry run: not run (torch.compile is checked on the first compiled group "
                  "only: tracing takes a while on one core)", flush=True)  # fmt: skip
            continue
        argv = [__file__, "--child", json.dumps(spec)]
        code, out, _ = launch(argv, args.dry_run, budget.left() - reserve, _child_main)
        shown = [ln for ln in out.splitlines() if not ln.startswith(("ROW ", "SKIP "))]
        print("\n".join(shown), flush=True)
        if code != 0:
            why = "timed out" if code == 124 else f"exit status {code}"
            print(f"   FAILED ({why}); see the lines above", flush=True)
            rows.append({"group": group.name, "loop": "(failed)", "failed": True})
            continue
        for line in out.splitlines():
            if line.startswith("SKIP "):
                print(f"   skipped: {line[5:]}", flush=True)
            if line.startswith("ROW "):
                rows.append({"group": group.name, "key": (group.label, group.precision),
                             **json.loads(line[4:])})  # fmt: skip
        if "\nROW " in "\n" + out:  # it ran (not skipped, e.g. bf16 on a CPU without it)
            ran.append(group)
    return rows


def colour_folder(root: Path, count: int) -> Path:
    """``count`` 64x64 PNGs of coloured ellipses and boxes on coloured grounds (seeded)."""
    import numpy as np
    from PIL import Image, ImageDraw

    folder = root / "colour-shapes"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = Image.new("RGB", (64, 64), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(image)
        for _ in range(3):
            x0, y0 = (int(v) for v in rng.integers(0, 40, 2))
            x1, y1 = x0 + int(rng.integers(12, 24)), y0 + int(rng.integers(12, 24))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), colour)
        image.save(folder / f"{i:04d}.png")
    return folder


def train_losses(
    args: argparse.Namespace,
    budget: Budget,
    out: Path,
    device: str,
    precision: str,
    steps: int,
    how: list[str],
) -> list[tuple[float, float]] | str:
    """(loss of D, loss of G) at each step of a ``ganforge train`` run, or why it failed."""
    from ganforge.cli import main

    argv = [
        "-m", "ganforge", "train", *how, "--steps", str(steps), "--seed", "0",
        "--device", device, "--precision", precision, "--out", str(out), "--no-progress",
        "--set", "log_every=1", "--set", "ckpt_every=0",
    ]  # fmt: skip
    for key, value in DRY_CHANGES.items() if args.dry_run else ():
        argv += ["--set", f"{key}={value}"]
    print("   $ ganforge " + " ".join(argv[2:]), flush=True)
    code, _, err = launch(argv, args.dry_run, budget.left() - 15, lambda a: main(a[2:]))
    if code == 124:
        return "timed out (the time budget)"
    if code != 0:
        return (err.strip().splitlines() or ["no output"])[-1]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(rec["loss/D"], rec["loss/G"]) for rec in lines if rec["step"] >= 1]


def training_check(args: argparse.Namespace, budget: Budget, work: Path) -> bool:
    """Train on the GPU (fp32 and bf16) and on the CPU (fp32) from the same seed; print the
    largest loss differences over the first steps; True when fp32 agrees within tolerance."""
    colour = args.colour or colour_folder(work, 32 if args.dry_run else 512)
    runs = [
        ("seed-dcgan on the MNIST sample", ["--preset", "seed-dcgan", "--data", "mnist-sample"]),
        ("fast-cpu on colour shapes, 64 px",
         ["--preset", "fast-cpu", "--data", str(colour), "--image-size", "64"]),
    ]  # fmt: skip
    first = 3 if args.dry_run else CHECK_STEPS
    long = 3 if args.dry_run else 300
    ok = True
    for label, how in runs:
        print(f"\n== config: training check, {label}", flush=True)
        if budget.left() < (20 if args.dry_run else 90):
            print(f"   skipped: the time budget is spent ({args.budget_s:.0f} s)", flush=True)
            continue
        slug = label.split()[0]
        cpu = train_losses(args, budget, work / f"{slug}-cpu", "cpu", "fp32", first, how)
        found = {}
        for precision in ("fp32", "bf16"):
            found[precision] = train_losses(
                args, budget, work / f"{slug}-{precision}", args.device, precision, long, how
            )
        for precision, losses in found.items():
            if isinstance(losses, str) and "no AVX512-BF16 or AMX" in losses:
                print(f"   {precision}: skipped ({losses})")  # the dry run on such a CPU
                continue
            if isinstance(cpu, str) or isinstance(losses, str):
                print(f"   {precision}: FAILED ({cpu if isinstance(cpu, str) else losses})")
                ok = False
                continue
            diff = max(max(abs(a - b) for a, b in zip(p, q, strict=True)) for p, q in
                       zip(cpu, losses[:first], strict=True))  # fmt: skip
            verdict = ""
            if precision == "fp32":
                verdict = "ok" if diff <= FP32_TOLERANCE else f"MISMATCH (> {FP32_TOLERANCE})"
                ok = ok and diff <= FP32_TOLERANCE
            print(
                f"   {args.device} {precision} vs cpu fp32, first {first} steps: largest loss "
                f"difference {diff:.4f} {verdict}; after {len(losses)} steps D {losses[-1][0]:.3f}"
                f", G {losses[-1][1]:.3f}",
                flush=True,
            )
    return ok


def summary(rows: list[dict]) -> None:
    """The table of every loop timed, with the fraction of the chip's bf16 peak."""
    machine = next((r["machine"] for r in rows if "machine" in r), "")
    peak = bf16_peak(machine)
    where = f"{peak:.0f} TFLOP/s dense bf16" if peak else "not in the table"
    print(f"\n== summary: {machine or 'no loop ran'}; peak {where}")
    print(f"{'config':<52} {'loop':<22} {'img/s':>10} {'step ms':>9} {'GFLOP/s':>9} {'% peak':>7}")
    # FLOPs per image as counted on the plain loop: a replayed CUDA graph or a compiled step
    # runs no aten ops for the counter to see, and does the same arithmetic
    plain = {r["key"]: r["gflop_img"] for r in rows if r.get("loop") == "plain"}
    for r in rows:
        if r.get("failed"):
            print(f"{r['group']:<52} {'FAILED':<22}")
            continue
        gflop_img = r["gflop_img"] or plain.get(r["key"], 0.0)
        gflop_s = gflop_img * r["img_s"]
        share = f"{100 * gflop_s / (peak * 1e3):.2f}" if peak else "-"
        print(
            f"{r['group']:<52} {r['loop']:<22} {r['img_s']:>10.1f} {r['step_ms']:>9.2f} "
            f"{gflop_s:>9.1f} {share:>7}"
        )


def main() -> int:
    """Run the benchmark (or its dry run); 0 when every path that ran succeeded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="every path on the CPU, tiny")
    parser.add_argument("--colour", type=Path, help="a colour image folder (default: drawn)")
    parser.add_argument("--budget-s", type=float, default=440.0, help="whole run, seconds")
    parser.add_argument("--out", type=Path, help="where runs go (default: a temp folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0
    args.device = "cpu" if args.dry_run else "cuda"
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            print("benchmarks/gpu.sh needs a CUDA GPU; on the CPU run it with --dry-run")
            return 2
    budget = Budget(args.budget_s)
    if args.dry_run:
        print(
            "dry run: every path on the CPU with tiny steps and networks; CUDA graphs take "
            "their CPU fallback (one line says so) and torch.compile the aot_eager backend"
        )
    work = args.out or Path(tempfile.mkdtemp(prefix="ganforge-gpu-"))
    groups = plan()
    rows = bench_groups(args, budget, groups[: len(groups) // 2])  # plain ones first
    agreed = training_check(args, budget, work)
    rows += bench_groups(args, budget, groups[len(groups) // 2 :])
    summary(rows)
    failed = [r["group"] for r in rows if r.get("failed")]
    print(f"\nruns in {work}; {len(failed)} failed group(s); losses agree: {agreed}")
    return 1 if failed or not agreed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
