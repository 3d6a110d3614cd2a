"""Training throughput: ganforge's step, and optionally the reference loop, timed side by side.

Both loops run in one process on the same device, batch and model shapes, on
the bundled MNIST sample. After warm-up steps, they take turns in timed windows
(ganforge, reference, reference, ganforge, ...), so that a machine that slows down or
speeds up during the run affects both alike; each loop's figure is the median
over its windows. FLOPs per image come from ``torch.utils.flop_counter`` over
one untimed step of each loop; peak memory is the peak of CUDA's allocator over
the windows, or on the CPU the most tensor bytes allocated during one profiled step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ganforge import seeds
from ganforge.bench.reference import check_supported, reference_steps
from ganforge.config import TrainConfig, apply, validate
from ganforge.cores import usable_cores
from ganforge.data import DataSpec, ImageData, load_data, load_sample, resolve_shape
from ganforge.errors import ConfigError
from ganforge.run.device import resolve_device
from ganforge.training.build import RunParts, build_run


@dataclass
class LoopFigures:
    """One loop's measurements: per timed window, and per step of one untimed step."""

    name: str
    threads: int
    images_per_s: list[float] = field(default_factory=list)  # one per window
    step_s: list[float] = field(default_factory=list)  # mean step time, one per window
    flops_per_image: float = 0.0
    peak_bytes: int = 0
    summary: str = ""  # what a ganforge loop's step runs; "" for the reference
    parts: RunParts | None = field(default=None, repr=False)  # a ganforge loop's run parts

    @property
    def median_images_per_s(self) -> float:
        """Median over the windows."""
        return statistics.median(self.images_per_s)

    @property
    def median_step_s(self) -> float:
        """Median over the windows."""
        return statistics.median(self.step_s)

    @property
    def flops_per_s(self) -> float:
        """Achieved FLOP/s at the median throughput."""
        return self.flops_per_image * self.median_images_per_s


@dataclass
class BenchResult:
    """The figures of one ``ganforge bench`` run."""

    preset: str
    machine: str
    device: str
    batch_size: int
    steps: int
    warmup: int
    windows: int
    loops: list[LoopFigures]

    def loop(self, name: str) -> LoopFigures:
        """The figures of the loop called ``name``."""
        return next(lp for lp in self.loops if lp.name == name)

    @property
    def ratio(self) -> float | None:
        """ganforge's median img/s over the reference's, when the reference ran."""
        names = [lp.name for lp in self.loops]
        if "reference" not in names:
            return None
        return (
            self.loop("ganforge").median_images_per_s / self.loop("reference").median_images_per_s
        )

    def lines(self) -> list[str]:
        """The report, as printed by ``ganforge bench``."""
        out = [
            f"bench {self.preset or '(config)'} on {self.device} ({self.machine}), batch "
            f"{self.batch_size}: {self.warmup} warm-up steps, then {self.steps} timed steps per "
            f"loop in {self.windows} alternating windows; medians over windows",
            f"{'loop':<22} {'img/s':>9} {'step ms':>9} {'GFLOP/img':>10} {'GFLOP/s':>9} "
            f"{'peak MiB':>9} {'threads':>7} {'vs ganforge':>11}",
        ]
        base = self.loop("ganforge").median_images_per_s
        for loop in self.loops:
            out.append(
                f"{loop.name:<22} {loop.median_images_per_s:>9.1f} "
                f"{loop.median_step_s * 1e3:>9.2f} {loop.flops_per_image / 1e9:>10.4f} "
                f"{loop.flops_per_s / 1e9:>9.2f} {loop.peak_bytes / 2**20:>9.1f} "
                f"{loop.threads:>7} {loop.median_images_per_s / base:>10.2f}x"
            )
        out += [f"{lp.name} step: {lp.summary}" for lp in self.loops if lp.summary]
        if self.ratio is not None:
            ours, ref = self.loop("ganforge").images_per_s, self.loop("reference").images_per_s
            per_window = [a / b for a, b in zip(ours, ref, strict=True)]
            out.append(
                f"ratio ganforge / reference: {self.ratio:.2f}x img/s "
                f"(per window {min(per_window):.2f}x to {max(per_window):.2f}x)"
            )
        return out


