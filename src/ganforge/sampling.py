"""Using a trained generator: loading it, drawing latents and images, interpolating,
and writing what was drawn (grid PNG, one PNG each, ``.npz``, GIF).

Latents are drawn on the CPU from a seed, one vector after another, so the same seed
gives the same images on any device, and the first k of n latents are the k latents of
the same seed (one ``torch.randn(n, z_dim)`` call would not promise that: its values
depend on n). See :data:`LATENT_RECIPE`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ganforge import config as cfgmod
from ganforge.animation import write_animation
from ganforge.config import TrainConfig
from ganforge.console import info
from ganforge.errors import CheckpointError, UserError
from ganforge.grids import grid_image, save_png, to_uint8
from ganforge.models import GENERATION_BATCH, build_models
from ganforge.run.folder import load_checkpoint

Labels = int | Sequence[int] | Tensor | None
LATENT_RECIPE = (
    "gen = torch.Generator().manual_seed(seed); "
    "z = torch.stack([torch.randn(z_dim, generator=gen) for _ in range(n)])"
)
METADATA_KEY = "ganforge"  # where an exported file keeps its description (safetensors metadata)
_MAX_RESAMPLE_ROUNDS = 1000
_TRUNCATION_STREAM = 2**32  # truncation redraws from seed + this, apart from the latents' stream


def truncate(z: Tensor, threshold: float, generator: torch.Generator) -> Tensor:
    """The truncation trick of BigGAN (Brock et al., 2019, section 3.1): redraw every
    entry of ``z`` whose magnitude exceeds ``threshold`` until none does.

    Entries already inside the threshold are kept, so a truncated sample stays close to
    the untruncated one of the same seed; smaller thresholds trade variety for fidelity.
    """
    if not threshold > 0:
        raise UserError(f"truncation must be positive, got {threshold}")
    z = z.clone()
    for _ in range(_MAX_RESAMPLE_ROUNDS):
        outside = z.abs() > threshold
        count = int(outside.sum())
        if count == 0:
            return z
        z[outside] = torch.randn(count, generator=generator, dtype=z.dtype)
    return z.clamp_(-threshold, threshold)  # only for absurdly small thresholds


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation from ``a`` to ``b`` (``[D]`` each) at fractions ``t`` ``[T]``
    -> ``[T, D]``; ``t = 0`` gives ``a`` and ``t = 1`` gives ``b`` exactly."""
    a64, b64, t64 = a.double(), b.double(), t.double()[:, None]
    cos = torch.dot(a64 / a64.norm(), b64 / b64.norm()).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if float(torch.sin(omega)) < 1e-6:  # (anti)parallel: the great circle is undefined, go straight
        out = (1 - t64) * a64 + t64 * b64
    else:
        # coefficients first: at t = 0 they are exactly 1 and 0 (x / x == 1 in IEEE arithmetic)
        ca, cb = (
            torch.sin((1 - t64) * omega) / torch.sin(omega),
            torch.sin(t64 * omega) / torch.sin(omega),
        )
        out = ca * a64 + cb * b64
    return out.to(a.dtype)


