"""Running on several processes through torch.distributed, as started by ``torchrun``.

Each rank trains on its own slice of every global batch; G and D are each wrapped
in DistributedDataParallel, so gradients are averaged across ranks before every
optimiser step. Only rank 0 writes logs, samples and checkpoints.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ganforge.errors import ConfigError
from ganforge.run.device import resolve_device


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes logs and checkpoints."""
        return self.rank == 0


def world_from_env() -> World:
    """The world torchrun describes in RANK, WORLD_SIZE and LOCAL_RANK (one process if unset)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))


def setup(world: World, device_name: str, timeout_s: float) -> torch.device:
    """Pick this rank's device and join the process group (nccl on GPUs, gloo on CPUs)."""
    if not world.enabled:
        return resolve_device(device_name)
    use_cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if device_name.startswith("cuda") and not use_cuda:
        raise ConfigError("--device cuda asked for, but no CUDA GPU is visible")
    if use_cuda:
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if use_cuda else "gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
            device_id=device if use_cuda else None,
        )
    return device


def barrier(world: World) -> None:
    """Wait until every rank gets here (nothing on one process)."""
    if world.enabled and dist.is_initialized():
        dist.barrier()


def teardown(world: World) -> None:
    """Leave the process group."""
    if world.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(net: nn.Module, world: World, device: torch.device, sync_bn: bool) -> nn.Module:
    """``net`` in DistributedDataParallel (with SyncBatchNorm if asked); itself on one process.

    Buffers are not broadcast: BatchNorm statistics stay per rank, and two forward
    passes of D before one backward (real, then fake) stay legal.
    """
    if not world.enabled:
        return net
    if sync_bn:
        if device.type != "cuda":
            raise ConfigError("--sync-bn needs GPUs (SyncBatchNorm has no CPU kernel); drop it")
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids, broadcast_buffers=False)


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any rank (so all ranks stop together)."""
    if not world.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def mean_over_ranks(
    stats: dict[str, torch.Tensor], world: World, device: torch.device
) -> dict[str, torch.Tensor]:
    """Each of a step's figures (0-dim tensors) averaged over the ranks, in one collective.

    Every rank trains on an equal slice of the global batch, so the mean of the ranks'
    batch-mean losses is the loss of the global batch: the figure one process would log."""
    if not world.enabled or not stats:
        return stats
    values = torch.stack([v.detach().float().reshape(()).to(device) for v in stats.values()])
    dist.all_reduce(values)
    values /= world.size
    return dict(zip(stats, values.unbind(), strict=True))


def rank_count_change(before: int | None, world: World, batch_size: int, G: nn.Module) -> str:
    """One line for a run resumed on another number of processes than ``before``."""
    if not before or before == world.size:
        return ""
    batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in G.modules())
    return (
        f"trained on {before} process(es), continuing on {world.size}: the same global batch of "
        f"{batch_size}, {batch_size // world.size} images per process"
        + ("; BatchNorm normalises each process's share (docs/DISTRIBUTED.md)" if batchnorm else "")
    )


def shard(n: int, world: World) -> slice:
    """This rank's contiguous share of ``n`` items, the shares in rank order covering all."""
    start = n * world.rank // world.size
    return slice(start, n * (world.rank + 1) // world.size)


def broadcast_buffers(net: nn.Module, world: World) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) into ``net`` on every rank.

    Ranks keep their own statistics while training; before sampling for an evaluation
    every rank takes rank 0's, so all ranks sample the generator that rank 0 saves."""
    if not world.enabled:
        return
    for buffer in net.buffers():
        dist.broadcast(buffer.data, src=0)


def gather_arrays(arrays: list[np.ndarray | None], world: World) -> list[np.ndarray | None]:
    """Each of ``arrays`` concatenated over the ranks in rank order, on rank 0 (elsewhere:
    this rank's own arrays). A None stays None."""
    if not world.enabled:
        return arrays
    parts: list[list[np.ndarray | None]] | None = [[] for _ in range(world.size)]
    dist.gather_object(arrays, parts if world.is_main else None, dst=0)
    if not world.is_main or parts is None:
        return arrays
    return [
        None if parts[0][i] is None else np.concatenate([p[i] for p in parts])
        for i in range(len(arrays))
    ]
