"""Each fast path of the training step gives the plain path's losses.

Tolerances: exactly equal where the arithmetic is the same (freezing D in the G
step; CUDA graphs refused on the CPU); within 1e-5 relative where only the
order of floating-point operations changes (channels_last, fused or foreach
Adam, a compiled step) over a few steps of a tiny DCGAN with BatchNorm.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from ganforge.config import TrainConfig
from ganforge.losses import LOSSES
from ganforge.models import build_models
from ganforge.training import speed as devmod
from ganforge.training.adam import LeanAdam
from ganforge.training.build import step_options
from ganforge.training.steps import GANStep, StepOptions, StepParts, build_step, wrong_labels
from tests.conftest import run_cli

CPU = torch.device("cpu")
RTOL = 1e-5

# A tiny DCGAN (BatchNorm in G and D) at 28 pixels: fast, yet every layer kind is there.
TINY = TrainConfig(model="dcgan", image_size=28, channels=1, z_dim=8, g_features=4, d_features=4)


def _run(options: StepOptions, steps: int = 3, cfg: TrainConfig = TINY) -> dict[str, Any]:
    """Train ``steps`` steps from fixed weights and data; return losses and final weights."""
    torch.manual_seed(0)
    G, D = build_models(cfg.model_spec())
    options = dataclasses.replace(options, lr_g=1e-3, lr_d=1e-3)
    step = build_step(G, D, LOSSES["bce"], CPU, options)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        real = torch.rand(8, cfg.channels, cfg.image_size, cfg.image_size, generator=gen) * 2 - 1
        z = torch.randn(8, cfg.z_dim, generator=gen)
        stats = step(real, z)
        losses += [float(stats["loss/D"]), float(stats["loss/G"])]
    state = {f"G.{k}": v.clone() for k, v in G.state_dict().items()}
    state.update({f"D.{k}": v.clone() for k, v in D.state_dict().items()})
    return {"losses": losses, "state": state, "step": step}


def _assert_same(a: dict[str, Any], b: dict[str, Any], rtol: float) -> None:
    assert a["losses"] == pytest.approx(b["losses"], rel=rtol, abs=0)
    for key, value in a["state"].items():
        torch.testing.assert_close(value, b["state"][key], rtol=rtol * 10, atol=1e-6, msg=key)


PLAIN = StepOptions(
    channels_last=False, freeze_d=False, joint_d=False, adam_impl="for-loop", by_hand=False
)


MLP = TrainConfig(model="mlp", image_size=8, channels=1, z_dim=8, g_features=16, d_features=8)


@pytest.mark.parametrize("conditional", [False, True])
def test_real_and_fake_through_d_as_one_batch_give_two_passes_losses(conditional: bool) -> None:
    cfg = dataclasses.replace(MLP, num_classes=3 if conditional else 0)
    joint = _run(dataclasses.replace(PLAIN, joint_d=True), cfg=cfg)
    step = joint["step"]
    assert step.joint_d
    real, fake = torch.zeros(4, 1, 8, 8), torch.ones(4, 1, 8, 8)
    labels = torch.tensor([0, 1, 2, 0]) if conditional else None
    loss, real_logits, fake_logits = step._d_loss(real, fake, labels)
    passes = _graph_nodes(loss.grad_fn).count("AddmmBackward0") / 2  # D has two Linears
    assert passes == 1
    assert real_logits.shape == fake_logits.shape == (4,)
    _assert_same(joint, _run(PLAIN, cfg=cfg), RTOL)


def _graph_nodes(fn: Any) -> list[str]:
    """The kinds of the autograd graph's nodes below ``fn``, each node once."""
    seen: dict[int, str] = {}
    todo = [fn]
    while todo:
        node = todo.pop()
        if node is not None and id(node) not in seen:
            seen[id(node)] = type(node).__name__
            todo += [f for f, _ in node.next_functions]
    return list(seen.values())


def test_d_with_batch_statistics_or_spectral_norm_keeps_two_passes() -> None:
    from ganforge.models.layers import spectral_norm_
    from ganforge.training.steps import treats_images_alone

    _, mlp_d = build_models(MLP.model_spec())
    _, dcgan_d = build_models(TINY.model_spec())  # BatchNorm
    _, normed = build_models(MLP.model_spec())
    spectral_norm_(normed)
    hooked = build_models(MLP.model_spec())[1]
    hooked.register_forward_hook(lambda *a: None)
    assert treats_images_alone(mlp_d)
    assert not any(treats_images_alone(d) for d in (dcgan_d, normed, hooked))
    assert not _run(StepOptions(), steps=1)["step"].joint_d  # the DCGAN's D has BatchNorm


