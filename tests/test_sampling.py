"""Sampling a trained generator: same seed same images, truncation, slerp, EMA weights,
eval-mode BatchNorm, conditional labels, the files it writes, and `ganforge sample`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import TrainConfig, load_generator
from ganforge.errors import UserError
from ganforge.grids import to_uint8
from ganforge.models import build_models
from ganforge.run import checkpoint as ckpt
from ganforge.sampling import Generator, slerp, strip_path, truncate
from tests.conftest import run_cli


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to float rounding, and as uint8 pixels within one level."""
    pixels = (to_uint8(a).int() - to_uint8(b).int()).abs().max()
    return torch.allclose(a, b, atol=1e-5, rtol=0) and int(pixels) <= 1


# --- the Python API ---------------------------------------------------------------------


def test_same_seed_gives_identical_images_across_calls(tiny_run: Path) -> None:
    G = load_generator(tiny_run)
    first = G.sample(8, seed=3)
    assert first.dtype == torch.uint8 and first.shape == (8, 1, 28, 28)
    assert torch.equal(first, load_generator(tiny_run).sample(8, seed=3))
    floats = G.sample(8, seed=3, uint8=False)
    assert floats.dtype == torch.float32 and floats.abs().max() <= 1
    assert torch.equal(to_uint8(floats), first)
    assert not torch.equal(floats, G.sample(8, seed=4, uint8=False))


@pytest.mark.parametrize("z_dim", [8, 100])  # below 16 and not a multiple of 16: randn's odd cases
def test_the_first_latents_of_a_seed_do_not_depend_on_how_many_are_drawn(z_dim: int) -> None:
    cfg = TrainConfig(model="mlp", image_size=28, channels=1, z_dim=z_dim, g_features=4)
    G = Generator(build_models(cfg.model_spec())[0], cfg)
    assert torch.equal(G.latents(7, seed=1)[:3], G.latents(3, seed=1))
    assert torch.equal(G.latents(7, seed=1, truncation=1.0)[:3], G.latents(3, 1, truncation=1.0))
    gen = torch.Generator().manual_seed(1)  # the documented recipe
    recipe = torch.stack([torch.randn(z_dim, generator=gen) for _ in range(3)])
    assert torch.equal(G.latents(3, seed=1), recipe)


def test_run_folder_and_its_checkpoint_load_the_same_generator(tiny_run: Path) -> None:
    a = load_generator(tiny_run).sample(4, seed=1, uint8=False)
    b = load_generator(tiny_run / "checkpoints" / "last.pt").sample(4, seed=1, uint8=False)
    assert torch.equal(a, b)


def test_eval_mode_batchnorm_makes_each_image_independent_of_its_batch(tiny_run: Path) -> None:
    G = load_generator(tiny_run)
    assert not any(m.training for m in G.modules())
    z = G.latents(8, seed=2)
    # equal up to float rounding: a batch of 1 and of 8 may take different conv kernels
    torch.testing.assert_close(G.generate(z[:1]), G.generate(z)[:1], rtol=0, atol=1e-5)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    batch = G.generate(z, batch_stats=True)  # train-mode BatchNorm: each batch's own statistics
    assert not torch.allclose(batch, G.generate(z))
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())  # stats untouched
    assert not any(m.training for m in G.modules())


def test_ema_weights_are_used_when_present_unless_declined(tiny_run: Path, tmp_path: Path) -> None:
    state = ckpt.load(tiny_run / "checkpoints" / "last.pt")
    torch.manual_seed(0)
    state["G_ema"] = {k: v + 0.3 * torch.randn_like(v) if v.is_floating_point() else v
                      for k, v in state["G"].items()}  # fmt: skip
    path = tmp_path / "with-ema.pt"
    ckpt.save_atomic(state, path)
    plain = load_generator(tiny_run, ema=False).sample(4, seed=0, uint8=False)
    ema = load_generator(path)
    assert ema.weights == "ema"
    assert not torch.allclose(ema.sample(4, seed=0, uint8=False), plain)
    no_ema = load_generator(path, ema=False)
    assert no_ema.weights == "G"
    assert torch.equal(no_ema.sample(4, seed=0, uint8=False), plain)


def test_truncation_redraws_only_the_entries_beyond_the_threshold(tiny_run: Path) -> None:
    G = load_generator(tiny_run)
    z = G.latents(256, seed=5)
    t = G.latents(256, seed=5, truncation=0.5)
    assert t.abs().max() <= 0.5
    inside = z.abs() <= 0.5
    assert torch.equal(t[inside], z[inside]) and not torch.equal(t, z)
    assert torch.equal(t, G.latents(256, seed=5, truncation=0.5))
    assert G.sample(2, seed=5, truncation=0.5).shape == (2, 1, 28, 28)
    with pytest.raises(UserError, match="positive"):
        truncate(z, 0.0, torch.Generator())


def test_slerp_ends_exactly_at_its_endpoints_and_keeps_the_radius() -> None:
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, generator=gen), torch.randn(64, generator=gen)
    b = b / b.norm() * a.norm()
    path = slerp(a, b, torch.linspace(0, 1, 9))
    assert torch.equal(path[0], a) and torch.equal(path[-1], b)
    assert torch.allclose(path.norm(dim=1), a.norm().expand(9), rtol=1e-5)
    straight = slerp(a, 2 * a, torch.tensor([0.5]))  # parallel: falls back to a straight line
    assert torch.allclose(straight[0], 1.5 * a)