def machine_name(device: torch.device) -> str:
    """A short description of the hardware: the GPU's name, or the CPU model and cores."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    return f"{model}, {usable_cores()} cores, torch {torch.__version__}"


def bench_data(cfg: TrainConfig) -> ImageData:
    """The images every ganforge loop is timed on: the bundled MNIST sample at ``cfg``'s
    size and channels."""
    spec = DataSpec("mnist-sample", image_size=cfg.image_size, channels=cfg.channels)
    return load_data(spec)[0]


def ganforge_steps(
    cfg: TrainConfig, device: torch.device, data: ImageData
) -> tuple[Iterator[int], RunParts]:
    """ganforge's training step on ``data`` (:func:`bench_data`), built by the same
    :func:`ganforge.training.build.build_run` as ``ganforge train`` (n_critic, penalties,
    augmentation, EMA and the fast paths included), forever; yields each batch's size.
    Also returns the run's parts; their thread tuner has chosen the count training would
    use (on the CPU as training chooses it: by timing with ``tune_threads``)."""
    parts = build_run(cfg, data, device, say=None)
    G, D, step, loader = parts.G, parts.D, parts.step, parts.loader
    parts.threads.choose()
    noise = torch.Generator(device=device).manual_seed(seeds.stream(cfg.seed, seeds.NOISE))

    def steps() -> Iterator[int]:
        G.train()
        D.train()
        epoch, index = 0, 0
        while True:
            real, labels = loader.batch(epoch, index)
            z = torch.randn(real.shape[0], parts.cfg.z_dim, device=device, generator=noise)
            step(real, z, labels)  # the loop reads the losses only every scalar_every steps
            index += 1
            if index == len(loader):
                epoch, index = epoch + 1, 0
            yield real.shape[0]

    return steps(), parts


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run(steps: Iterator[int], n: int) -> int:
    return sum(next(steps) for _ in range(n))


def _cpu_peak_bytes(fn: Callable[[], object]) -> int:
    """The most tensor bytes held at once during ``fn()`` above those held before it."""
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(
        (e.start_ns(), e.nbytes())
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the profiler's C++ start/stop lines, written straight to file descriptor 2."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _WholeStep:
    """Stands in for FlopCounterMode's per-module tracker, whose backward hooks fail inside
    ``torch.autograd.grad`` (R1, gradient penalty): the total needs no split by module."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _WholeStep:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _measure_step(loop: LoopFigures, steps: Iterator[int], device: torch.device) -> None:
    """FLOPs per image and, on the CPU, peak memory of one untimed step."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _WholeStep()  # type: ignore[assignment]
    with counter:
        images = _run(steps, 1)
    loop.flops_per_image = counter.get_total_flops() / images
    if device.type == "cpu":
        loop.peak_bytes = _cpu_peak_bytes(lambda: _run(steps, 1))


def bench(
    cfg: TrainConfig,
    steps: int = 20,
    warmup: int = 3,
    windows: int = 5,
    vs_reference: bool = False,
    report: Callable[[str], None] | None = None,
    variants: dict[str, dict[str, Any]] | None = None,
    reference_threads: tuple[int, ...] = (),
) -> BenchResult:
    """Time ganforge's training step (and the reference loop) for ``cfg``; return the figures.

    ``steps`` timed steps per loop are split into ``windows`` alternating windows
    after ``warmup`` untimed steps of each loop. ``variants`` adds ganforge loops
    with those config changes (e.g. ``{"no channels_last": {"channels_last": False}}``),
    timed in the same windows; ``reference_threads`` adds reference loops run with those CPU
    thread counts (the reference itself uses PyTorch's default). ``report`` gets progress lines.
    """
    if steps < 1 or warmup < 0 or windows < 1:
        raise ConfigError("bench needs --steps >= 1, --warmup >= 0 and --windows >= 1")
    cfg, _ = resolve_shape(dataclasses.replace(cfg, data="mnist-sample"))  # the data timed on
    if vs_reference:
        check_supported(cfg)
    windows = min(windows, steps)
    say = report or (lambda line: None)
    device = resolve_device(cfg.device)
    default_threads = torch.get_num_threads()
    runners: list[tuple[LoopFigures, Iterator[int]]] = []
    configs = {"ganforge": cfg}
    for name, changes in (variants or {}).items():
        configs[name] = validate(apply(cfg, changes, f"variant {name}"))
    loaded: dict[tuple[int, int], ImageData] = {}  # by shape: each loaded once for all loops
    for name, loop_cfg in configs.items():
        shape = (loop_cfg.image_size, loop_cfg.channels)
        data = loaded[shape] = loaded.get(shape) or bench_data(loop_cfg)
        it, parts = ganforge_steps(loop_cfg, device, data)
        threads = parts.threads.threads if device.type == "cpu" else 0
        runners.append((LoopFigures(name, threads, summary=parts.summary(), parts=parts), it))
    if vs_reference:
        sample = load_sample()
        if sample.images.shape[1] != cfg.channels:
            sample = dataclasses.replace(sample, images=sample.images.repeat(cfg.channels, axis=1))
        for name, count in [("reference", default_threads)] + [
            (f"reference, {n} thread(s)", n) for n in reference_threads
        ]:
            reference = reference_steps(cfg, sample.images, sample.labels, device, cfg.seed)
            runners.append((LoopFigures(name, count if device.type == "cpu" else 0), reference))

    for loop, it in runners:
        _set_threads(loop, device)
        say(f"{loop.name}: {warmup} warm-up steps, then FLOPs and memory of one step")
        _run(it, warmup)
        _measure_step(loop, it, device)
    sizes = [steps // windows + (i < steps % windows) for i in range(windows)]
    for w, n in enumerate(sizes):
        # odd windows in reverse order: no loop always follows the same one (a loop run
        # after one on more threads meets that one's spinning OpenMP workers)
        for loop, it in runners if w % 2 == 0 else runners[::-1]:
            _set_threads(loop, device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _sync(device)
            start = time.perf_counter()
            images = _run(it, n)
            _sync(device)
            seconds = time.perf_counter() - start
            loop.images_per_s.append(images / seconds)
            loop.step_s.append(seconds / n)
            if device.type == "cuda":
                loop.peak_bytes = max(loop.peak_bytes, torch.cuda.max_memory_allocated(device))
            say(f"window {w + 1}/{windows} {loop.name}: {images / seconds:.1f} img/s")
    torch.set_num_threads(default_threads)
    return BenchResult(
        cfg.preset, machine_name(device), str(device), cfg.batch_size, steps, warmup, windows,
        [loop for loop, _ in runners],
    )  # fmt: skip


def _set_threads(loop: LoopFigures, device: torch.device) -> None:
    if device.type == "cpu":
        torch.set_num_threads(loop.threads)