@contextlib.contextmanager
def _batch_statistics(net: nn.Module) -> Iterator[None]:
    """BatchNorm normalising with each batch's own statistics, leaving the running ones intact."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.track_running_stats) for m in norms]
    for m in norms:
        m.train()
        m.track_running_stats = False  # train mode without updating running_mean/var
    try:
        yield
    finally:
        for m, (training, track) in zip(norms, saved, strict=True):
            m.train(training)
            m.track_running_stats = track


class Generator(nn.Module):
    """A trained generator in eval mode, with the config it was trained with.

    ``weights`` says which weights it holds: ``"ema"`` (the moving average kept during
    training) or ``"G"`` (the trained weights themselves).
    """

    def __init__(self, net: nn.Module, cfg: TrainConfig, weights: str = "G") -> None:
        super().__init__()
        self.net = net
        self.cfg = cfg
        self.weights = weights
        self.z_dim: int = cfg.z_dim
        self.image_size: int = cfg.image_size
        self.channels: int = cfg.channels
        self.num_classes: int = int(getattr(net, "num_classes", 0) or 0)
        self.eval()

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.num_classes:
            return self.net(z, labels)
        return self.net(z)

    @property
    def device(self) -> torch.device:
        """Where the weights are."""
        return next(self.net.parameters()).device

    def latents(self, n: int, seed: int = 0, truncation: float | None = None) -> Tensor:
        """``n`` latent vectors ``[n, z_dim]`` drawn on the CPU from ``seed`` one after another
        (:data:`LATENT_RECIPE`), each truncated to ``|z| <= truncation`` when given (see
        :func:`truncate`). ``latents(n, s)[:k]`` equals ``latents(k, s)``."""
        if n <= 0:
            raise UserError(f"number of samples must be positive, got {n}")
        gen = torch.Generator().manual_seed(seed)
        z = torch.stack([torch.randn(self.z_dim, generator=gen) for _ in range(n)])
        if truncation is None:
            return z
        redraw = torch.Generator().manual_seed(seed + _TRUNCATION_STREAM)
        return torch.stack([truncate(row, truncation, redraw) for row in z])

    def labels_for(self, n: int, labels: Labels = None) -> Tensor | None:
        """Class labels ``[n]`` (int64) for ``n`` images, checked against the generator's classes.

        A conditional generator given no labels cycles through its classes (0, 1, ..., 0, ...);
        an int gives every image that class. An unconditional one takes no labels.
        """
        if not self.num_classes:
            if labels is not None:
                raise UserError("this generator is unconditional (it has no classes); drop --class")
            return None
        if labels is None:
            out = torch.arange(n) % self.num_classes
        elif isinstance(labels, int):
            out = torch.full((n,), labels, dtype=torch.int64)
        else:
            out = torch.as_tensor(labels, dtype=torch.int64).flatten()
            if out.numel() != n:
                raise UserError(f"{out.numel()} labels given for {n} images; give one per image")
        bad = out[(out < 0) | (out >= self.num_classes)]
        if bad.numel():
            raise UserError(
                f"class {int(bad[0])} is out of range: this generator has classes "
                f"0 to {self.num_classes - 1}"
            )
        return out

    @torch.no_grad()
    def generate(
        self, z: Tensor, labels: Tensor | None = None, batch_stats: bool = False,
        batch_size: int = GENERATION_BATCH,
    ) -> Tensor:  # fmt: skip
        """Images ``[N, C, H, W]`` float in [-1, 1] on the CPU for latents ``z`` ``[N, z_dim]``.

        BatchNorm uses its running statistics (eval mode) unless ``batch_stats``, which
        normalises each batch of ``batch_size`` by its own statistics as in training.
        """
        device = self.device
        chunks = []
        context = _batch_statistics(self.net) if batch_stats else contextlib.nullcontext()
        with context:
            for i in range(0, z.shape[0], batch_size):
                y = None if labels is None else labels[i : i + batch_size].to(device)
                chunks.append(self(z[i : i + batch_size].to(device), y).float().cpu())
        return torch.cat(chunks)

    def sample(
        self, n: int, seed: int = 0, labels: Labels = None, uint8: bool = True,
        truncation: float | None = None, batch_stats: bool = False,
    ) -> Tensor:  # fmt: skip
        """``n`` images ``[n, C, H, W]`` on the CPU: uint8 in [0, 255], or float in [-1, 1]
        with ``uint8=False``. The same seed (and labels) gives the same images."""
        z = self.latents(n, seed, truncation)
        images = self.generate(z, self.labels_for(n, labels), batch_stats)
        return to_uint8(images) if uint8 else images

    def interpolate(
        self, seeds: Sequence[int], frames: int = 16, label: int | None = None,
        truncation: float | None = None, uint8: bool = True,
    ) -> Tensor:  # fmt: skip
        """Images along spherical paths between the first latent of each seed, ``frames``
        steps per leg: ``[(len(seeds) - 1) * frames + 1, C, H, W]``.

        Frame 0 has the latent of the first image of ``sample(n, seeds[0])`` (so equals that
        image, up to float rounding between batch sizes), the last frame that of ``seeds[-1]``.
        A conditional generator keeps one class throughout (``label``, default 0).
        """
        if len(seeds) < 2:
            raise UserError("interpolation needs at least two seeds, e.g. --seeds 0,1")
        if frames < 1:
            raise UserError(f"frames must be positive, got {frames}")
        ends = [self.latents(1, s, truncation)[0] for s in seeds]
        t = torch.arange(frames, dtype=torch.float64) / frames
        legs = [slerp(a, b, t) for a, b in zip(ends, ends[1:], strict=False)]
        z = torch.cat([*legs, ends[-1][None]])  # [F, z_dim]
        if self.num_classes:
            labels = self.labels_for(z.shape[0], 0 if label is None else label)
        else:
            labels = self.labels_for(z.shape[0], label)
        images = self.generate(z, labels)
        return to_uint8(images) if uint8 else images


def _from_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise UserError(
            "reading .safetensors needs the safetensors package: pip install 'ganforge[export]'"
        ) from None
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            state = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    if METADATA_KEY not in meta:
        raise CheckpointError(f"{path} is not a ganforge export (no '{METADATA_KEY}' metadata)")
    return state, json.loads(meta[METADATA_KEY])


def load_generator(
    path: str | Path, device: str | torch.device = "cpu", ema: bool = True
) -> Generator:
    """The generator of a run folder, a checkpoint, or a ``.safetensors`` export, in eval mode.

    With ``ema`` (the default) the checkpoint's moving-average weights are used when it
    has them; ``ema=False`` takes the trained weights themselves.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".safetensors":
        state, meta = _from_safetensors(path)
        cfg, weights = cfgmod.from_dict(meta["config"], str(path)), str(meta.get("weights", "G"))
    else:
        file, saved, note = load_checkpoint(path)  # a damaged last.pt: the newest intact one
        if note:
            info(note)
        if "G" not in saved or "config" not in saved:
            raise CheckpointError(f"{file} holds no generator; is it a ganforge checkpoint?")
        cfg = cfgmod.from_dict(saved["config"], str(file))
        weights = "ema" if ema and saved.get("G_ema") is not None else "G"
        state = saved["G_ema"] if weights == "ema" else saved["G"]
    net, _ = build_models(cfg.model_spec())
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: weights do not fit the model its config names ({first})"
        ) from None
    return Generator(net, cfg, weights).to(device)