def test_freezing_d_in_the_g_step_changes_nothing() -> None:
    frozen = _run(StepOptions(channels_last=False, adam_impl="for-loop"))
    plain = _run(PLAIN)
    assert frozen["losses"] == plain["losses"]  # exactly
    for key, value in frozen["state"].items():
        assert torch.equal(value, plain["state"][key]), key
    # and D's parameters need gradients again after the step
    assert all(p.requires_grad for p in frozen["step"].D.parameters())


@pytest.mark.parametrize("freeze_d", [True, False])
def test_frozen_d_computes_no_weight_gradient_in_the_g_step(freeze_d: bool) -> None:
    # count the weight gradients of D that each step's backward passes compute: the D step
    # computes one per parameter; the G step adds one more unless freeze_d spares it
    torch.manual_seed(0)
    G, D = build_models(TINY.model_spec())
    step = build_step(G, D, LOSSES["bce"], CPU, StepOptions(channels_last=False, freeze_d=freeze_d))
    computed = [0]
    for p in D.parameters():
        p.register_hook(lambda grad: computed.__setitem__(0, computed[0] + 1) or grad)
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    step(real, torch.randn(8, TINY.z_dim))
    params = len(list(D.parameters()))
    assert computed[0] == (params if freeze_d else 2 * params)
    assert all(p.requires_grad for p in D.parameters())  # D trains again at the next step


def test_channels_last_matches_contiguous() -> None:
    fast = _run(StepOptions(channels_last=True, adam_impl="for-loop"))
    assert fast["step"].memory_format == torch.channels_last
    conv_weight = next(p for p in fast["step"].D.parameters() if p.dim() == 4)
    assert conv_weight.is_contiguous(memory_format=torch.channels_last)
    _assert_same(fast, _run(PLAIN), RTOL)


def test_channels_last_is_not_used_for_fully_connected_models() -> None:
    cfg = TrainConfig(model="mlp", image_size=8, channels=1, z_dim=4)
    out = _run(StepOptions(), steps=1, cfg=cfg)
    assert out["step"].memory_format == torch.contiguous_format


@pytest.mark.parametrize("impl", ["fused", "foreach"])
def test_adam_implementations_match_the_for_loop(impl: str) -> None:
    out = _run(StepOptions(channels_last=False, freeze_d=False, adam_impl=impl))
    assert out["step"].opt_g.defaults["fused" if impl == "fused" else "foreach"] is True
    _assert_same(out, _run(PLAIN), RTOL)


def test_default_options_are_the_fast_paths() -> None:
    options = step_options(TrainConfig())
    assert (options.channels_last, options.freeze_d, options.adam_impl) == (True, True, "auto")
    assert (options.compile, options.cuda_graphs) == (False, False)
    step = _run(options, steps=1)["step"]
    assert step.opt_d.defaults["fused"] is True  # auto -> fused on the CPU, and lean
    assert isinstance(step.opt_d, LeanAdam) and isinstance(step.opt_g, LeanAdam)


def test_compiled_step_matches_eager_with_two_optimisers_detach_and_batchnorm() -> None:
    # aot_eager traces forward and backward graphs as inductor does, without generating code
    compiled = _run(StepOptions(compile=True, compile_backend="aot_eager", adam_impl="for-loop"))
    step: GANStep = compiled["step"]
    assert step._generate.succeeded and step._d_loss.succeeded and step._g_loss.succeeded
    eager = _run(StepOptions(adam_impl="for-loop"))
    _assert_same(compiled, eager, RTOL)
    # BatchNorm running statistics were updated by the compiled graphs
    assert not torch.equal(compiled["state"]["D.net.2.1.running_mean"], torch.zeros(8))


def test_a_piece_that_fails_to_compile_runs_uncompiled(capsys: pytest.CaptureFixture) -> None:
    from torch._dynamo import register_backend

    @register_backend(name="ganforge_test_broken")  # type: ignore[misc]
    def _broken(gm: Any, example_inputs: Any) -> Any:
        raise RuntimeError("no code generator here")

    out = _run(StepOptions(compile=True, compile_backend="ganforge_test_broken"), steps=2)
    err = capsys.readouterr().err
    assert "--compile: compiling G's forward failed" in err
    assert "running it uncompiled" in err
    assert out["step"]._generate.compiled is None
    _assert_same(out, _run(StepOptions(), steps=2), 0)


