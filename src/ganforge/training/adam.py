"""Fused Adam with a lean step: the same update as ``torch.optim.Adam(fused=True)``, with
less Python around its one kernel.

For a small network the fused kernel takes tens of microseconds, and the Python of
``Optimizer.step`` around it (hooks, profiling scope, grouping the tensors by device
and dtype, checks of every option) about as long again or longer: for the tutorial's
fully connected GAN that was about a sixth of a training step on the CPU.
:class:`LeanAdam` calls the kernel directly when the step is a plain one: every
parameter of a group has a gradient and state, all on one device with one dtype, and
no closure, hook, AMSGrad, maximize, capturable, differentiable, tensor learning rate
or gradient scaler is involved. Any other step runs ``torch.optim.Adam``'s own. The
state dict is Adam's, so checkpoints load into either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import optimizer

# Adam's options that the lean step does not handle (any one set: Adam's own step).
_NOT_LEAN = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay")


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` whose plain steps call the fused kernel directly
    (see the module's docstring); bit for bit the same parameters and state."""

    def __init__(self, params: Iterable[Any], lr: float, **options: Any) -> None:
        super().__init__(params, lr, fused=True, **options)

    def _lean_lists(self, group: dict[str, Any]) -> tuple[list[Tensor], ...] | None:
        """(params, grads, exp_avgs, exp_avg_sqs, steps) of ``group`` when its step can be
        lean, else None."""
        if any(group.get(k) for k in _NOT_LEAN) or isinstance(group["lr"], Tensor):
            return None
        params: list[Tensor] = group["params"]
        grads, avgs, sqs, steps = [], [], [], []
        device, dtype = params[0].device, params[0].dtype
        for p in params:
            g, state = p.grad, self.state.get(p)
            if g is None or not state or g.is_sparse or p.device != device or p.dtype != dtype:
                return None
            grads.append(g)
            avgs.append(state["exp_avg"])
            sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        return params, grads, avgs, sqs, steps

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One Adam update; a plain one straight through the fused kernel."""
        if closure is not None or self._hooked() or getattr(self, "grad_scale", None) is not None:
            return _adam_step(self, closure)
        lists = [self._lean_lists(group) for group in self.param_groups]
        if any(x is None for x in lists):
            return _adam_step(self, closure)
        for group, each in zip(self.param_groups, lists, strict=True):
            params, grads, avgs, sqs, steps = each  # type: ignore[misc]
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            torch._fused_adam_(
                params, grads, avgs, sqs, [], steps, lr=group["lr"], beta1=beta1, beta2=beta2,
                weight_decay=group["weight_decay"], eps=group["eps"], amsgrad=False,
                maximize=False, grad_scale=None, found_inf=None,
            )  # fmt: skip
        return None

    def _hooked(self) -> bool:
        """Whether a step hook is registered, on this optimizer or on every one."""
        return bool(
            self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks
            or optimizer._global_optimizer_pre_hooks or optimizer._global_optimizer_post_hooks
        )  # fmt: skip

    step.hooked = True  # type: ignore[attr-defined]  # Optimizer's profiling wrapper: not on the lean path

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop the gradients (or zero them with ``set_to_none=False``)."""
        if not set_to_none:
            return super().zero_grad(set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None


def _adam_step(opt: LeanAdam, closure: Callable[[], float] | None) -> float | None:
    """``torch.optim.Adam``'s own step for ``opt``, with the hooks and profiling scope every
    optimizer's step has."""
    step = torch.optim.Adam.step
    if not getattr(step, "hooked", False):
        step = optimizer.Optimizer.profile_hook_step(step)
    return step(opt, closure)


def make_adam(
    params: Iterable[Any], lr: float, betas: tuple[float, float], options: dict[str, Any]
) -> torch.optim.Adam:
    """``torch.optim.Adam`` with ``options`` (:func:`ganforge.training.speed.adam_options`);
    with ``lean`` a :class:`LeanAdam`, except capturable (CUDA graphs): fused Adam then."""
    rest = {k: v for k, v in options.items() if k != "lean"}
    if options.get("lean") and not options.get("capturable"):
        return LeanAdam(params, lr, betas=betas, **{k: v for k, v in rest.items() if k != "fused"})
    return torch.optim.Adam(params, lr, betas=betas, **rest)
