"""The NaN guard: the first non-finite loss, its step and network, read once per check."""

from __future__ import annotations

import math

import torch

from ganforge.training.guard import LossGuard, NonFinite


def _guard(losses: list[tuple[float, float]], first_step: int = 1) -> LossGuard:
    guard = LossGuard()
    for step, (d, g) in enumerate(losses, first_step):
        guard.add(step, torch.tensor(d), torch.tensor(g))
    return guard


def test_finite_losses_pass_and_are_forgotten() -> None:
    guard = _guard([(0.7, 0.6), (0.5, 1.2)])
    assert len(guard) == 2
    assert guard.check() is None
    assert len(guard) == 0 and guard.check() is None  # nothing kept: nothing to read


def test_the_first_non_finite_loss_names_its_step_network_and_value() -> None:
    guard = _guard([(0.7, 0.6), (0.5, math.inf), (math.nan, math.nan)], first_step=11)
    assert guard.check() == NonFinite(12, "G", math.inf)
    bad = _guard([(0.7, 0.6), (-math.inf, math.nan)]).check()
    assert bad == NonFinite(2, "D", -math.inf)  # D before G within a step
    nan = _guard([(math.nan, 0.1)]).check()
    assert nan is not None and nan.network == "D" and math.isnan(nan.value)


def test_clear_drops_the_kept_steps() -> None:
    guard = _guard([(math.nan, 0.6)])
    guard.clear()
    assert len(guard) == 0 and guard.check() is None
