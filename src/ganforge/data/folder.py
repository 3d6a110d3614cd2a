"""Image folders: recursive discovery, class labels from sub-folders, parallel decoding."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import sys
import types
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np

from ganforge.cores import usable_cores
from ganforge.data.decode import Chunk, decode_chunk
from ganforge.data.images import ImageData
from ganforge.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
PARALLEL_FROM = 512  # folders with fewer files decode in this process (no start-up cost)
_CHUNK = 64  # files per decoder task
T = TypeVar("T")


@dataclass
class DecodeReport:
    """What happened to the files of a folder."""

    used: int = 0
    bad: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self, limit: int = 3) -> str:
        """One line naming the count of skipped files and the first few."""
        named = ", ".join(f"{p} ({why})" for p, why in self.bad[:limit])
        more = f" and {len(self.bad) - limit} more" if len(self.bad) > limit else ""
        return f"skipped {len(self.bad)} unreadable image file(s): {named}{more}"


@dataclass
class FolderListing:
    """The image files of a folder, sorted, with their labels when sub-folders name classes."""

    root: Path
    files: list[Path]
    labels: list[int] | None
    class_names: list[str]


def list_images(root: str | Path) -> FolderListing:
    """Image files under ``root``; labels when every file sits in one of several class folders.

    Hidden files and folders (names starting with ``.``) are left out.
    """
    root = Path(root)
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and p.is_file()
    )
    tops = [p.relative_to(root).parts for p in files]
    if files and all(len(parts) > 1 for parts in tops):
        class_names = sorted({parts[0] for parts in tops})
        if len(class_names) > 1:
            index = {name: i for i, name in enumerate(class_names)}
            return FolderListing(root, files, [index[parts[0]] for parts in tops], class_names)
    if not files:
        raise DataError(
            f"no images found in {root} (looked recursively for "
            f"{', '.join(IMAGE_EXTENSIONS)}); point --data at a folder of images"
        )
    return FolderListing(root, files, None, [])


def decode_workers(requested: int, n_files: int) -> int:
    """Decoder processes: as asked, else one per usable core for folders of PARALLEL_FROM+ files."""
    if requested > 0:
        return requested
    if n_files < PARALLEL_FROM:
        return 1
    return max(1, min(usable_cores(), n_files // (PARALLEL_FROM // 2)))


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Start processes as if ``__main__`` were empty.

    A spawned process first re-runs the parent's main script (multiprocessing's "safe
    importing of main module"): a user's script would import torch again in every
    decoder, and one without an ``if __name__ == "__main__":`` guard would start
    training again in each. The decoders need only ganforge.data.decode, so they are
    started with a bare ``__main__`` that has nothing to re-run.
    """
    saved = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = saved


def process_map(
    fn: Callable[[list[str]], T], paths: list[str], workers: int, chunk: int = _CHUNK
) -> Generator[T, None, None]:
    """``fn`` over chunks of ``paths`` in order, in ``workers`` processes (or this one).

    ``fn`` must live in a module that imports no torch (``ganforge.data.decode``,
    ``ganforge.data.scan``): each process imports it alone.
    """
    parts = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    if workers <= 1:
        yield from map(fn, parts)
        return
    # spawn: a fresh interpreter that imports the decoding module alone (numpy and
    # Pillow, no torch), safe whatever threads or CUDA state this process has.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        with _main_hidden():  # map() submits every task, so every process starts in here
            results = pool.map(fn, parts)
        yield from results
    finally:  # also on an early stop (a bad file with on_bad_image='error'): drop queued work
        pool.shutdown(wait=True, cancel_futures=True)


def _chunks(
    files: list[Path], size: int, channels: int, crop: str, bg: tuple[int, int, int], workers: int
) -> Generator[Chunk, None, None]:
    """Decoded chunks in file order, from ``workers`` processes (or this one)."""
    decode = functools.partial(decode_chunk, size=size, channels=channels, crop=crop, background=bg)
    yield from process_map(decode, [str(p) for p in files], workers)


def decode_files(
    files: list[Path],
    out: np.ndarray,
    crop: str = "center",
    on_bad_image: str = "skip",
    background: tuple[int, int, int] = (255, 255, 255),
    workers: int = 0,
    progress: bool | None = None,
) -> tuple[list[int], DecodeReport]:
    """Decode ``files`` into the front rows of uint8 ``out`` ``[len(files), C, S, S]``.

    Returns the indices of the files used (their images fill ``out[:len(kept)]`` in
    order) and a report; raises DataError for a bad file when ``on_bad_image`` is
    ``error``, and for any non-square image when ``crop`` is ``none``.
    """
    from tqdm import tqdm

    _, channels, size, _ = out.shape
    workers = decode_workers(workers, len(files))
    report = DecodeReport()
    kept: list[int] = []
    # progress None: a bar for big folders, on a terminal only (tqdm's disable=None)
    disable = (None if len(files) >= 2000 else True) if progress is None else not progress
    bar = tqdm(total=len(files), unit="img", desc="decoding", disable=disable)
    position = 0
    chunks = contextlib.closing(_chunks(files, size, channels, crop, background, workers))
    with bar, chunks as decoded:
        for images, status in decoded:
            out[len(kept) : len(kept) + len(images)] = images
            for result in status:
                path = files[position]
                if result is None:
                    kept.append(position)
                elif result[0] == "not-square":
                    raise DataError(
                        f"{path} is {result[1]}, not square, and crop is 'none'; "
                        "use --crop center or give square images"
                    )
                elif on_bad_image == "error":
                    raise DataError(f"{path}: {result[1]}; remove it or use --on-bad-image skip")
                else:
                    report.bad.append((path, result[1]))
                position += 1
            bar.update(len(status))
    report.used = len(kept)
    return kept, report


def load_folder(
    root: str | Path,
    size: int,
    channels: int,
    crop: str = "center",
    on_bad_image: str = "skip",
    background: tuple[int, int, int] = (255, 255, 255),
    workers: int = 0,
) -> tuple[ImageData, DecodeReport]:
    """Decode every image under ``root`` into one ImageData of ``[N, channels, size, size]``."""
    listing = list_images(root)
    images = np.empty((len(listing.files), channels, size, size), dtype=np.uint8)
    kept, report = decode_files(listing.files, images, crop, on_bad_image, background, workers)
    if not kept:
        raise DataError(
            f"none of the {len(listing.files)} image files in {listing.root} could be read "
            f"({report.summary()})"
        )
    labels = None if listing.labels is None else np.asarray(listing.labels, np.int64)[kept]
    data = ImageData(images[: len(kept)], labels, listing.class_names, str(listing.root))
    return data, report
