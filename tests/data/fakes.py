"""Real files for the data tests: images in every mode, broken files, fake dataset trees."""

from __future__ import annotations

import io
import pickle
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def smooth_rgb(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A smooth random RGB image (a bilinear blow-up of 4x4 noise): JPEG keeps it well."""
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)


def write_jpegs(folder: Path, n: int, width: int = 178, height: int = 218, seed: int = 0) -> None:
    """``n`` smooth random JPEGs named like CelebA's (000001.jpg ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        smooth_rgb(rng, width, height).save(folder / f"{i + 1:06d}.jpg", quality=90)


def bad_files(folder: Path) -> list[str]:
    """Write one file of each unusable kind into ``folder``; return their names."""
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    smooth_rgb(np.random.default_rng(1), 64, 64).save(buf, "JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64), np.uint8)).save(buf, "PNG")
    (folder / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is not an image\n")
    (folder / "bomb.png").write_bytes(bomb_png(30_000, 30_000))
    return ["bomb.png", "empty.png", "notes.jpg", "truncated.jpg", "truncated.png"]


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    raw[16:20], raw[20:24] = width.to_bytes(4, "big"), height.to_bytes(4, "big")
    raw[29:33] = zlib.crc32(bytes(raw[12:29])).to_bytes(4, "big")  # IHDR's CRC
    return bytes(raw)


def fake_cifar10(root: Path, per_batch: int = 6, seed: int = 0) -> np.ndarray:
    """torchvision's cifar-10-batches-py layout with ``per_batch`` images a file; returns train."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    train = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        if name != "test_batch":
            train.append((data, labels))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
    names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
    meta = {b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return np.concatenate([d for d, _ in train]).reshape(-1, 3, 32, 32)
