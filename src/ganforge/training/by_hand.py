"""The training step for fully connected networks, with their backward written by hand.

For a small fully connected GAN (the tutorial's first program) a training step on the
CPU is mostly not its matrix products: it is autograd recording each layer, running
the graph backwards node by node, and accumulating each gradient. Where G and D are
plain stacks of linear layers and elementwise activations, :class:`ByHandStep` runs
the same math without that graph: each pass through a network is its matrix products
and activations, and each backward their derivatives, written out:

- a linear layer ``y = x W^T + b``: ``dW = g^T x``, ``db = sum(g)``, ``dx = g W``;
- an activation: its derivative from the activation's own output (LeakyReLU, ReLU,
  Tanh, Sigmoid), so nothing else needs to be kept.

The loss is still any :class:`ganforge.losses.Loss`: its closed-form gradient with
respect to D's logits where it has one (``d_grad``, ``g_grad``: BCE), else autograd
differentiates it with respect to the logits alone (a graph of a few nodes); the step
carries that gradient back through the networks by hand. The parameters, their gradients and the
optimisers are the usual ones, so everything that reads them (the health monitor's
gradient norms, checkpoints, the EMA) sees no difference. The losses and weights are
those of :class:`ganforge.training.steps.GANStep` up to rounding (tested).

It applies when every network is such a stack (:func:`stack_of`), in fp32, in one
process, with D frozen in the G step (``freeze_d``) and no penalty, augmentation,
conditioning, torch.compile or CUDA graphs
(:func:`by_hand_problem`); the switch is ``by_hand`` (``--set by_hand=false``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.augment import Augment
from ganforge.losses import Loss
from ganforge.training.steps import GANStep, StepOptions, StepParts, altered

# The elementwise activations the hand-written backward knows, by the name it uses.
_ACTIVATIONS: dict[type[nn.Module], str] = {
    nn.LeakyReLU: "leaky_relu", nn.ReLU: "relu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
}  # fmt: skip


@dataclass(frozen=True)
class Layer:
    """One layer of a stack: ``linear`` (with its weight and bias) or an activation."""

    kind: str  # linear | leaky_relu | relu | tanh | sigmoid
    weight: Tensor | None = None
    bias: Tensor | None = None
    slope: float = 0.0  # LeakyReLU's negative slope


def stack_of(net: nn.Module) -> list[Layer] | None:
    """The layers of ``net`` as a stack the hand-written step can run: ``net.stack()``
    (the layers its forward applies to its input flattened to ``[B, features]``; None
    when the forward does more, e.g. a class embedding), each a Linear, one of the known
    activations, Flatten or Identity, with no hook and no parametrisation. None when
    ``net`` is not such a stack."""
    stack = getattr(net, "stack", None)
    seq = stack() if callable(stack) else None
    if seq is None:
        return None
    layers: list[Layer] = []
    for m in net.modules():  # hooks and parametrisations run only through forward()
        if altered(m) or m._backward_hooks or getattr(m, "_backward_pre_hooks", None):
            return None
    for m in seq:
        if isinstance(m, nn.Flatten | nn.Identity):
            continue
        if isinstance(m, nn.Linear):
            layers.append(Layer("linear", m.weight, m.bias))
        elif type(m) in _ACTIVATIONS:
            slope = m.negative_slope if isinstance(m, nn.LeakyReLU) else 0.0
            layers.append(Layer(_ACTIVATIONS[type(m)], slope=slope))
        else:
            return None
    if not layers or any(p.dtype != torch.float32 for p in net.parameters()):
        return None
    return layers


def by_hand_problem(
    G: nn.Module, D: nn.Module, loss: Loss, options: StepOptions, *,
    autocast: Callable[[], AbstractContextManager] = contextlib.nullcontext,
    augment: Augment | None = None, wrapped: bool = False,
) -> str | None:  # fmt: skip
    """Why the hand-written step cannot train ``G`` and ``D`` here, or None when it can."""
    if stack_of(G) is None or stack_of(D) is None:
        return "G and D are not both plain fully connected stacks"
    if loss.penalties:
        return "a penalty differentiates D's gradient"
    if not options.freeze_d:
        return "freeze_d is off: D's weight gradients in the G step need the general step"
    if augment is not None or options.mismatch_classes or wrapped:
        return "augmentation, the mismatch term and several ranks need the general step"
    if options.compile or options.cuda_graphs:
        return "torch.compile and CUDA graphs trace the general step"
    with autocast():
        if torch.is_autocast_enabled("cpu") or torch.is_autocast_enabled("cuda"):
            return "mixed precision casts inside each layer"
    return None


def forward(layers: Sequence[Layer], x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """``x`` through ``layers`` (no autograd graph): the output, and what the backward
    needs: each linear layer's input and each activation's output, in order."""
    kept: list[Tensor] = []
    for layer in layers:
        if layer.kind == "linear":
            kept.append(x)
            w = layer.weight
            assert w is not None
            x = x.mm(w.t()) if layer.bias is None else torch.addmm(layer.bias, x, w.t())
        else:
            if layer.kind == "leaky_relu":
                x = F.leaky_relu(x, layer.slope)
            elif layer.kind == "relu":
                x = torch.relu(x)
            elif layer.kind == "tanh":
                x = torch.tanh(x)
            else:
                x = torch.sigmoid(x)
            kept.append(x)
    return x, kept


def backward(
    layers: Sequence[Layer], kept: list[Tensor], grad: Tensor, *, params: bool, inputs: bool
) -> tuple[Tensor | None, list[Tensor | None]]:
    """The gradient ``grad`` of the output of :func:`forward` carried back through
    ``layers``: the gradient of the input (when ``inputs``) and of each linear layer's
    weight and bias, in the order of ``layers`` (when ``params``; else Nones)."""
    grads: list[Tensor | None] = []
    g = grad
    first_linear = next(i for i, layer in enumerate(layers) if layer.kind == "linear")
    for i in range(len(layers) - 1, -1, -1):
        layer, saved = layers[i], kept[i]
        if layer.kind == "linear":
            w = layer.weight
            assert w is not None
            if params:
                if layer.bias is not None:
                    grads.append(g.sum(0))
                grads.append(g.t().mm(saved))
            elif layer.bias is not None:
                grads += [None, None]
            else:
                grads.append(None)
            if i == first_linear and not inputs:
                return None, grads[::-1]
            g = g.mm(w)
        elif layer.kind == "leaky_relu":
            g = torch.ops.aten.leaky_relu_backward(g, saved, layer.slope, True)
        elif layer.kind == "relu":
            g = torch.ops.aten.threshold_backward(g, saved, 0)
        elif layer.kind == "tanh":
            g = torch.ops.aten.tanh_backward(g, saved)
        else:
            g = torch.ops.aten.sigmoid_backward(g, saved)
    return g, grads[::-1]


def _params(layers: Sequence[Layer]) -> list[Tensor]:
    """Each linear layer's weight and bias, in the order :func:`backward` returns them."""
    out: list[Tensor] = []
    for layer in layers:
        if layer.kind == "linear":
            assert layer.weight is not None
            out.append(layer.weight)
            if layer.bias is not None:
                out.append(layer.bias)
    return out


