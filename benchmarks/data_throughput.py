"""Batches of 64x64x3 images per second: a JPEG folder read the classic way vs ganforge.

(a) torchvision ImageFolder + Resize(64) + CenterCrop(64) + ToTensor + Normalize,
    DataLoader with one worker, batch 128, shuffled: decoding every JPEG every epoch.
(b) the same folder prepared once by ganforge (``prepare``) and read through
    BatchLoader: the uint8 array held on the device, batches drawn by indexing.
(c) the same prepared file streamed from its memory map (BatchLoader over its
    memory limit: a background thread gathers batches from disk).

The folder is a few thousand generated JPEGs of CelebA's size (178x218, smooth
random images), written to a temporary folder. Usage:

    PYTHONPATH=src python benchmarks/data_throughput.py [--images 3000] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ganforge.data import BatchLoader, DataSpec, load_data, prepare

SIZE, BATCH = 64, 128


def _write_folder(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` smooth random 178x218 JPEGs (bilinear blow-ups of 4x4 noise), CelebA's size."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((178, 218), Image.Resampling.BILINEAR)
        img.save(folder / f"{i + 1:06d}.jpg", quality=90)


def _rate(next_batch: Callable[[], torch.Tensor], batches: int, device: torch.device) -> float:
    """Batches per second over ``batches`` calls, after one warm-up call."""
    next_batch()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(batches):
        x = next_batch()
    if device.type == "cuda":
        torch.cuda.synchronize()
    assert x.shape[1:] == (3, SIZE, SIZE) and x.dtype == torch.float32
    return batches / (time.perf_counter() - start)


def _classic(root: Path, device: torch.device, batches: int) -> float:
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            transforms.Resize(SIZE),
            transforms.CenterCrop(SIZE),
            transforms.ToTensor(),
            transforms.Normalize([0.5] * 3, [0.5] * 3),
        ]
    )
    dataset = datasets.ImageFolder(str(root), transform=transform)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=1, drop_last=True)

    def endless() -> torch.Tensor:
        nonlocal it
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(loader)
            x, _ = next(it)
        return x.to(device)

    it = iter(loader)
    return _rate(endless, batches, device)


def _ganforge(path: Path, device: torch.device, batches: int, stream: bool) -> float:
    data, _ = load_data(DataSpec(str(path), image_size=SIZE, channels=3))
    loader = BatchLoader(data, BATCH, seed=0, device=device, drop_last=True,
                         max_memory_mb=0.001 if stream else 0)  # fmt: skip
    assert loader.streaming == stream
    position = [0]

    def next_batch() -> torch.Tensor:
        epoch, index = divmod(position[0], len(loader))
        position[0] += 1
        return loader.batch(epoch, index)[0]

    return _rate(next_batch, batches, device)


def main() -> None:
    """Run the three readers on one generated folder and print (and optionally save) figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--classic-batches", type=int, default=20)
    parser.add_argument("--ganforge-batches", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    parser.add_argument("--workers", type=int, default=0, help="prepare's decoders (0: per core)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "faces" / "all"  # ImageFolder wants one class folder
        t0 = time.perf_counter()
        _write_folder(folder, args.images)
        print(f"wrote {args.images} JPEGs of 178x218 in {time.perf_counter() - t0:.1f} s")

        classic = _classic(folder.parent, device, args.classic_batches)
        print(f"(a) ImageFolder + DataLoader(num_workers=1): {classic:8.2f} batches/s")

        spec = DataSpec(str(folder), image_size=SIZE, channels=3, decode_workers=args.workers)
        done = prepare(spec, Path(tmp) / "f.gfd")
        print(f"    ganforge prepare: {done.header.count} images in {done.seconds:.1f} s "
              f"({done.header.count / done.seconds:.0f} img/s)")  # fmt: skip
        held = _ganforge(done.path, device, args.ganforge_batches, stream=False)
        print(f"(b) prepared, BatchLoader on {device.type}:      {held:8.1f} batches/s "
              f"= {held / classic:.0f}x (a)")  # fmt: skip
        streamed = _ganforge(done.path, device, args.ganforge_batches, stream=True)
        print(f"(c) prepared, streamed from the memory map: {streamed:8.1f} batches/s "
              f"= {streamed / classic:.0f}x (a)")  # fmt: skip

    figures = {
        "images": args.images, "device": str(device), "torch_threads": args.threads,
        "cpu_cores": len(os.sched_getaffinity(0)), "load_average": os.getloadavg()[0],
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "",
        "classic_batches_per_s": classic, "prepared_batches_per_s": held,
        "streamed_batches_per_s": streamed, "prepare_seconds": done.seconds,
        "prepared_vs_classic": held / classic, "streamed_vs_classic": streamed / classic,
    }  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
