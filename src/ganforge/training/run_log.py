"""A run's record: TensorBoard events, metrics.jsonl and the sample grid PNGs (rank 0 only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor

from ganforge.grids import grid_image, save_png, to_uint8


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
        from tensorboard.compat.proto.summary_pb2 import Summary

        # one event holding every value: a quarter of the cost of add_scalar for each
        scalars = [Summary.Value(tag=key, simple_value=value) for key, value in values.items()]
        self._writer.file_writer.add_summary(Summary(value=scalars), step)
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
