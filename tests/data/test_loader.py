"""BatchLoader: deterministic order, and the same batches from memory or streamed from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import BatchLoader, ImageData
from ganforge.data.loader import memory_limit
from ganforge.data.packed import read_packed, write_packed

CPU = torch.device("cpu")


@pytest.fixture
def packed(tmp_path: Path) -> ImageData:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (53, 3, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 4, 53).astype(np.int64)
    write_packed(ImageData(images, labels, list("abcd"), "t"), tmp_path / "d.gfd")
    return read_packed(tmp_path / "d.gfd")


def _positions(loader: BatchLoader, epochs: int) -> list[tuple[int, int]]:
    return [(e, i) for e in range(epochs) for i in range(len(loader))]


def test_memory_map_over_the_limit_streams_the_same_batches(packed: ImageData) -> None:
    whole = BatchLoader(packed, 8, seed=5, device=CPU, max_memory_mb=1024)
    streamed = BatchLoader(packed, 8, seed=5, device=CPU, max_memory_mb=0.001)  # ~1 KB
    assert not whole.streaming and whole.images is not None
    assert streamed.streaming and streamed.images is None
    assert len(whole) == len(streamed) == 7  # 53 images, last batch of 5 kept
    for epoch, index in _positions(whole, 3):
        x1, y1 = whole.batch(epoch, index)
        x2, y2 = streamed.batch(epoch, index)
        assert x1.dtype == x2.dtype == torch.float32
        assert torch.equal(x1, x2) and y1 is not None and y2 is not None and torch.equal(y1, y2)
    assert x1.min() >= -1 and x1.max() <= 1 and x1.shape == (5, 3, 8, 8)


def test_streamed_batches_follow_any_jump(packed: ImageData) -> None:
    """Resume and random access: a position asked out of order is still the right batch."""
    whole = BatchLoader(packed, 8, seed=1, device=CPU, max_memory_mb=1024)
    streamed = BatchLoader(packed, 8, seed=1, device=CPU, max_memory_mb=0.001)
    for epoch, index in [(2, 3), (0, 6), (0, 0), (5, 1), (5, 2), (1, 6), (2, 0)]:
        assert torch.equal(whole.batch(epoch, index)[0], streamed.batch(epoch, index)[0])


def test_the_batch_values_are_the_images(packed: ImageData) -> None:
    loader = BatchLoader(packed, 8, seed=2, device=CPU, max_memory_mb=0.001)
    x, y = loader.batch(1, 2)
    idx = loader.order(1)[16:24].numpy()
    expected = torch.from_numpy(np.asarray(packed.images[idx])).float() / 127.5 - 1
    assert torch.allclose(x, expected, atol=1e-6)
    assert packed.labels is not None and y is not None
    assert y.tolist() == packed.labels[idx].tolist()


def test_order_depends_on_seed_and_epoch_only(packed: ImageData) -> None:
    a = BatchLoader(packed, 8, seed=3, device=CPU)
    b = BatchLoader(packed, 8, seed=3, device=CPU, max_memory_mb=0.001)
    assert torch.equal(a.order(4), b.order(4))
    assert sorted(a.order(0).tolist()) == list(range(53))
    assert not torch.equal(a.order(0), a.order(1))
    assert not torch.equal(a.order(0), BatchLoader(packed, 8, seed=4, device=CPU).order(0))


def test_ranks_split_each_global_batch(packed: ImageData) -> None:
    one = BatchLoader(packed, 4, 0, CPU, drop_last=True, max_memory_mb=0.001)
    ranks = [
        BatchLoader(packed, 4, 0, CPU, True, rank=r, world_size=2, max_memory_mb=0.001)
        for r in (0, 1)
    ]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 13  # 53 images, global batch 4
    for index in (0, 5, 12):
        whole, _ = one.batch(1, index)
        parts = [r.batch(1, index)[0] for r in ranks]
        assert parts[0].shape[0] == parts[1].shape[0] == 2
        assert torch.equal(torch.cat(parts), whole)  # disjoint halves of the same batch


def test_in_memory_data_is_never_streamed() -> None:
    data = ImageData(np.zeros((4, 1, 8, 8), np.uint8))
    assert not BatchLoader(data, 2, 0, CPU, max_memory_mb=0.000001).streaming


def test_memory_limit() -> None:
    assert memory_limit(2, CPU) == 2 * 2**20
    assert memory_limit(0, CPU) > 2**20  # a quarter of this machine's RAM
