"""The run folder: its layout, creating a new one, finding the checkpoint of an old one."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ganforge.errors import RunDirError
from ganforge.run import checkpoint as ckpt

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


def load_checkpoint(path: str | Path) -> tuple[Path, dict[str, Any], str]:
    """Load the checkpoint a path names; return it, its contents and a note for the user.

    A run folder whose ``last.pt`` is damaged or missing falls back to its newest intact
    periodic checkpoint; the note (otherwise "") says which files and why. ``last.pt`` is a
    hard link to the newest periodic file, so damage to one is damage to both: that file
    is skipped with it. A checkpoint file named itself never falls back.
    """
    path = Path(path)
    folder = path / "checkpoints"
    periodic = sorted(folder.glob("step*.pt"), reverse=True) if path.is_dir() else []
    if not periodic:
        file = find_checkpoint(path)
        return file, ckpt.load(file), ""
    last = folder / "last.pt"
    try:
        return last, ckpt.load(last), ""
    except ckpt.DamagedCheckpoint as exc:
        problem = f"{last} is damaged ({exc.reason})"
    except ckpt.CheckpointError:
        if last.exists():
            raise  # another kind of file, or one from a newer ganforge: no silent fallback
        problem = f"{path} holds no checkpoints/last.pt"
    skipped: list[str] = []
    for candidate in periodic:
        if last.exists() and os.path.samefile(candidate, last):
            skipped.append(f"{candidate.name} (the same file)")
            continue
        try:
            state = ckpt.load(candidate)
        except ckpt.DamagedCheckpoint as exc:
            skipped.append(f"{candidate.name} ({exc.reason})")
            continue
        also = f"; skipped {', '.join(skipped)}" if skipped else ""
        step = state.get("position", {}).get("step", "?")
        return candidate, state, (
            f"{problem}: using {candidate} (step {step}), the newest intact "
            f"checkpoint{also}"
        )  # fmt: skip
    raise RunDirError(
        f"{problem}, and no periodic checkpoint beside it is intact "
        f"({', '.join(skipped) or 'none'}); restore a copy of the run or start a new one"
    )


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
