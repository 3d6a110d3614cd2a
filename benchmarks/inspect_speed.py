"""How long ``ganforge inspect`` takes on a folder of generated images.

The folder: ``--files`` images in two class folders, CelebA-sized (178x218) JPEGs of
blown-up 8x8 random colours, with 1% exact copies, 1% resized PNG copies and one file of
every bad kind the data layer knows. The whole report is timed, contact sheet
included, as ``ganforge inspect FOLDER`` runs it (decoder processes: one per usable
core). Then the channel and size defaults training would choose for the same
folder are timed (headers of a 400-file sample). Usage (from the repository root):

    PYTHONPATH=src python benchmarks/inspect_speed.py [--files 10000] [--workers 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ganforge.config import TrainConfig
from ganforge.data import resolve_shape
from ganforge.data.inspect import InspectRequest, inspect

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.data.fakes import bad_files  # noqa: E402


def _image(rng: np.random.Generator) -> Image.Image:
    """A 178x218 RGB image of 8x8 random colours blown up: some structure, like a photo."""
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((178, 218), Image.Resampling.BILINEAR)


def write_tree(root: Path, n: int, seed: int = 0) -> None:
    """``n`` files under ``root/a`` and ``root/b``: JPEGs, 1% exact and 1% resized copies."""
    rng = np.random.default_rng(seed)
    copies = max(1, n // 100)
    jpegs = n - 2 * copies - 5  # 5 bad files
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
    paths = []
    for i in range(jpegs):
        path = root / ("a" if i % 3 else "b") / f"{i:06d}.jpg"
        _image(rng).save(path, quality=90)
        paths.append(path)
    for k in range(copies):
        shutil.copy(paths[k], root / "a" / f"copy{k:05d}.jpg")
        Image.open(paths[copies + k]).resize((89, 109)).save(root / "a" / f"small{k:05d}.png")
    bad_files(root / "b")


def main() -> None:
    """Write the tree, inspect it, print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=0, help="decoder processes (0: auto)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        start = time.perf_counter()
        write_tree(root, args.files)
        written = time.perf_counter() - start
        start = time.perf_counter()
        sheet = str(Path(tmp) / "sheet.png")
        report = inspect(InspectRequest(str(root), workers=args.workers, sheet=sheet))
        seconds = time.perf_counter() - start
        start = time.perf_counter()  # the defaults training chooses: headers of a sample
        _, notices = resolve_shape(TrainConfig(data=str(root)))
        defaults = time.perf_counter() - start
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(json.dumps({
        "files": report.files, "images": report.images, "bad": len(report.bad),
        "exact_files": report.duplicates["exact_files"],
        "near_files": report.duplicates["near_files"], "cores": cores,
        "workers": report.prepare["workers"], "seconds": round(seconds, 1),
        "files_per_s": round(report.files / seconds, 1), "write_seconds": round(written, 1),
        "defaults_seconds": round(defaults, 2), "defaults": notices[0],
        "load": os.getloadavg(),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