def check_output_path(path: str | Path) -> Path:
    """``path`` if its folder exists; a UserError saying what to do otherwise."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a file path")
    if not path.parent.is_dir():
        raise UserError(f"folder {path.parent} does not exist; create it or choose another path")
    return path


def save_grid(images: Tensor, path: str | Path, nrow: int = 8, padding: int = 2) -> Path:
    """Write uint8 images ``[N, C, H, W]`` as one grid PNG."""
    if nrow <= 0 or padding < 0:
        raise UserError(f"grid needs nrow > 0 and padding >= 0, got {nrow} and {padding}")
    path = check_output_path(path)
    save_png(grid_image(images, nrow=nrow, padding=padding), path)
    return path


def _hwc(images: Tensor) -> np.ndarray:
    """uint8 ``[N, C, H, W]`` tensor -> ``[N, H, W, C]`` array."""
    return images.permute(0, 2, 3, 1).contiguous().numpy()


def save_pngs(images: Tensor, folder: str | Path) -> Path:
    """Write uint8 images ``[N, C, H, W]`` as ``folder/000000.png``, ...; make the folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file; give a folder for --dir")
    if not folder.parent.is_dir():
        raise UserError(f"folder {folder.parent} does not exist; create it or choose another path")
    folder.mkdir(exist_ok=True)
    width = max(6, len(str(images.shape[0] - 1)))
    for i, image in enumerate(_hwc(images)):
        save_png(image[..., 0] if image.shape[-1] == 1 else image, folder / f"{i:0{width}d}.png")
    return folder


def save_npz(images: Tensor, path: str | Path, labels: Tensor | None = None) -> Path:
    """Write uint8 images as ``images`` ``[N, H, W, C]`` (and int64 ``labels`` ``[N]``)."""
    path = check_output_path(path)
    arrays: dict[str, Any] = {"images": _hwc(images)}
    if labels is not None:
        arrays["labels"] = labels.numpy()
    with open(path, "wb") as fh:  # a file handle keeps numpy from appending .npz
        np.savez_compressed(fh, **arrays)
    return path


def strip_path(animation: str | Path) -> Path:
    """Where the frame strip of an animation goes: ``out.gif`` -> ``out-strip.png``."""
    animation = Path(animation)
    return animation.with_name(f"{animation.stem}-strip.png")


def save_interpolation(
    frames: Tensor, path: str | Path, frames_per_leg: int, frame_ms: int = 100
) -> tuple[Path, Path]:
    """Write uint8 frames ``[F, C, H, W]`` of :meth:`Generator.interpolate` as an animation
    (``.gif``/``.mp4``) and a frame strip PNG beside it, one row per leg from seed to seed."""
    path = check_output_path(path)
    arrays = [a[..., 0] if a.shape[-1] == 1 else a for a in _hwc(frames)]
    write_animation(arrays, path, frame_ms=frame_ms)
    legs = (frames.shape[0] - 1) // frames_per_leg
    rows = [frames[k * frames_per_leg : (k + 1) * frames_per_leg + 1] for k in range(legs)]
    strip = save_grid(torch.cat(rows), strip_path(path), nrow=frames_per_leg + 1)
    return path, strip
