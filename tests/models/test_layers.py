"""Spectral norm bounds singular values; conditioning layers depend on the label."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError
from ganforge.models import build_models
from ganforge.models.layers import (
    ConditionalBatchNorm2d,
    FastConvTranspose2d,
    MinibatchStd,
    Projection,
    spectral_norm_,
)


def _sigma_max(weight: torch.Tensor, dim: int = 0) -> float:
    w = weight.transpose(0, dim).flatten(1)
    return torch.linalg.matrix_norm(w, ord=2).item()


def test_spectral_norm_bounds_the_largest_singular_value() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Linear(16, 4), nn.ConvTranspose2d(4, 8, 4)
    )
    for m in net:
        if hasattr(m, "weight"):
            nn.init.normal_(m.weight, 0.0, 3.0)  # far above 1 before normalisation
    assert _sigma_max(net[0].weight) > 5
    spectral_norm_(net)
    net.train()
    for _ in range(30):  # one power iteration per forward, as in training
        net[0](torch.zeros(1, 3, 5, 5))
        net[2](torch.zeros(1, 16))
        net[3](torch.zeros(1, 4, 2, 2))
    assert _sigma_max(net[0].weight) == pytest.approx(1.0, abs=0.02)
    assert _sigma_max(net[2].weight) == pytest.approx(1.0, abs=0.02)
    assert _sigma_max(net[3].weight, dim=1) == pytest.approx(1.0, abs=0.02)
    spectral_norm_(net)  # applying twice is harmless
    assert sum("original" in k for k in net.state_dict()) == 3


def test_config_puts_spectral_norm_on_d_and_optionally_g() -> None:
    cfg = TrainConfig(model="dcgan", image_size=28, channels=1, g_features=4, d_features=4, z_dim=8)
    G, D = build_models(TrainConfig(**{**cfg.to_dict(), "spectral_norm_d": True}).model_spec())
    assert any("parametrizations" in k for k in D.state_dict())
    assert not any("parametrizations" in k for k in G.state_dict())
    G, _ = build_models(TrainConfig(**{**cfg.to_dict(), "spectral_norm_g": True}).model_spec())
    assert any("parametrizations" in k for k in G.state_dict())


def test_conditional_batchnorm_and_projection_depend_on_label() -> None:
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(4, num_classes=3)
    nn.init.normal_(cbn.gain.weight)
    x = torch.randn(2, 4, 5, 5)
    a, b = cbn(x, torch.tensor([0, 0])), cbn(x, torch.tensor([0, 1]))
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])
    plain = ConditionalBatchNorm2d(4, num_classes=0)
    assert torch.allclose(plain(x, None), nn.functional.batch_norm(x, None, None, training=True))
    proj = Projection(4, num_classes=3)
    h = torch.randn(2, 4)
    assert torch.allclose(proj(h, torch.tensor([2, 1])), (proj.embed.weight[[2, 1]] * h).sum(1))
    with pytest.raises(ValueError, match="pass labels"):
        proj(h, None)


@pytest.mark.parametrize("model", ["mlp", "dcgan", "resnet"])
def test_conditional_models_output_depends_on_label(model: str) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(
        model=model, image_size=28, channels=1, g_features=8, d_features=8, z_dim=8,
        conditional=True, num_classes=10, weight_init="default",
    )  # fmt: skip
    G, D = build_models(cfg.model_spec())
    assert G.num_classes == 10
    G.eval(), D.eval()
    for m in (G, D):  # give every class a clearly different embedding
        for e in m.modules():
            if isinstance(e, nn.Embedding):
                nn.init.normal_(e.weight)
    z = torch.randn(1, 8).repeat(2, 1)
    labels = torch.tensor([3, 7])
    images = G(z, labels)
    assert images.shape == (2, 1, 28, 28)
    assert not torch.allclose(images[0], images[1], atol=1e-4)
    same = images[:1].repeat(2, 1, 1, 1)
    logits = D(same, labels)
    assert logits.shape == (2,) and not torch.isclose(logits[0], logits[1])
    with pytest.raises(ValueError, match="class-conditional"):
        G(z, None)


def test_conditional_without_classes_is_refused() -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        build_models(TrainConfig(conditional=True, channels=1, image_size=28).model_spec())


def _conditional_dcgan() -> tuple[nn.Module, nn.Module]:
    """A small class-conditional DCGAN pair (10 classes, 28 pixels), in eval mode."""
    torch.manual_seed(0)
    cfg = TrainConfig(
        model="dcgan", image_size=28, channels=1, g_features=8, d_features=8, z_dim=8,
        conditional=True, num_classes=10,
    )  # fmt: skip
    G, D = build_models(cfg.model_spec())
    return G.eval(), D.eval()


@pytest.mark.parametrize("path", ["class_bias", "projection"])
def test_dcgan_discriminator_uses_each_class_path(path: str) -> None:
    _, D = _conditional_dcgan()
    with torch.no_grad():  # only one of the two class paths is non-zero
        D.class_bias.weight.zero_()
        D.projection.embed.weight.zero_()
        target = D.class_bias if path == "class_bias" else D.projection.embed
        nn.init.normal_(target.weight)
    x = torch.randn(1, 1, 28, 28).repeat(2, 1, 1, 1)
    logits = D(x, torch.tensor([3, 7]))
    assert not torch.isclose(logits[0], logits[1])


def test_dcgan_generator_class_maps_alone_make_classes_differ() -> None:
    G, _ = _conditional_dcgan()
    with torch.no_grad():  # conditional BatchNorm the same for every class: only the map differs
        for m in G.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.gain.weight.fill_(1.0)
                m.bias.weight.zero_()
        for m in G.class_maps:
            nn.init.normal_(m.weight)
    z = torch.randn(1, 8).repeat(2, 1)
    images = G(z, torch.tensor([3, 7]))
    assert not torch.allclose(images[0], images[1], atol=1e-4)


def test_minibatch_std_appends_each_groups_spread() -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 3, 2, 2)
    y = MinibatchStd(4)(x)
    assert y.shape == (8, 4, 2, 2) and torch.equal(y[:, :3], x)
    # groups are images {0, 2, 4, 6} and {1, 3, 5, 7}: the spread of each, as one number
    for start in (0, 1):
        group = x[start::2]
        spread = group.var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
        assert torch.allclose(y[start::2, 3], spread.expand(4, 2, 2))
    same = MinibatchStd(4)(torch.ones(5, 2, 2, 2))  # 5 images: one group of 5; no variety
    assert same.shape == (5, 3, 2, 2) and same[:, 2].max() < 1e-3
    assert MinibatchStd(4)(torch.randn(6, 1, 1, 1))[:, 1].std() > 0  # groups of 3


@pytest.mark.parametrize("classes", [0, 10])
def test_a_dcgan_d_with_minibatch_std_sees_a_batch_without_variety(classes: int) -> None:
    torch.manual_seed(0)
    labels = torch.zeros(8, dtype=torch.long) if classes else None
    x = torch.randn(1, 3, 32, 32)
    copies = x.expand(8, -1, -1, -1).contiguous()  # image 0 among copies of itself
    varied = torch.cat([x, x + torch.randn(7, 3, 32, 32)])  # image 0 among other images
    for std, moves in ((4, True), (0, False)):
        cfg = TrainConfig(model="dcgan", image_size=32, channels=3, minibatch_std=std)
        spec = dataclasses.replace(cfg.model_spec(), num_classes=classes)
        _, d = build_models(spec)
        d.eval()  # BatchNorm from running stats: only the spread channel couples the batch
        with torch.no_grad():
            among_copies, among_others = d(copies, labels)[0], d(varied, labels)[0]
        assert torch.isclose(among_copies, among_others).item() is not moves, std
    with pytest.raises(ConfigError, match="minibatch_std is a dcgan option"):
        cfg = TrainConfig(model="resnet", image_size=32, channels=3, minibatch_std=4)
        build_models(cfg.model_spec())


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    ("c_in", "c_out", "k", "s", "p", "side"),
    [(16, 32, 4, 1, 0, 1), (16, 8, 4, 2, 1, 4), (16, 8, 4, 2, 1, 8), (8, 3, 3, 1, 1, 4)],
)
def test_fast_conv_transpose_computes_what_conv_transpose_does(
    channels_last: bool, c_in: int, c_out: int, k: int, s: int, p: int, side: int
) -> None:
    torch.manual_seed(0)
    plain = nn.ConvTranspose2d(c_in, c_out, k, s, p)
    fast = FastConvTranspose2d(c_in, c_out, k, s, p)
    fast.load_state_dict(plain.state_dict())  # the same parameters and state dict
    layout = torch.channels_last if channels_last else torch.contiguous_format
    plain, fast = plain.to(memory_format=layout), fast.to(memory_format=layout)
    x = torch.randn(6, c_in, side, side).contiguous(memory_format=layout)
    for bf16 in (False, True):  # the fold path runs under CPU bf16 autocast only
        xs = [x.clone().requires_grad_(True) for _ in range(2)]
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            ys = [plain(xs[0]), fast(xs[1])]
        assert ys[1].shape == ys[0].shape and ys[1].dtype == ys[0].dtype
        assert ys[1].is_contiguous(memory_format=layout)  # the layout the library gives
        fast_path = side == 1 or (bf16 and side <= 4 and (k, s, p) == (4, 2, 1))
        walk = ys[1].grad_fn
        names = []
        while walk is not None and len(names) < 6:  # the last few ops that made the output
            names.append(type(walk).__name__)
            walk = walk.next_functions[0][0] if walk.next_functions else None
        took = not any("Convolution" in name for name in names)
        assert took is fast_path, names
        tol = 2e-2 if bf16 else 1e-5
        torch.testing.assert_close(ys[1].float(), ys[0].float(), atol=tol, rtol=tol)
        grads = [
            torch.autograd.grad(y.float().square().sum(), [xi, m.weight, m.bias])
            for y, xi, m in zip(ys, xs, (plain, fast), strict=True)
        ]
        for got, want in zip(grads[1], grads[0], strict=True):
            scale = want.abs().max().item()
            torch.testing.assert_close(
                got.float() / scale, want.float() / scale, atol=tol, rtol=tol
            )


def test_dcgan_generators_use_the_fast_transposed_conv() -> None:
    G, _ = build_models(TrainConfig(model="dcgan", image_size=64, channels=3, z_dim=8).model_spec())
    kinds = [type(m) for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert kinds == [FastConvTranspose2d] * 4 + [nn.ConvTranspose2d]


def test_fast_conv_transpose_casts_its_weight_before_flattening_it() -> None:
    fast = FastConvTranspose2d(16, 8, 4, 2, 1).to(memory_format=torch.channels_last)
    x = torch.randn(2, 16, 4, 4)
    assert fast._flat_weight(x).dtype == torch.float32
    with torch.autocast("cpu", torch.bfloat16):
        flat = fast._flat_weight(x)  # a bf16 copy: half the bytes of an fp32 one
    assert flat.dtype == torch.bfloat16 and flat.shape == (16, 8 * 4 * 4)
    torch.testing.assert_close(flat.float(), fast.weight.flatten(1).bfloat16().float())
