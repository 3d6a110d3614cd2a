"""Perceptual hashes: 64 bits that survive resizing and re-encoding, and the groups they form.

The hash is the classic DCT pHash: a 32x32 grey thumbnail, its 2-D DCT-II, the
8x8 lowest frequencies, one bit per coefficient above their median. Two images
whose hashes differ in at most ``NEAR`` bits are near duplicates: a resized or
re-compressed copy of a photo-like image is typically 0-2 bits away, unrelated images
about 32. Very smooth images (few frequencies) hash less stably: their resized copies
can be 6-10 bits away and are then missed.
Imports numpy only, so decoder processes can hash.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

THUMB = 32  # side of the grey thumbnail the hash is computed on
NEAR = 6  # Hamming distance up to which two hashes are near duplicates


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix ``[n, n]``: ``M @ x`` is the DCT of column ``x``."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT = _dct_matrix(THUMB)[:8]  # only the 8 lowest frequencies are kept: [8, 32]
_BITS = np.uint64(1) << np.arange(64, dtype=np.uint64)


def phash(grey: np.ndarray) -> np.ndarray:
    """pHashes of grey thumbnails ``[N, 32, 32]`` (any numeric dtype) as uint64 ``[N]``."""
    x = np.asarray(grey, dtype=np.float64)
    low = np.einsum("ki,nij,lj->nkl", _DCT, x, _DCT).reshape(len(x), 64)  # [N, 64]
    median = np.median(low[:, 1:], axis=1, keepdims=True)  # the DC term left out
    bits = (low > median).astype(np.uint64)
    return (bits * _BITS).sum(axis=1, dtype=np.uint64)


def distance(a: int | np.ndarray, b: int | np.ndarray) -> np.ndarray:
    """Hamming distance between hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(np.uint64(a), np.uint64(b)))


def near_groups(hashes: np.ndarray, near: int = NEAR) -> list[list[int]]:
    """Groups (two or more indices, sorted) of hashes linked by distances of at most ``near``.

    Equal hashes join at once. Among the distinct ones, pigeonhole: split the 64 bits
    into ``near + 1`` blocks; two hashes that close agree exactly on at least one
    block, so only hashes sharing a block value are compared.
    """
    values, inverse = np.unique(np.asarray(hashes, dtype=np.uint64), return_inverse=True)
    inverse = inverse.reshape(-1)
    parent = list(range(len(values)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edges = np.linspace(0, 64, near + 2).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        keys = (values >> np.uint64(lo)) & np.uint64((1 << int(hi - lo)) - 1)
        order = np.argsort(keys, kind="stable")
        bounds = np.flatnonzero(np.diff(keys[order])) + 1
        for idx in np.split(order, bounds):
            for start in range(0, len(idx) - 1, 512):  # rows in slices: memory stays small
                rows = idx[start : start + 512]
                d = distance(values[rows][:, None], values[idx][None, :])
                for a, b in zip(*np.nonzero(d <= near), strict=True):
                    ra, rb = root(int(rows[a])), root(int(idx[b]))
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = defaultdict(list)
    for i, v in enumerate(inverse.tolist()):
        members[root(v)].append(i)
    return sorted(g for g in members.values() if len(g) > 1)
