"""CPU thread count by timing, and which fast paths (Adam, compile, CUDA graphs) a device has."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError
from ganforge.models import build_models
from ganforge.run import checkpoint as ckpt
from ganforge.training import speed as devmod
from ganforge.training.loop import Trainer
from ganforge.training.speed import (
    ThreadTuner,
    adam_options,
    choose_threads,
    compile_problem,
    cuda_graphs_problem,
)
from tests.training.helpers import tiny

CPU = torch.device("cpu")


def test_threads_one_for_small_mlps_all_cores_for_conv_models() -> None:
    mlp = list(
        build_models(TrainConfig(model="mlp", image_size=28, channels=1, z_dim=64).model_spec())
    )
    conv = list(build_models(TrainConfig(model="dcgan", image_size=28, channels=1).model_spec()))
    assert choose_threads(0, mlp) == 1
    assert choose_threads(0, conv) == len(devmod.os.sched_getaffinity(0))
    assert choose_threads(3, mlp) == 3


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Training sees two usable cores (whatever taskset allows), so it times 1 and 2 threads;
    the test's thread count is restored afterwards."""
    monkeypatch.setattr(devmod, "usable_cores", lambda: 2)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    trainer.run()
    return {**trainer.G.state_dict(), **{f"D.{k}": v for k, v in trainer.D.state_dict().items()}}