class ByHandStep(GANStep):
    """:class:`GANStep` for fully connected G and D with each network's backward written
    by hand (see the module's docstring); built by
    :func:`ganforge.training.steps.build_step` where :func:`by_hand_problem` finds none."""

    by_hand = True

    def __init__(self, parts: StepParts, options: StepOptions, d_steps: int = 0) -> None:
        super().__init__(parts, options, d_steps)
        g_layers, d_layers = stack_of(self.plain_G), stack_of(self.plain_D)
        assert g_layers is not None and d_layers is not None, "not fully connected stacks"
        self.g_layers, self.d_layers = g_layers, d_layers
        self._g_params, self._d_weights = _params(g_layers), _params(d_layers)

    def step(self, real: Tensor, z: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """One D update and, every ``n_critic``-th call, one G update (see GANStep.step)."""
        g_turn = (self.d_steps + 1) % self.n_critic == 0
        flat_real = real.reshape(real.shape[0], -1)
        with torch.no_grad():
            fake, g_kept = forward(self.g_layers, z)
            # D step: real and fake through D as one batch (a stack treats images alone).
            logits, d_kept = forward(self.d_layers, torch.cat([flat_real, fake]))
            real_logits, fake_logits = logits.view(-1).chunk(2)
        if self.loss.d_grad is not None:
            loss_d, grad = self.loss.d_grad(real_logits, fake_logits)
        else:
            loss_d, grad = self._loss_and_grad(self.loss.d, real_logits, fake_logits)
        self.opt_d.zero_grad(set_to_none=True)
        with torch.no_grad():
            _, d_grads = backward(
                self.d_layers, d_kept, grad.view(-1, 1), params=True, inputs=False
            )
        for p, g in zip(self._d_weights, d_grads, strict=True):
            p.grad = g
        self.opt_d.step()
        self.d_steps += 1
        if g_turn:
            self._last_g = self._g_step_by_hand(fake, g_kept)
        self._logits = (real_logits, fake_logits)
        return {
            "loss/D": loss_d,
            **(self._last_g or {"loss/G": torch.zeros_like(loss_d)}),
        }

    def _g_step_by_hand(self, fake: Tensor, g_kept: list[Tensor]) -> dict[str, Tensor]:
        """G's update on the same fake, through the updated D (whose weights get no gradient)."""
        with torch.no_grad():
            logits, d_kept = forward(self.d_layers, fake)
        if self.loss.g_grad is not None and self.top_k_fraction() >= 1:
            loss_g, grad = self.loss.g_grad(logits.view(-1))
        else:
            loss_g, grad = self._loss_and_grad(self._g_loss_of_logits, logits.view(-1))
        self.opt_g.zero_grad(set_to_none=True)
        with torch.no_grad():
            grad_fake, _ = backward(
                self.d_layers, d_kept, grad.view(-1, 1), params=False, inputs=True
            )
            assert grad_fake is not None
            _, g_grads = backward(self.g_layers, g_kept, grad_fake, params=True, inputs=False)
        for p, g in zip(self._g_params, g_grads, strict=True):
            p.grad = g
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(self.plain_G)
        return {"loss/G": loss_g}

    def _g_loss_of_logits(self, logits: Tensor) -> Tensor:
        """G's loss on D's logits of the fakes, with top-k when it is on."""
        return self.loss.g(self.top_k(logits))

    @staticmethod
    def _loss_and_grad(fn: Callable[..., Tensor], *logits: Tensor) -> tuple[Tensor, Tensor]:
        """``fn(*logits)`` and its gradient with respect to the logits (concatenated): the
        one part of the step autograd differentiates."""
        leaves = [x.detach().requires_grad_() for x in logits]
        with torch.enable_grad():
            loss = fn(*leaves)
            grads = torch.autograd.grad(loss, leaves)
        return loss.detach(), grads[0] if len(grads) == 1 else torch.cat(grads)
