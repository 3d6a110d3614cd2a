"""The grids of docs/guide-health.md: short runs that raise d-wins, collapse and diverging,
each ending with a grid of its last step.

taskset -c 1 env PYTHONPATH=src python benchmarks/health_grids.py
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ganforge.config import load_preset
from ganforge.training.loop import Trainer

OUT = Path(__file__).parents[1] / "docs" / "images"
SMALL = {
    "data": "mnist-sample", "progress": False, "epochs": 0, "minutes": 0.0, "ckpt_every": 0,
    "z_dim": 16, "batch_size": 16, "g_features": 8, "d_features": 8, "grid_n": 32,
}  # fmt: skip


def _run(name: str, steps: int, zero_z: bool = False, **changes: Any) -> None:
    """Train ``steps`` steps of a small quick run; copy its last grid to docs/images."""
    cfg = dataclasses.replace(
        load_preset("quick"), **(SMALL | {"steps": steps, "log_every": steps} | changes)
    )
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, out=Path(tmp) / name)
        if zero_z:  # G's first layer ignores z: every z draws the same image
            first = next(m for m in trainer.G.modules() if isinstance(m, torch.nn.ConvTranspose2d))
            first.weight.data.zero_()
            first.weight.requires_grad_(False)
        trainer.run()
        shutil.copy(trainer.folder / "samples" / f"step{steps:07d}.png", OUT / f"health-{name}.png")


def main() -> None:
    """Write health-d-wins.png, health-collapse.png and health-diverging.png."""
    _run("d-wins", 300, lr_d=2e-3)
    _run("collapse", 600, zero_z=True, ema_decay=0.0, health_every=25)
    _run("diverging", 60, lr_g=1.0, lr_d=1.0, health_every=10)


if __name__ == "__main__":
    main()
