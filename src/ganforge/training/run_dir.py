"""The run folder: its layout, creating a new one, finding the checkpoint of an old one."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ganforge.errors import RunDirError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no run-folder locking
    fcntl = None  # type: ignore[assignment]


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
    folder = checkpoint.parent
    return folder.parent if folder.name == "checkpoints" else folder


class RunLock:
    """An exclusive lock on a run folder, held by one live training process.

    It is an ``flock`` on ``RUN/.lock``: the kernel drops it when the holder dies,
    so the lock of a killed process is simply taken over.
    """

    def __init__(self, run: Path) -> None:
        self.path = run / ".lock"
        self._fh: Any = None

    def acquire(self) -> RunLock:
        """Take the lock or raise RunDirError naming the process that holds it."""
        fh = open(self.path, "a+")  # noqa: SIM115 (held until release())
        if fcntl is None:
            self._fh = fh
            return self
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise RunDirError(
                f"run folder {self.path.parent} is in use by {holder}; wait for it to finish "
                "or stop it first"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"process {os.getpid()}")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            if fcntl is not None:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