def test_compile_without_a_cpp_compiler_falls_back(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(devmod.shutil, "which", lambda name: None)
    out = _run(StepOptions(compile=True), steps=1)
    assert "--compile: torch.compile needs a C++ compiler" in capsys.readouterr().err
    assert out["step"]._generate.compiled is None


def test_cuda_graphs_are_refused_on_the_cpu_with_one_line(capsys: pytest.CaptureFixture) -> None:
    out = _run(StepOptions(cuda_graphs=True, adam_impl="for-loop"))
    err = capsys.readouterr().err
    assert err.count("--cuda-graphs: CUDA graphs need a CUDA GPU, and this run is on cpu") == 1
    assert out["step"].cuda_graphs is False
    plain = _run(StepOptions(adam_impl="for-loop"))
    assert out["losses"] == plain["losses"]


def test_train_compile_runs_a_few_steps_on_the_cpu(tmp_path: Path) -> None:
    # the real thing: inductor generates and compiles C++ for the tiniest model
    proc = run_cli(
        "train", "--preset", "seed-simple", "--data", "mnist-sample", "--steps", "3",
        "--compile", "--cuda-graphs", "--batch-size", "8", "--set", "g_features=8",
        "--set", "d_features=8", "--set", "log_epoch_start=false", "--no-progress",
        "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--cuda-graphs: CUDA graphs need a CUDA GPU" in proc.stderr
    assert "compiling" not in proc.stderr  # no piece fell back
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()
    config = (tmp_path / "run" / "config.toml").read_text()
    assert "compile = true" in config


def test_wrong_labels_differ_from_the_true_ones_and_cover_every_other_class() -> None:
    labels = torch.tensor([0, 3, 9, 9, 5, 1, 2, 7, 4, 6] * 3)
    wrong = wrong_labels(labels, 10)
    assert bool((wrong != labels).all()) and bool(((wrong >= 0) & (wrong < 10)).all())
    assert set(((wrong - labels) % 10).tolist()) == set(range(1, 10))


class _LabelD(torch.nn.Module):
    """A conditional D whose logit is a learned score of the label alone; records labels."""

    def __init__(self) -> None:
        super().__init__()
        self.score = torch.nn.Parameter(torch.zeros(4))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.seen.append(labels.clone())
        return self.score[labels] + 0 * x.flatten(1).sum(1)


@pytest.mark.parametrize("mismatch", [0, 4])
def test_mismatch_counts_mislabelled_reals_as_fakes(mismatch: int) -> None:
    G = torch.nn.Sequential(torch.nn.Linear(2, 4))
    D = _LabelD()
    parts = StepParts(
        lambda z, y: G(z).view(-1, 1, 2, 2),  # type: ignore[arg-type]
        D, torch.optim.SGD(G.parameters(), 0.0), torch.optim.SGD(D.parameters(), 0.0),
        LOSSES["bce"],
    )  # fmt: skip
    step = GANStep(parts, StepOptions(mismatch_classes=mismatch, channels_last=False))
    with torch.no_grad():
        D.score.copy_(torch.tensor([1.0, -1.0, 2.0, 0.5]))
    labels = torch.tensor([0, 1, 2, 3])
    stats = step(torch.zeros(4, 1, 2, 2), torch.randn(4, 2), labels)
    calls = len(D.seen)  # D step: real, fake (and mislabelled real); G step: fake
    assert calls == (4 if mismatch else 3)
    right = D.score.detach()[labels]
    wrong = D.score.detach()[wrong_labels(labels, 4)]
    plain = LOSSES["bce"].d(right, right)
    with_wrong = LOSSES["bce"].d(right, torch.cat([right, wrong]))
    assert not torch.isclose(plain, with_wrong)
    if mismatch:
        assert bool((D.seen[2] != labels).all())
    expected = with_wrong if mismatch else plain
    assert float(stats["loss/D"]) == pytest.approx(float(expected))


def test_statistics_are_computed_only_when_asked() -> None:
    out = _run(StepOptions(), steps=2)
    step: GANStep = out["step"]
    real_logits, fake_logits = step._logits  # type: ignore[misc]
    stats = step.statistics()  # of the last step
    assert set(stats) == {"D(x)", "D(G(z))"}
    assert float(stats["D(x)"]) == pytest.approx(float(torch.sigmoid(real_logits).mean()))
    assert 0 < float(stats["D(G(z))"]) < 1
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    assert set(step(real, torch.randn(8, TINY.z_dim))) == {"loss/D", "loss/G"}  # losses only


def test_top_k_keeps_the_fakes_d_rates_most_real_decaying_per_epoch() -> None:
    options = dataclasses.replace(PLAIN, top_k=0.25, top_k_decay=0.5, steps_per_epoch=4)
    step = _run(options, steps=0, cfg=MLP)["step"]
    logits = torch.tensor([0.0, 3.0, -1.0, 2.0, 1.0, -2.0, 5.0, 4.0])
    assert torch.equal(step.top_k(logits), logits)  # epoch 0: every fake
    step.d_steps = 4  # one epoch: half of them, the highest logits
    assert step.top_k_fraction() == 0.5
    assert sorted(step.top_k(logits).tolist()) == [2.0, 3.0, 4.0, 5.0]
    step.d_steps = 40  # ten epochs: down to the floor
    assert step.top_k_fraction() == 0.25 and sorted(step.top_k(logits).tolist()) == [4.0, 5.0]
    off = _run(PLAIN, steps=0, cfg=MLP)["step"]
    off.d_steps = 40
    assert torch.equal(off.top_k(logits), logits)
