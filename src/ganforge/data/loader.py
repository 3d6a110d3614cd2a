"""Batches drawn from a uint8 array held in memory on the training device."""

from __future__ import annotations

import torch
from torch import Tensor

from ganforge.data.images import ImageData


class BatchLoader:
    """Shuffled batches by indexing a uint8 ``[N, C, H, W]`` tensor, normalised to [-1, 1].

    The order of epoch ``e`` is a permutation seeded by ``(seed, e)`` alone, so any
    position ``(epoch, index)`` can be reproduced without stored state.
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
    ) -> None:
        self.images = torch.from_numpy(data.images).to(device)  # uint8 [N, C, H, W]
        self.labels = (
            torch.from_numpy(data.labels).to(device) if data.labels is not None else None
        )
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        shard = len(self.images) // world_size
        full, rest = divmod(shard, batch_size)
        self.batches_per_epoch = full if drop_last else full + (rest > 0)
        self._order_epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return self.batches_per_epoch

    def order(self, epoch: int) -> Tensor:
        """This rank's sample indices for ``epoch``."""
        if epoch != self._order_epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            perm = torch.randperm(len(self.images), generator=gen)
            shard = len(self.images) // self.world_size
            self._order = perm[self.rank * shard : (self.rank + 1) * shard].to(
                self.images.device
            )
            self._order_epoch = epoch
        return self._order

    def batch(self, epoch: int, index: int) -> tuple[Tensor, Tensor | None]:
        """Batch ``index`` of ``epoch``: float images in [-1, 1] ``[B, C, H, W]`` and labels."""
        idx = self.order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        x = self.images[idx].float().div_(127.5).sub_(1.0)
        y = self.labels[idx] if self.labels is not None else None
        return x, y
