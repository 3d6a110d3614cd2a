"""Real-data features, cached per dataset, extractor and image size.

Files live in ``$GANFORGE_CACHE`` (default ``~/.cache/ganforge``) under
``real/<dataset>-<extractor>-<C>x<H>x<W>.npz``. Each holds the features of every
real image and a key: a hash of the uint8 array together with the extractor's
weights. A file whose key differs (the data or the weights changed) is
recomputed and replaced; files are replaced atomically.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ganforge.metrics.extractors import FeatureExtractor

FeaturesFn = Callable[[np.ndarray], np.ndarray]  # uint8 images [N, C, H, W] -> features [N, D]


@dataclass(frozen=True)
class RealImages:
    """Real images, uint8 ``[N, C, H, W]``, named for the cache file and for ``features="auto"``.

    The array is hashed once (:attr:`fingerprint`): do not change it in place afterwards."""

    images: np.ndarray
    name: str = "real"  # the dataset's name (fashion-mnist, mnist, a folder path, ...)
    split: str = ""  # train, test, or "" when the data has no splits

    @cached_property
    def fingerprint(self) -> str:
        """:func:`data_hash` of the images, computed once: the cache key's and the score card's."""
        return data_hash(self.images)


@dataclass
class RealFeatures:
    """Features ``[N, D]`` of the real images, and where they were cached."""

    features: np.ndarray
    path: Path | None
    reused: bool


def cache_root() -> Path:
    """``$GANFORGE_CACHE``, else ``~/.cache/ganforge``."""
    env = os.environ.get("GANFORGE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ganforge"


def data_hash(images: np.ndarray) -> str:
    """A hash of a uint8 image array's shape and bytes."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str((images.shape, images.dtype.str)).encode())
    digest.update(np.ascontiguousarray(images).data)
    return digest.hexdigest()


def cache_path(real: RealImages, extractor: FeatureExtractor) -> Path:
    """The cache file for these real images under this extractor."""
    name = f"{real.name}-{real.split}" if real.split else real.name
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "real"
    shape = "x".join(str(s) for s in real.images.shape[1:])
    return cache_root() / "real" / f"{slug}-{extractor.name}-{shape}.npz"


def _read(path: Path, key: str) -> np.ndarray | None:
    try:
        with np.load(path) as stored:
            if str(stored["key"]) == key:
                return np.asarray(stored["features"])
    except (OSError, KeyError, ValueError):  # missing, partial or foreign file: recompute
        pass
    return None


def _write(path: Path, key: str, features: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, key=np.array(key), features=features)
        os.replace(tmp, path)
    except OSError:  # a read-only or full cache only costs the next run time
        pass


def real_features(
    real: RealImages,
    extractor: FeatureExtractor,
    compute: FeaturesFn,
    use_cache: bool = True,
) -> RealFeatures:
    """Features of the real images: cached ones when the key matches, else computed and stored."""
    if not use_cache:
        return RealFeatures(compute(real.images), None, False)
    path = cache_path(real, extractor)
    key = f"{real.fingerprint}-{extractor.fingerprint}"
    cached = _read(path, key)
    if cached is not None:
        return RealFeatures(cached, path, True)
    features = compute(real.images)
    _write(path, key, features)
    return RealFeatures(features, path, False)
