"""The random streams of a run, each derived from the run's one seed by a named offset.

A run's weights come from ``torch.manual_seed(seed)``; every other stream has its own
generator, seeded here, so that drawing more from one (a grid, an evaluation, a health
probe) never changes what another draws.
"""

from __future__ import annotations

NOISE = 1  # the z of each training step
GRID = 2  # the fixed noise of the grids
EVAL = 3  # the latents scored by evaluation during training
HEALTH = 4  # the health monitor's memorisation probe
BN_STATS = 5  # the latents that set the EMA generator's BatchNorm statistics
_MIX = 1_000_003  # a prime: seeds of (stream, index) pairs do not collide for indexes below it


def stream(seed: int, offset: int) -> int:
    """The seed of the stream ``offset`` (one of the names above) of a run seeded ``seed``."""
    return seed + offset


def indexed(seed: int, index: int) -> int:
    """A seed for step or epoch ``index`` of a stream seeded ``seed`` (epoch shuffles; a
    noise stream restarted at a step after a resume on another device)."""
    return seed * _MIX + index
