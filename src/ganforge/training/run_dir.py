"""The run folder: its layout, creating a new one, finding the checkpoint of an old one."""

from __future__ import annotations

import time
from pathlib import Path

from ganforge.errors import RunDirError


def default_name(preset: str) -> Path:
    """``runs/<preset>-<YYYYmmdd-HHMMSS>``."""
    return Path("runs") / f"{preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"


def create(path: Path) -> Path:
    """Make a new run folder; refuse one that already holds a run."""
    if path.exists():
        if not path.is_dir():
            raise RunDirError(f"--out {path} is a file; choose a folder path")
        if any(path.iterdir()):
            raise RunDirError(
                f"run folder {path} already exists; continue it with --resume {path} "
                "or choose another --out"
            )
    try:
        (path / "checkpoints").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create run folder {path}: {exc.strerror}") from None
    return path


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint a path names: a .pt file, or RUN/checkpoints/last.pt."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        last = path / "checkpoints" / "last.pt"
        if last.is_file():
            return last
        raise RunDirError(f"{path} holds no checkpoints/last.pt; is it a ganforge run folder?")
    raise RunDirError(f"{path} does not exist; give a run folder or a checkpoint file")


def run_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to (RUN/checkpoints/x.pt -> RUN)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
