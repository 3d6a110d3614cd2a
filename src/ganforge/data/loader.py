"""Batches drawn from a uint8 array on the training device, or streamed from a memory map."""

from __future__ import annotations

import os
import weakref
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from ganforge import seeds
from ganforge.data.images import ImageData

_COPY_CHUNK = 4096  # images per host-to-device copy when loading a memory map whole


def memory_limit(max_memory_mb: float, device: torch.device) -> int:
    """Bytes of images kept whole on ``device``: as asked, else (0) a quarter of its memory."""
    if max_memory_mb > 0:
        return int(max_memory_mb * 2**20)
    try:
        if device.type == "cuda":
            total = torch.cuda.get_device_properties(device).total_memory
        else:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError, RuntimeError):
        total = 8 * 2**30
    return int(total) // 4


def _to_device(images: np.ndarray, device: torch.device) -> Tensor:
    """The whole uint8 array as a tensor on ``device``, copied in chunks from a memory map."""
    if not isinstance(images, np.memmap):
        return torch.from_numpy(images).to(device)
    if device.type == "cpu":
        return torch.from_numpy(np.array(images))
    out = torch.empty(images.shape, dtype=torch.uint8, device=device)
    for start in range(0, len(images), _COPY_CHUNK):
        part = np.array(images[start : start + _COPY_CHUNK])
        out[start : start + _COPY_CHUNK].copy_(torch.from_numpy(part))
    return out


class BatchLoader:
    """Shuffled batches of a uint8 ``[N, C, H, W]`` dataset, normalised to [-1, 1] on the device.

    The order of epoch ``e`` is a permutation seeded by ``(seed, e)`` alone, so any
    position ``(epoch, index)`` can be reproduced without stored state. Data that
    fits (``max_memory_mb``, 0 = a quarter of the device's memory) is held whole on
    the device and batches are drawn by indexing it. A memory-mapped dataset (a
    prepared ``.gfd`` file) larger than that stays on disk: a background thread
    gathers the next ``prefetch`` batches from the map while the device trains.
    Both ways give bit-identical batches.

    With ``world_size`` ranks, ``batch_size`` is the global batch: batch ``k`` of an
    epoch is the same ``batch_size`` images on any number of ranks, and rank ``r``
    takes its ``r``-th equal slice of it, so every rank sees a disjoint shard.
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        seed: int,
        device: torch.device,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        max_memory_mb: float = 0,
        prefetch: int = 4,
    ) -> None:
        self.device = torch.device(device)
        self.num_images = len(data)
        self.streaming = isinstance(data.images, np.memmap) and data.images.nbytes > memory_limit(
            max_memory_mb, self.device
        )
        self.images: Tensor | None = None  # uint8 [N, C, H, W] on the device, when held whole
        self._map: np.ndarray | None = None  # the memory map, when streamed
        if self.streaming:
            self._map = data.images
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="ganforge-prefetch")
            weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)
            self._pending: dict[tuple[int, int], Future[Tensor]] = {}
        else:
            self.images = _to_device(data.images, self.device)
        self.labels = (
            torch.from_numpy(np.asarray(data.labels)).to(self.device)
            if data.labels is not None
            else None
        )
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self.prefetch = prefetch
        self.local_batch = batch_size // world_size  # this rank's slice of each global batch
        full, rest = divmod(self.num_images, batch_size)
        self.batches_per_epoch = full if drop_last else full + (rest > 0)
        self._orders: dict[int, Tensor] = {}  # epoch -> this rank's order (CPU), last two kept
        self._device_order: tuple[int, Tensor] = (-1, torch.empty(0, dtype=torch.long))

    def __len__(self) -> int:
        return self.batches_per_epoch

    def _cpu_order(self, epoch: int) -> Tensor:
        if epoch not in self._orders:
            gen = torch.Generator().manual_seed(seeds.indexed(self.seed, epoch))
            self._orders = {e: o for e, o in self._orders.items() if e in (epoch - 1, epoch + 1)}
            self._orders[epoch] = torch.randperm(self.num_images, generator=gen)
        return self._orders[epoch]

    def order(self, epoch: int) -> Tensor:
        """The sample order of ``epoch``, all ranks' (on the device when the data is)."""
        if self.images is None:
            return self._cpu_order(epoch)
        if self._device_order[0] != epoch:
            self._device_order = (epoch, self._cpu_order(epoch).to(self.images.device))
        return self._device_order[1]

    def _span(self, index: int) -> slice:
        """This rank's part of global batch ``index`` in the epoch's order."""
        start = index * self.batch_size + self.rank * self.local_batch
        return slice(start, min(start + self.local_batch, (index + 1) * self.batch_size))

    def _indices(self, epoch: int, index: int) -> Tensor:
        return self._cpu_order(epoch)[self._span(index)]

    def batch(self, epoch: int, index: int) -> tuple[Tensor, Tensor | None]:
        """Batch ``index`` of ``epoch``: float images in [-1, 1] ``[B, C, H, W]`` and labels."""
        if self.images is not None:
            idx = self.order(epoch)[self._span(index)]
            raw = torch.index_select(self.images, 0, idx)  # row copies: ~20x images[idx] on CPU
        else:
            idx = self._indices(epoch, index)
            future = self._pending.pop((epoch, index), None)
            host = future.result() if future is not None else self._gather(idx.numpy())
            self._schedule(epoch, index)
            raw = host.to(self.device, non_blocking=True)
            idx = idx.to(self.device)
        x = raw.float().div_(127.5).sub_(1.0)
        y = torch.index_select(self.labels, 0, idx) if self.labels is not None else None
        return x, y

    def _gather(self, idx: np.ndarray) -> Tensor:
        """uint8 ``[B, C, H, W]`` rows ``idx`` of the map, read in file order."""
        assert self._map is not None
        sort = np.argsort(idx, kind="stable")
        rows = np.asarray(self._map[idx[sort]])
        out = np.empty_like(rows)
        out[sort] = rows
        host = torch.from_numpy(out)
        return host.pin_memory() if self.device.type == "cuda" else host

    def _schedule(self, epoch: int, index: int) -> None:
        """Queue the ``prefetch`` batches after ``(epoch, index)``; drop other queued ones."""
        wanted = []
        for _ in range(self.prefetch):
            epoch, index = (epoch, index + 1) if index + 1 < len(self) else (epoch + 1, 0)
            wanted.append((epoch, index))
        for key in [k for k in self._pending if k not in wanted]:
            self._pending.pop(key).cancel()
        for key in wanted:
            if key not in self._pending:
                idx = self._indices(*key).numpy()
                self._pending[key] = self._pool.submit(self._gather, idx)
