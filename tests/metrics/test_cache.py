"""Real-data features are cached per dataset, extractor and size, and recomputed on change."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ganforge.metrics import FeatureExtractor, RealImages, cache_root, evaluate


def test_cache_is_reused_and_invalidated_when_the_data_changes(
    mnist_net: FeatureExtractor, digits: np.ndarray, tmp_path: Path
) -> None:
    assert cache_root() == tmp_path / "cache"  # tests/conftest.py points $GANFORGE_CACHE here
    real = RealImages(digits[:300].copy(), "mnist-sample", "train")
    fakes = digits[-200:]
    first = evaluate(fakes, real, "fid", mnist_net, 200)
    assert not first.cache_reused and first.real_cache is not None
    path = Path(first.real_cache)
    assert path.is_file() and path.name == "mnist-sample-train-mnist-net-1x28x28.npz"
    stamp = path.stat().st_mtime_ns
    second = evaluate(fakes, real, "fid", mnist_net, 200)
    assert second.cache_reused and path.stat().st_mtime_ns == stamp
    assert second.values == first.values

    changed = real.images.copy()
    changed[0, 0, 14, 14] ^= 0xFF  # one pixel
    third = evaluate(fakes, RealImages(changed, "mnist-sample", "train"), "fid", mnist_net, 200)
    assert not third.cache_reused and third.real_cache == str(path)
    assert third.values["fid"] != first.values["fid"]
    fourth = evaluate(fakes, RealImages(changed, "mnist-sample", "train"), "fid", mnist_net, 200)
    assert fourth.cache_reused


def test_cache_files_differ_by_split_and_size_and_can_be_off(
    mnist_net: FeatureExtractor, digits: np.ndarray
) -> None:
    fakes = digits[-50:]
    a = evaluate(fakes, RealImages(digits[:60], "mnist-sample", "train"), "fid", mnist_net, 50)
    big = np.repeat(np.repeat(digits[:60], 2, axis=2), 2, axis=3)
    b = evaluate(fakes, RealImages(big, "mnist-sample", "train"), "fid", mnist_net, 50)
    c = evaluate(fakes, RealImages(digits[:60], "mnist-sample", "test"), "fid", mnist_net, 50)
    assert len({a.real_cache, b.real_cache, c.real_cache}) == 3
    off = evaluate(fakes, RealImages(digits[:60], "x"), "fid", mnist_net, 50, cache=False)
    assert off.real_cache is None
    assert not (cache_root() / "real" / "x-mnist-net-1x28x28.npz").exists()
    assert os.listdir(cache_root() / "real")  # the others were written
