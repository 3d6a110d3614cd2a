"""Training speed on a device: the CPU thread count (chosen by timing), and the fast paths
(fused Adam, torch.compile, CUDA graphs) each device supports."""

from __future__ import annotations

import copy
import os
import shutil
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from ganforge.config import choices
from ganforge.cores import usable_cores
from ganforge.errors import ConfigError

if TYPE_CHECKING:
    from ganforge.data import BatchLoader


def choose_threads(requested: int, models: list[nn.Module]) -> int:
    """CPU threads without timing (where :class:`ThreadTuner` cannot time a step): as asked,
    else 1 for small fully connected models (threading overhead dominates them), else every
    core this process may use."""
    if requested > 0:
        return requested
    conv = any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for n in models for m in n.modules())
    params = sum(p.numel() for m in models for p in m.parameters())
    return 1 if (not conv and params < 2_000_000) else usable_cores()


class Throwaway:
    """One step of a deep copy of ``step`` (its networks, optimisers, EMA, augmentation) on
    the arguments ``inputs()`` gives, with the CPU random state restored afterwards: timing
    it changes nothing the run computes. The copy is made on the first call after
    :meth:`release` (or ever), and dropped by it."""

    def __init__(self, step: Callable[..., object], inputs: Callable[[], tuple]) -> None:
        self.step, self.inputs = step, inputs
        self._copy: Callable[..., object] | None = None
        self._args: tuple | None = None

    def __call__(self) -> object:
        if self._args is None:
            self._args = self.inputs()
        if self._copy is None:
            self._copy = copy.deepcopy(self.step)
        with torch.random.fork_rng(devices=[]):
            return self._copy(*self._args)

    def release(self) -> None:
        """Free the copy (until the next call)."""
        self._copy = None


SLOW_STEP_S = 1.0  # a step at least this long (each count) is timed in one round only


class ThreadTuner:
    """The CPU thread count, chosen by timing: before the first step, ``probe`` (one step
    whose results are thrown away, see :class:`Throwaway`) is timed at each of
    ``candidates`` threads and the fastest kept, with one line saying so. Then each
    :meth:`tick` (one per training step) notes the step time; when the median over a
    window drifts by more than ``drift`` times from the first window's (another job arrived
    or left), the candidates are timed again, with one line.

    ``requested`` > 0 (``--set threads=N``) wins: no timing. With one candidate (one usable
    core) or no probe nothing is timed either."""

    def __init__(
        self,
        requested: int,
        probe: Callable[[], object] | None,
        candidates: tuple[int, ...] | None = None,
        *,
        fallback: int = 1,
        say: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
        rounds: int = 5,
        window: int = 30,
        window_s: float = 2.0,
        drift: float = 1.5,
    ) -> None:
        cores = usable_cores()
        self.candidates = candidates or tuple(sorted({1, cores}))
        self.requested, self.probe, self.fallback = requested, probe, fallback
        self.say = say or (lambda line: None)
        self.clock, self.rounds, self.drift = clock, rounds, drift
        self.window, self.window_s = window, window_s
        self.threads = 0  # chosen so far; 0: not yet
        self.checks = 0  # timings done
        self.timings: dict[int, float] = {}  # the last timing: threads -> seconds per step
        self._last: float | None = None  # clock at the previous tick
        self._times: list[float] = []  # step times of the current window
        self._window_start = 0.0
        self._baseline: float | None = None  # median step time of the first window
        self._drifted = 1.0  # the last window's median over the baseline

    @property
    def timed(self) -> bool:
        """Whether this tuner chooses by timing (nothing asked, a probe, several candidates)."""
        return self.requested <= 0 and self.probe is not None and len(self.candidates) > 1

    def choose(self) -> int:
        """Set and return the thread count: as asked, or the fastest by timing the probe."""
        if self.requested > 0 or not self.timed:
            self.threads = self.requested if self.requested > 0 else self.fallback
            torch.set_num_threads(self.threads)
            return self.threads
        self.timings = self._time_candidates()
        previous, self.threads = self.threads, min(self.timings, key=self.timings.__getitem__)
        torch.set_num_threads(self.threads)
        self.checks += 1
        figures = ", ".join(
            f"{n} thread{'s' * (n > 1)}: {s * 1e3:.1f} ms/step" for n, s in self.timings.items()
        )
        why = f"step time {self._drifted:.1f}x the earlier steps': re-timed; " if previous else ""
        self.say(f"threads: {self.threads} ({why}{figures})")
        return self.threads

    def _time_candidates(self) -> dict[int, float]:
        """Seconds per probe step at each candidate count: one warm-up each, then rounds
        taking turns (so a change of load meanwhile touches all alike) until one count is
        twice as fast as another, or five rounds (three when they take over 3 s, one for
        steps of a second or more, whose own length dwarfs the noise); medians."""
        assert self.probe is not None
        times: dict[int, list[float]] = {n: [] for n in self.candidates}
        medians: dict[int, float] = {}
        for n in self.candidates:
            torch.set_num_threads(n)
            self.probe()
        start = self.clock()
        for done in range(self.rounds):
            for n in self.candidates:
                torch.set_num_threads(n)
                t0 = self.clock()
                self.probe()
                times[n].append(self.clock() - t0)
            medians = {n: statistics.median(ts) for n, ts in times.items()}
            if max(medians.values()) > 2 * min(medians.values()):  # a clear winner already
                break
            if min(medians.values()) > SLOW_STEP_S:  # steps of a second or more: one round
                break
            if done >= 2 and self.clock() - start > 3.0:  # slow steps: three rounds suffice
                break
        release = getattr(self.probe, "release", None)
        if release is not None:
            release()  # a throwaway copy of the step: free it until the next timing
        return medians

    def keep(self, threads: int) -> bool:
        """Start with ``threads`` (a resumed run's count, from its checkpoint) instead of
        timing before the first step, so a resumed run computes what its uninterrupted
        twin would; the step time is still watched and re-timed on drift. Only for a timed
        tuner and a count this process can use; return whether it was kept."""
        if not self.timed or threads not in self.candidates:
            return False
        self.threads = threads
        torch.set_num_threads(threads)
        self._last = None  # the next tick starts the first window
        self.say(f"threads: {threads} (the run's count when it was saved; re-timed on drift)")
        return True

    def tick(self) -> None:
        """Call once before each training step: the first call chooses; later ones watch
        the time between calls (one step) and re-time when it drifts."""
        now = self.clock()
        if self.threads == 0:
            self.choose()
            self._last = self._window_start = self.clock()
            return
        if not self.timed:
            return
        if self._last is None:
            self._last = self._window_start = now
            return
        self._times.append(now - self._last)
        self._last = now
        if len(self._times) < self.window or now - self._window_start < self.window_s:
            return
        median = statistics.median(self._times)
        self._times, self._window_start = [], now
        if self._baseline is None:
            self._baseline = median
        elif not 1 / self.drift < median / self._baseline < self.drift:
            self._drifted = median / self._baseline
            self.choose()
            self._baseline = None  # the next window sets the new normal
            self._last = self._window_start = self.clock()