def test_a_run_times_the_thread_counts_without_changing_what_it_computes(
    tmp_path: Path, two_cores: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny(
        "quick", steps=4, log_every=0, ckpt_every=0, augment="translation,cutout", threads=0
    )  # threads 0: timed, the default
    timed = Trainer(cfg, out=tmp_path / "timed")
    # the first choice is what this test is about: a noisy machine's drift would re-time
    # (and may switch) mid-run; the drift has its own test on a simulated clock below
    timed.threads.drift = math.inf
    timed_weights = _weights(timed)
    err = capsys.readouterr().err
    line = re.search(
        r"threads: ([12]) \(1 thread: ([0-9.]+) ms/step, 2 threads: ([0-9.]+) ms/step\)", err
    )
    assert line is not None, err
    chosen, one, two = int(line.group(1)), float(line.group(2)), float(line.group(3))
    timings = timed.threads.timings  # seconds per step, before the line's rounding to 0.1 ms
    assert chosen == min(timings, key=timings.__getitem__)  # the faster one is kept
    assert (one, two) == (round(timings[1] * 1e3, 1), round(timings[2] * 1e3, 1))
    assert timed.threads.threads == chosen and timed.threads.checks == 1
    assert timed.threads.probe._copy is None  # the throwaway copy is freed after timing
    # the same run told the count: no timing, and bit-for-bit the same weights and RNG use
    fixed = Trainer(dataclasses.replace(cfg, threads=chosen), out=tmp_path / "fixed")
    fixed_weights = _weights(fixed)
    assert "threads:" not in capsys.readouterr().err and fixed.threads.checks == 0
    assert torch.get_num_threads() == chosen
    for key, value in timed_weights.items():
        assert torch.equal(value, fixed_weights[key]), key
    assert torch.equal(timed.noise.get_state(), fixed.noise.get_state())


def test_a_resumed_run_keeps_its_thread_count_and_computes_what_its_twin_does(
    tmp_path: Path, two_cores: None, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny("quick", steps=6, log_every=0, ckpt_every=0, threads=0)  # timed: the default
    first = Trainer(dataclasses.replace(cfg, steps=3), out=tmp_path / "split")
    first.threads.drift = math.inf  # the first choice is kept; drift has its own test
    first.run()
    chosen = first.threads.threads
    assert chosen in (1, 2) and first.threads.checks == 1
    saved = ckpt.load(tmp_path / "split" / "checkpoints" / "last.pt")
    assert saved["threads"] == chosen  # the checkpoint says which count computed it
    capsys.readouterr()
    torch.set_num_threads(3 - chosen)  # the resuming process starts at the other count
    resumed = Trainer(None, resume=tmp_path / "split", overrides={"steps": 6})
    resumed_weights = _weights(resumed)
    err = capsys.readouterr().err
    assert f"threads: {chosen} (the run's count when it was saved; re-timed on drift)" in err
    assert resumed.threads.checks == 0 and torch.get_num_threads() == chosen  # nothing timed
    whole = Trainer(dataclasses.replace(cfg, threads=chosen), out=tmp_path / "whole")
    for key, value in _weights(whole).items():
        assert torch.equal(value, resumed_weights[key]), key
    # a count this process cannot use (a checkpoint from a bigger machine) is timed anew
    tuner = ThreadTuner(0, lambda: None, (1, 2))
    assert not tuner.keep(8) and tuner.threads == 0
    assert not ThreadTuner(2, lambda: None, (1, 2)).keep(1)  # --set threads=N wins


class _Machine:
    """A simulated CPU: a step takes ``ms[threads]`` milliseconds of its clock, times ``load``."""

    def __init__(self, ms: dict[int, float]) -> None:
        self.now, self.ms, self.load = 0.0, ms, 1.0

    def clock(self) -> float:
        return self.now

    def step(self) -> None:
        self.now += self.ms[torch.get_num_threads()] * self.load / 1e3


def test_a_drift_in_step_time_re_times_and_switches(two_cores: None) -> None:
    machine, lines = _Machine({1: 3.0, 2: 2.0}), []
    tuner = ThreadTuner(
        0, machine.step, (1, 2), say=lines.append, clock=machine.clock, window=10, window_s=0.0
    )
    for _ in range(40):  # quiet: 2 threads is faster, and stays chosen
        tuner.tick()
        machine.step()
    assert lines == ["threads: 2 (1 thread: 3.0 ms/step, 2 threads: 2.0 ms/step)"]
    machine.ms, machine.load = {1: 3.5, 2: 6.0}, 1.0  # another job takes a core
    for _ in range(30):
        tuner.tick()
        machine.step()
    assert tuner.threads == 1 and tuner.checks == 2
    assert lines[1] == (
        "threads: 1 (step time 3.0x the earlier steps': re-timed; "
        "1 thread: 3.5 ms/step, 2 threads: 6.0 ms/step)"
    )
    for _ in range(50):  # a steady step time: no more timing
        tuner.tick()
        machine.step()
    assert tuner.checks == 2


@pytest.mark.parametrize(
    ("ms", "faster", "rounds"),
    [
        ({1: 1.0, 2: 5.0}, 1, 1),  # a clear winner: one round
        ({1: 1500.0, 2: 1200.0}, 2, 1),  # steps of a second or more: one round
        ({1: 3.0, 2: 2.5}, 2, 5),  # close and quick: all five rounds
    ],
)
def test_timing_takes_as_many_rounds_as_it_needs(
    two_cores: None, ms: dict[int, float], faster: int, rounds: int
) -> None:
    machine, calls = _Machine(ms), []

    def probe() -> None:
        calls.append(torch.get_num_threads())
        machine.step()

    tuner = ThreadTuner(0, probe, (1, 2), clock=machine.clock)
    assert tuner.choose() == faster
    assert calls == [1, 2] + [1, 2] * rounds  # a warm-up step each, then the timed rounds


def test_threads_asked_for_win_without_timing(two_cores: None) -> None:
    calls = []
    tuner = ThreadTuner(3, lambda: calls.append(1), (1, 2))
    for _ in range(5):
        tuner.tick()
    assert calls == [] and tuner.threads == 3 and torch.get_num_threads() == 3


def test_adam_options() -> None:
    assert adam_options(CPU) == {"fused": True, "lean": True}
    assert adam_options(torch.device("cuda")) == {"fused": True, "lean": True}
    assert adam_options(torch.device("mps")) == {}
    assert adam_options(CPU, "fused") == {"fused": True}
    assert adam_options(CPU, "foreach") == {"foreach": True}
    assert adam_options(CPU, "for-loop") == {"foreach": False}
    assert adam_options(torch.device("cuda"), capturable=True) == {
        "fused": True,
        "lean": True,
        "capturable": True,
    }
    with pytest.raises(
        ConfigError, match="adam_impl must be one of auto, lean, fused, foreach, for-loop"
    ):
        adam_options(CPU, "sgd")


def test_compile_and_cuda_graph_support(monkeypatch: pytest.MonkeyPatch) -> None:
    assert compile_problem(torch.device("mps")) == (
        "torch.compile of training steps is not supported on MPS"
    )
    assert cuda_graphs_problem(CPU) == "CUDA graphs need a CUDA GPU, and this run is on cpu"
    assert cuda_graphs_problem(torch.device("cuda")) is None
    monkeypatch.setattr(devmod.shutil, "which", lambda name: None)
    assert "needs a C++ compiler" in str(compile_problem(CPU))
    monkeypatch.setattr(devmod.shutil, "which", lambda name: "/usr/bin/g++")
    assert compile_problem(CPU) is None
