"""LeanAdam: bit for bit fused Adam, with its lean path taken where it should be."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from ganforge.training import adam as adammod
from ganforge.training.adam import LeanAdam, make_adam


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.LeakyReLU(0.1), nn.Linear(5, 1))


def _train(opt_of: Any, steps: int = 6, lr_change_at: int = 3) -> tuple[nn.Module, Any]:
    net = _net()
    opt = opt_of(net.parameters())
    gen = torch.Generator().manual_seed(1)
    for i in range(steps):
        if i == lr_change_at:
            for group in opt.param_groups:
                group["lr"] *= 0.5  # as a rollback halves it
        opt.zero_grad(set_to_none=True)
        net(torch.randn(4, 6, generator=gen)).square().mean().backward()
        opt.step()
    return net, opt


OPTIONS = {"betas": (0.5, 0.999), "weight_decay": 0.01}


def test_lean_steps_are_bit_for_bit_fused_adams() -> None:
    lean, lean_opt = _train(lambda p: LeanAdam(p, 1e-2, **OPTIONS))
    plain, plain_opt = _train(lambda p: torch.optim.Adam(p, 1e-2, fused=True, **OPTIONS))
    for a, b in zip(lean.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)
    lean_state, plain_state = lean_opt.state_dict(), plain_opt.state_dict()
    assert lean_state["param_groups"] == plain_state["param_groups"]
    for key, state in lean_state["state"].items():
        for name, value in state.items():
            assert torch.equal(value, plain_state["state"][key][name]), name


def test_the_lean_path_is_taken_after_the_first_step(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    adam_step = adammod._adam_step
    monkeypatch.setattr(adammod, "_adam_step", lambda o, c: calls.append(1) or adam_step(o, c))
    _train(lambda p: LeanAdam(p, 1e-2), steps=5)
    assert len(calls) == 1  # the first step creates the state through Adam's own step


def test_a_parameter_without_gradient_or_a_hook_takes_adams_own_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    adam_step = adammod._adam_step
    monkeypatch.setattr(adammod, "_adam_step", lambda o, c: calls.append(1) or adam_step(o, c))
    net = _net()
    opt = LeanAdam(net.parameters(), 1e-2)
    twin = _net()
    plain = torch.optim.Adam(twin.parameters(), 1e-2, fused=True)
    seen = []
    for i in range(4):
        for model, o in ((net, opt), (twin, plain)):
            o.zero_grad()
            model(torch.ones(2, 6) * i).sum().backward()
            if i == 2:
                model[2].bias.grad = None  # this step leaves one parameter alone
            o.step()
    handle = opt.register_step_post_hook(lambda *a: seen.append(1))
    opt.step()  # the gradients of step 3 once more, in both
    plain.step()
    handle.remove()
    assert len(calls) == 3 and seen == [1]  # first step, the missing gradient, the hook
    for a, b in zip(net.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)


def test_lean_state_loads_into_adam_and_back() -> None:
    _, lean_opt = _train(lambda p: LeanAdam(p, 1e-2))
    net = _net()
    plain = torch.optim.Adam(net.parameters(), 1e-2, fused=True)
    plain.load_state_dict(lean_opt.state_dict())
    again = LeanAdam(_net().parameters(), 1e-2)
    again.load_state_dict(plain.state_dict())
    assert again.state_dict()["state"].keys() == lean_opt.state_dict()["state"].keys()


@pytest.mark.parametrize(
    ("options", "lean"),
    [({"fused": True, "lean": True}, True), ({"fused": True}, False),
     ({"fused": True, "lean": True, "capturable": True}, False), ({"foreach": True}, False),
     ({}, False)],
)  # fmt: skip
def test_make_adam_is_lean_where_asked_and_possible(options: dict, lean: bool) -> None:
    if options.get("capturable"):
        pytest.skip("capturable fused Adam needs CUDA") if not torch.cuda.is_available() else None
    opt = make_adam(_net().parameters(), 1e-3, (0.5, 0.999), options)
    assert isinstance(opt, torch.optim.Adam) and isinstance(opt, LeanAdam) is lean
    assert opt.defaults["betas"] == (0.5, 0.999)