def run_thread_tuner(
    requested: int,
    z_dim: int,
    device: torch.device,
    step: Callable[..., object],
    loader: BatchLoader,
    fallback: int,
    *,
    timed: bool = True,
    say: Callable[[str], None] | None = None,
) -> ThreadTuner:
    """The thread tuner of a training run: on the CPU it times throwaway copies of ``step``
    on the first batch (``timed`` False, e.g. under DDP or torch.compile: ``fallback``);
    on other devices it leaves the thread count as it is."""
    if device.type != "cpu":
        current = torch.get_num_threads()
        return ThreadTuner(0, None, (current,), fallback=current)

    def first_batch() -> tuple:
        real, labels = loader.batch(0, 0)
        z = torch.randn(real.shape[0], z_dim, generator=torch.Generator().manual_seed(0))
        return real, z, labels

    probe = Throwaway(step, first_batch) if timed else None
    return ThreadTuner(requested, probe, fallback=fallback, say=say)


ADAM_IMPLS = choices("adam_impl")  # auto | lean | fused | foreach | for-loop


def adam_options(device: torch.device, impl: str = "auto", capturable: bool = False) -> dict:
    """Keyword arguments for ``torch.optim.Adam`` (and ``lean`` for
    :func:`ganforge.training.adam.make_adam`): ``auto`` is ``lean`` on CPU and CUDA, fused
    Adam (one kernel over all parameters; 5x faster than foreach for the 64-pixel DCGAN on
    the CPU, docs/BENCHMARKS.md) with its kernel called directly, and PyTorch's default
    elsewhere; ``fused`` is PyTorch's own fused Adam. ``capturable`` for CUDA graphs."""
    if impl not in ADAM_IMPLS:
        raise ConfigError(f"adam_impl must be one of {', '.join(ADAM_IMPLS)}, got '{impl}'")
    if impl == "auto":
        impl = "lean" if device.type in ("cpu", "cuda") else "default"
    options: dict = {
        "lean": {"fused": True, "lean": True},
        "fused": {"fused": True},
        "foreach": {"foreach": True},
        "for-loop": {"foreach": False},
    }.get(impl, {})
    if capturable:
        options["capturable"] = True
    return options


def compile_problem(device: torch.device) -> str | None:
    """Why torch.compile cannot run on ``device`` here, or None when it can."""
    try:
        import torch._dynamo
    except ImportError:  # pragma: no cover - every supported PyTorch has it
        return "this PyTorch has no torch.compile"
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python version"
    if device.type == "cpu":
        cxx = os.environ.get("CXX", "")
        if not any(shutil.which(c) for c in (cxx, "g++", "clang++", "c++") if c):
            return "torch.compile needs a C++ compiler on the CPU (install g++)"
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            return "torch.compile needs Triton on CUDA (pip install triton)"
    if device.type == "mps":
        return "torch.compile of training steps is not supported on MPS"
    return None


def cuda_graphs_problem(device: torch.device) -> str | None:
    """Why CUDA graphs cannot be used on ``device``, or None when they can."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA GPU, and this run is on {device.type}"
    return None