def test_interpolation_endpoints_equal_the_endpoint_samples(tiny_run: Path) -> None:
    G = load_generator(tiny_run)
    frames = G.interpolate([0, 5, 7], frames=4, uint8=False)
    assert frames.shape == (9, 1, 28, 28)
    for index, seed in ((0, 0), (4, 5), (8, 7)):  # same latents; batch size may round apart
        assert _close(frames[index], G.sample(3, seed=seed, uint8=False)[0])
    with pytest.raises(UserError, match="two seeds"):
        G.interpolate([0])


def test_number_of_samples_must_be_positive(tiny_run: Path) -> None:
    with pytest.raises(UserError, match="positive"):
        load_generator(tiny_run).sample(0)


# --- a conditional generator --------------------------------------------------------------


@pytest.fixture
def conditional(conditional_run: Path) -> Generator:
    return load_generator(conditional_run)


def test_conditional_labels_are_plumbed_through_and_checked(conditional: Generator) -> None:
    G = conditional
    assert G.num_classes == 10
    assert G.labels_for(12).tolist() == [*range(10), 0, 1]  # no labels: cycle the classes
    assert G.labels_for(3, 2).tolist() == [2, 2, 2]
    same = G.sample(4, seed=0, labels=1, uint8=False)
    assert torch.equal(same, G.sample(4, seed=0, labels=[1, 1, 1, 1], uint8=False))
    assert not torch.allclose(same, G.sample(4, seed=0, labels=2, uint8=False))
    with pytest.raises(UserError, match="class 10 is out of range"):
        G.sample(2, labels=10)
    with pytest.raises(UserError, match="one per image"):
        G.sample(2, labels=[0, 1, 2])
    frames = G.interpolate([0, 1], frames=2, label=2, uint8=False)
    assert _close(frames[0], G.sample(1, seed=0, labels=2, uint8=False)[0])


def test_an_unconditional_generator_refuses_labels(tiny_run: Path) -> None:
    with pytest.raises(UserError, match="unconditional"):
        load_generator(tiny_run).sample(2, labels=0)


# --- `ganforge sample` --------------------------------------------------------------------


def test_sample_cli_writes_grid_pngs_npz_interpolation_and_progress(tiny_run: Path) -> None:
    result = run_cli(
        "sample", str(tiny_run), "--n", "10", "--seed", "3", "--out", "grid.png", "--nrow", "5",
        "--padding", "1", "--dir", "each", "--npz", "s.npz", "--interpolate", "walk.gif",
        "--seeds", "3,4", "--frames", "3", "--progress-gif", "progress.gif",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = load_generator(tiny_run).sample(10, seed=3)  # [10, 1, 28, 28]
    assert _pixels(Path("grid.png")).shape == (2 * 29 + 1, 5 * 29 + 1)
    assert _pixels(Path("grid.png"))[1:29, 1:29].tolist() == expected[0, 0].tolist()
    assert sorted(os.listdir("each"))[:2] == ["000000.png", "000001.png"]
    assert len(os.listdir("each")) == 10
    assert np.array_equal(_pixels(Path("each/000009.png")), expected[9, 0].numpy())
    with np.load("s.npz") as npz:
        assert sorted(npz.files) == ["images"]
        assert np.array_equal(npz["images"], expected.permute(0, 2, 3, 1).numpy())
    with Image.open("walk.gif") as gif:
        assert gif.n_frames == 4 and gif.size == (28, 28)
        assert np.array_equal(np.asarray(gif.convert("L")), expected[0, 0].numpy())
    assert _pixels(strip_path("walk.gif")).shape == (28 + 2 * 2, 4 * 28 + 5 * 2)
    with Image.open("progress.gif") as gif:
        assert gif.n_frames == 3  # the grids at steps 2, 4 and 6
    assert "wrote grid.png" in result.stdout and "wrote walk.gif" in result.stdout


def test_sample_cli_draws_the_asked_class_of_a_conditional_model(conditional_run: Path) -> None:
    run = str(conditional_run)
    ok = run_cli("sample", run, "--n", "4", "--class", "2", "--npz", "c.npz")
    assert ok.returncode == 0, ok.stderr
    with np.load("c.npz") as npz:
        assert npz["labels"].tolist() == [2, 2, 2, 2]
        assert npz["images"].shape == (4, 28, 28, 1)
    bad = run_cli("sample", run, "--class", "10")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "ganforge: error: class 10 is out of range: this generator has classes 0 to 9"
    )


def _torch_saved_dict(path: Path) -> Path:
    torch.save({"weights": torch.zeros(3), "note": "not a ganforge checkpoint"}, path)
    return path


def _text_file(path: Path) -> Path:
    path.write_text("hello, I am a text file\n")
    return path


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (_torch_saved_dict, [], "is not a ganforge checkpoint"),
        (_text_file, [], "is not a ganforge checkpoint"),
        (None, ["--class", "1"], "this generator is unconditional"),
        (None, ["--grid", "missing/grid.png"], "folder missing does not exist"),
        (None, ["--interpolate", "walk.bmp"], "animations are written as .gif or .mp4"),
        (None, ["--n", "0"], "--n must be positive"),
    ],
)
def test_sample_cli_refuses_bad_input_in_one_line(
    tiny_run: Path, tmp_path: Path, make: object, extra: list[str], message: str
) -> None:
    source = make(tmp_path / "thing.pt") if callable(make) else tiny_run
    result = run_cli("sample", str(source), *extra)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganforge: error:") and message in lines[0]
    assert not Path("samples.png").exists()
