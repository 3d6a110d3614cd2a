"""Perceptual hashes: resized and re-encoded copies stay close, unrelated images do not."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ganforge.data.phash import NEAR, distance, near_groups, phash


def _thumb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BILINEAR))


def test_copies_are_near_and_strangers_far() -> None:
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), np.uint8)).resize((64, 64))
        for _ in range(50)
    ]
    hashes = phash(np.stack([_thumb(i) for i in images]))
    resized = phash(np.stack([_thumb(i.resize((45, 45))) for i in images]))
    jpegs = []
    for img in images:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=70)
        jpegs.append(_thumb(Image.open(buf)))
    assert distance(hashes, resized).max() <= NEAR
    assert distance(hashes, phash(np.stack(jpegs))).max() <= NEAR
    apart = distance(hashes[:, None], hashes[None, :])[np.triu_indices(50, 1)]
    assert apart.min() > NEAR and 24 <= np.median(apart) <= 40


def test_near_groups_join_chains_and_equal_hashes() -> None:
    far = np.uint64(0xFFFF_FFFF_0000_0000)
    hashes = np.array([0b0, 0b111, 0b111111 << 3, far, far, 0xFFFF << 40], dtype=np.uint64)
    # 0 ~ 7 (3 bits), 7 ~ 7<<3|... (6 bits from 7): a chain; the two `far` are equal
    assert near_groups(hashes, 6) == [[0, 1, 2], [3, 4]]
    assert near_groups(hashes, 2) == [[3, 4]]
    many = np.random.default_rng(1).integers(0, 2**63, 20_000, dtype=np.uint64)
    brute = distance(many[:300, None], many[None, :300])
    assert near_groups(many, NEAR) == [] and (brute[np.triu_indices(300, 1)] > NEAR).all()
