"""The hand-written step for fully connected networks gives autograd's losses, weights
and gradients, and is used only where it applies."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from ganforge.config import TrainConfig
from ganforge.losses import LOSSES, build_loss
from ganforge.models import build_models
from ganforge.training.by_hand import ByHandStep, backward, forward, stack_of
from ganforge.training.steps import GANStep, StepOptions, build_step
from tests.training.test_steps import MLP, PLAIN, TINY, _assert_same, _run

CPU = torch.device("cpu")
BY_HAND = dataclasses.replace(PLAIN, joint_d=True, freeze_d=True, by_hand=True)


@pytest.mark.parametrize("loss", ["bce", "hinge", "lsgan"])
def test_by_hand_gives_autograds_losses_and_weights(loss: str) -> None:
    def run(options: StepOptions) -> dict:
        torch.manual_seed(0)
        G, D = build_models(MLP.model_spec())
        step = build_step(
            G, D, LOSSES[loss], CPU, dataclasses.replace(options, lr_g=1e-3, lr_d=1e-3)
        )
        gen = torch.Generator().manual_seed(1)
        losses = []
        for _ in range(6):
            stats = step(
                torch.rand(8, 1, 8, 8, generator=gen) * 2 - 1, torch.randn(8, 8, generator=gen)
            )
            losses += [float(stats["loss/D"]), float(stats["loss/G"])]
        grads = [p.grad.clone() for p in [*G.parameters(), *D.parameters()]]
        return {"losses": losses, "grads": grads, "step": step,
                "state": {**{f"G.{k}": v for k, v in G.state_dict().items()},
                          **{f"D.{k}": v for k, v in D.state_dict().items()}}}  # fmt: skip

    hand, auto = run(BY_HAND), run(dataclasses.replace(PLAIN, freeze_d=True))
    assert isinstance(hand["step"], ByHandStep) and not isinstance(auto["step"], ByHandStep)
    _assert_same(hand, auto, 1e-5)
    for a, b in zip(hand["grads"], auto["grads"], strict=True):  # what the health monitor reads
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    assert hand["step"].statistics()["D(x)"] == pytest.approx(
        float(auto["step"].statistics()["D(x)"]), rel=1e-5
    )


def test_by_hand_follows_n_critic_and_top_k() -> None:
    options = {"n_critic": 2, "top_k": 0.5, "top_k_decay": 0.5, "steps_per_epoch": 1}
    hand = _run(dataclasses.replace(BY_HAND, **options), steps=5, cfg=MLP)
    auto = _run(dataclasses.replace(PLAIN, **options), steps=5, cfg=MLP)
    assert isinstance(hand["step"], ByHandStep)
    assert hand["step"].top_k_fraction() == 0.5  # decayed to its floor after 5 epochs
    _assert_same(hand, auto, 1e-5)
    # G's loss changes only every second step (n_critic 2), as in the general step
    assert hand["losses"][1] == 0.0 and hand["losses"][3] == hand["losses"][5] != 0.0


@pytest.mark.parametrize("kind", [nn.ReLU, nn.Tanh, nn.Sigmoid, lambda: nn.LeakyReLU(0.3)])
@pytest.mark.parametrize("bias", [True, False])
def test_stack_backward_is_autograds(kind: type[nn.Module], bias: bool) -> None:
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(5, 7, bias=bias), kind(), nn.Linear(7, 3, bias=bias), kind())
    net = nn.Module()
    net.stack = lambda: seq  # type: ignore[assignment]
    net.seq = seq
    layers = stack_of(net)
    assert layers is not None
    x = torch.randn(4, 5, requires_grad=True)
    out = seq(x)
    grad = torch.randn_like(out)
    want = torch.autograd.grad(out, [x, *seq.parameters()], grad)
    with torch.no_grad():
        mine, kept = forward(layers, x)
        gx, gparams = backward(layers, kept, grad, params=True, inputs=True)
    torch.testing.assert_close(mine, out)
    for a, b in zip([gx, *gparams], want, strict=True):
        torch.testing.assert_close(a, b)


def _step(cfg: TrainConfig, options: StepOptions = BY_HAND, **kwargs: object) -> GANStep:
    G, D = build_models(cfg.model_spec())
    if "hook" in kwargs:
        D.register_forward_hook(lambda *a: None)
        kwargs.pop("hook")
    return build_step(G, D, kwargs.pop("loss", LOSSES["bce"]), CPU, options, **kwargs)  # type: ignore[arg-type]


def test_by_hand_only_where_it_applies() -> None:
    from ganforge.augment import Augment

    assert isinstance(_step(MLP), ByHandStep)
    bf16 = lambda: torch.autocast("cpu", torch.bfloat16)  # noqa: E731
    general = [
        _step(MLP, dataclasses.replace(BY_HAND, by_hand=False)),  # switched off
        _step(dataclasses.replace(MLP, conditional=True, num_classes=3)),  # class embedding
        _step(TINY),  # convolutions and BatchNorm
        _step(MLP, loss=build_loss("bce", 1.0, 1, 10.0)),  # R1 differentiates D's gradient
        _step(MLP, augment=Augment("translation", 1.0)),
        _step(MLP, autocast=bf16),
        _step(MLP, hook=True),
        _step(MLP, dataclasses.replace(BY_HAND, freeze_d=False)),  # D's G-step gradients
    ]
    assert not any(isinstance(s, ByHandStep) for s in general)


def test_seed_simple_trains_by_hand() -> None:
    from ganforge.config import load_preset
    from ganforge.data import load_sample
    from ganforge.training.build import build_run

    cfg = dataclasses.replace(load_preset("seed-simple"), data="mnist-sample", channels=1)
    parts = build_run(cfg, load_sample(), CPU, say=None)
    assert isinstance(parts.step, ByHandStep)
    assert parts.summary().endswith("backward by hand")  # what `ganforge bench` prints
