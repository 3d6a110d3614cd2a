"""Watching a run: TensorBoard events, metrics.jsonl, grid PNGs, console lines, a progress bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor


def to_uint8(images: Tensor) -> Tensor:
    """Images in [-1, 1] -> uint8 in [0, 255], same shape."""
    return images.detach().float().add(1).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def grid_image(images: Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """uint8 ``[N, C, H, W]`` -> one uint8 grid ``[H', W', C]`` (C = 1 squeezed to grey)."""
    # imported here: torchvision's import costs about as much as torch's, and only grids need it
    from torchvision.utils import make_grid

    grid = make_grid(images.cpu(), nrow=nrow, padding=padding, pad_value=0)  # [3, H', W']
    arr = grid.permute(1, 2, 0).numpy()
    return arr[..., 0] if images.shape[1] == 1 else arr


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Write a uint8 ``[H, W]`` or ``[H, W, 3]`` array as PNG."""
    Image.fromarray(array).save(path, format="PNG")


def info(message: str) -> None:
    """One line for the user on stderr, kept clear of the progress bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


class RunLogger:
    """Writes a run's TensorBoard events, metrics.jsonl and sample grids (rank 0 only)."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.enabled = enabled
        self.run_dir = run_dir
        self._writer: Any = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(run_dir / "tb"))
            (run_dir / "samples").mkdir(exist_ok=True)
            self._jsonl = open(run_dir / "metrics.jsonl", "a")  # noqa: SIM115 (closed in close())

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Log scalars to TensorBoard and one JSON line to metrics.jsonl."""
        if not self.enabled:
            return
        for key, value in values.items():
            self._writer.add_scalar(key, value, step)
        self._jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self._jsonl.flush()

    def board(self, step: int, values: dict[str, float]) -> None:
        """Log scalars to TensorBoard only (no metrics.jsonl line)."""
        if self.enabled:
            for key, value in values.items():
                self._writer.add_scalar(key, value, step)

    def record(
        self,
        step: int,
        scalars: dict[str, float],
        fields: dict[str, Any] | None = None,
        texts: dict[str, str] | None = None,
    ) -> None:
        """Scalars and texts (markdown) to TensorBoard, and one metrics.jsonl line holding the
        scalars with other JSON ``fields`` beside them (a score with its card)."""
        if not self.enabled:
            return
        for key, value in scalars.items():
            self._writer.add_scalar(key, value, step)
        for tag, text in (texts or {}).items():
            self._writer.add_text(tag, text, step)
        self._jsonl.write(json.dumps({"step": step, **scalars, **(fields or {})}) + "\n")
        self._jsonl.flush()

    def grids(self, image_step: int, step: int, fake: Tensor, real: Tensor) -> None:
        """Real and fake grids (make_grid normalize=True, as the tutorial) and a fake grid PNG."""
        if not self.enabled:
            return
        from torchvision.utils import make_grid

        for tag, images in (("fake", fake), ("real", real)):
            grid = make_grid(images.detach().float().cpu(), normalize=True)
            self._writer.add_image(tag, grid, image_step)
        save_png(grid_image(to_uint8(fake)), self.run_dir / "samples" / f"step{step:07d}.png")
        self._writer.flush()

    def close(self) -> None:
        if self.enabled:
            self._writer.close()
            self._jsonl.close()
