"""Image sequences as animations: GIF (Pillow), MP4 (when imageio can write it), and the
progress animation of a run's fixed-noise grids."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ganforge.errors import UserError

PROGRESS_NAME = "progress.gif"
MAX_PROGRESS_FRAMES = 120  # longer runs are thinned evenly, the last grid always kept
_GRID_NAME = re.compile(r"step(\d+)\.png$")


ANIMATION_SUFFIXES = (".gif", ".mp4")


def check_animation_path(path: str | Path) -> Path:
    """``path`` if it names a .gif or .mp4 file; a UserError otherwise."""
    path = Path(path)
    if path.suffix.lower() not in ANIMATION_SUFFIXES:
        raise UserError(f"animations are written as .gif or .mp4, not '{path.suffix}'")
    return path


def write_animation(
    frames: Sequence[np.ndarray], path: str | Path, frame_ms: int = 100, last_ms: int | None = None
) -> Path:
    """Write uint8 frames (``[H, W]`` grey or ``[H, W, 3]`` RGB) as a looping ``.gif`` or
    an ``.mp4``; ``last_ms`` holds the last GIF frame longer."""
    path = check_animation_path(path)
    if not frames:
        raise UserError(f"no frames to write to {path}")
    if path.suffix.lower() == ".mp4":
        _write_mp4(frames, path, 1000 / frame_ms)
    else:
        images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
        durations = [frame_ms] * len(images)
        if last_ms is not None:
            durations[-1] = last_ms
        images[0].save(
            path, format="GIF", save_all=True, append_images=images[1:], duration=durations,
            loop=0, optimize=False, disposal=1,
        )  # fmt: skip
    return path


def _write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float) -> None:
    try:
        import imageio.v3 as iio
    except ImportError:
        raise UserError(
            "writing .mp4 needs imageio with ffmpeg (pip install 'imageio[ffmpeg]'); "
            "or write a .gif"
        ) from None
    stack = np.stack([f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=2) for f in frames])
    # Small images are enlarged (nearest neighbour) to at least 128 pixels, and padded
    # with black to multiples of 16, the macro block size video codecs want.
    scale = max(1, -(-128 // max(stack.shape[1:3])))
    stack = stack.repeat(scale, axis=1).repeat(scale, axis=2)
    pad_h, pad_w = -stack.shape[1] % 16, -stack.shape[2] % 16
    stack = np.pad(stack, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    try:
        iio.imwrite(path, stack, fps=fps, extension=".mp4")
    except Exception as exc:  # imageio raises many kinds when no video plugin is present
        raise UserError(
            f"could not write {path} ({type(exc).__name__}: {exc}); install 'imageio[ffmpeg]' "
            "or write a .gif"
        ) from None


def _caption(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with a black band below it holding ``text``."""
    image = Image.fromarray(frame)
    band = 14
    out = Image.new(image.mode, (image.width, image.height + band))
    out.paste(image, (0, 0))
    fill = 255 if image.mode == "L" else (255, 255, 255)
    ImageDraw.Draw(out).text((2, image.height + 1), text, fill=fill)
    return np.asarray(out)


def progress_gif(samples_dir: str | Path, out: str | Path | None = None) -> Path | None:
    """Animate the fixed-noise grids ``stepNNNNNNN.png`` of a run's ``samples/`` folder,
    each captioned with its step; write ``samples/progress.gif`` (or ``out``).

    Returns the path written, or None when the folder holds no grids.
    """
    samples_dir = Path(samples_dir)
    grids = sorted(
        (int(m.group(1)), p)
        for p in (samples_dir.glob("step*.png") if samples_dir.is_dir() else [])
        if (m := _GRID_NAME.search(p.name))
    )
    if not grids:
        return None
    if len(grids) > MAX_PROGRESS_FRAMES:
        keep = np.linspace(0, len(grids) - 1, MAX_PROGRESS_FRAMES).round().astype(int)
        grids = [grids[i] for i in sorted(set(keep.tolist()))]
    frames = []
    for step, path in grids:
        with Image.open(path) as image:
            frames.append(_caption(np.asarray(image.convert("L" if image.mode == "L" else "RGB")),
                                   f"step {step}"))  # fmt: skip
    sizes = {f.shape for f in frames}
    if len(sizes) > 1:  # grids of another size (e.g. grid_n changed): keep the latest kind only
        frames = [f for f in frames if f.shape == frames[-1].shape]
    return write_animation(frames, out or samples_dir / PROGRESS_NAME, frame_ms=250, last_ms=2000)
