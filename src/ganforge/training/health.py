"""Training health: named warnings for the ways GAN training goes wrong, while it goes.

The monitor watches what the loop already has, the losses each step returns
(``loss/D``, ``loss/G``), and every ``health_every`` steps it reads their means over
the steps since the last check (one device sync), the figures of the step just taken
that the step computes only when asked (``D(x)``, ``D(G(z))``, ``augment/p``), the
gradient norms of that step, and two probes:
the diversity of G's fixed-noise batch, and, where the run holds images out
(``holdout``), how close G's samples lie to the training images. Per step it only
keeps references to the statistics' tensors: no computation and no sync.

Each condition has a name and a patience, the number of checks in a row it must
hold before it is reported. A report is one console line (what it means, what to
try), a TensorBoard text entry and scalar ``health/NAME`` (1 when raised, 0 when it
clears) and a record in metrics.jsonl. A condition is reported once per episode: again
only after it was absent for 4 checks in a row (the episode cleared). With
``health = "stop"`` the first report also asks the loop to stop: it saves the
checkpoint and exits with the reason.

The thresholds (docs/guide-health.md explains each):

- ``d-wins``: at 5 checks in a row (200 steps at the default ``health_every``) D's
  D(x) - D(G(z)) at the check's step at least 0.9 (D scores reals about 0.95 and
  fakes about 0.05, logit margins beyond +-3, where a balanced D sits near 0.5 for
  both), and G's mean loss at the last of them higher than at the first.
- ``collapse``: the mean pairwise L2 distance between G's images of the fixed noise
  below 1/10 of that between as many real images, for 2 checks; G starts from almost
  constant images, so only once they were diverse, or from step 500 on.
- ``memorising``: the memorisation ratio (:mod:`ganforge.metrics.memorisation`, in
  pixels) below 0.5, for 2 probes: samples lie twice as close to a training image as
  new real images do.
- ``augment-pinned``: adaptive augmentation's p at its maximum, 1, for 4 checks.
- ``diverging``: a loss's mean magnitude 100 or more, for 2 checks (losses start at
  about 1, their size at chance). Gradient norms are logged, not judged: a single
  step's norm of D varies 100-fold in healthy runs and grows 100 to 1,600-fold from
  the start as D leaves its first saturation.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ganforge import seeds
from ganforge.config import TrainConfig
from ganforge.console import info
from ganforge.data import ImageData
from ganforge.errors import UserError
from ganforge.grids import to_uint8
from ganforge.metrics.memorisation import memorisation_ratio, nearest_distances
from ganforge.training.run_log import RunLogger

# figures of the step just taken read at a check (the step computes them only when asked)
_LAST_STEP_FIGURES = ("D(x)", "D(G(z))", "augment/p")

DIVERSITY_REAL = 64  # real images whose pairwise distances are the diversity reference
MEMO_SAMPLES = 128  # samples whose nearest training image the memorisation probe finds
MEMO_HELDOUT = 1000  # held-out images at most in the reference figure
MEMO_EVERY = 10  # memorisation probes are 10 times rarer than checks (they read all images)

D_WINS_GAP = 0.9  # D(x) about 0.95 and D(G(z)) about 0.05: logit margins beyond +-3
D_WINS_CHECKS = 5  # the span: 4 check intervals (200 steps at health_every = 50)
COLLAPSE_RATIO = 0.1
CLEAR_CHECKS = 4  # checks in a row without it before an episode ends
OPENING = 500  # steps in which D leads and G's images spread out from near-constant
MEMORISING_RATIO = 0.5
LOSS_LIMIT = 100.0  # losses start at about 1 (bce: 0.69 and 1.39 at chance, hinge: 1 and 2)


class TrainingUnhealthy(UserError):
    """health = "stop" and a health warning was raised."""

    exit_code = 3


@dataclass(frozen=True)
class Condition:
    """A named way training goes wrong: what it means, what to try, how long it must hold."""

    name: str
    means: str
    remedy: str
    patience: int  # checks in a row it must hold before it is reported


CONDITIONS = {
    c.name: c
    for c in (
        Condition(
            "d-wins",
            "D tells real from fake with ease and G's loss climbs: G's gradient is vanishing",
            "lower D's learning rate (--set lr_d=...), add augmentation (--set "
            "augment=translation,cutout), R1 (--set r1_gamma=1), or a smaller D (d_features)",
            1,  # the span of D_WINS_CHECKS checks is its patience
        ),
        Condition(
            "collapse",
            "G draws nearly the same image for every z (mode collapse)",
            "lower the learning rates, add R1 (--set r1_gamma=1) or spectral norm "
            "(--set spectral_norm_d=true), use EMA (--set ema_decay=0.999), or restart "
            "from an earlier checkpoint",
            2,
        ),
        Condition(
            "memorising",
            "G's samples lie much closer to training images than new real images do: it "
            "copies the training set",
            "more data, augmentation (--set augment=translation,cutout,color with "
            "augment_target=0.6), a smaller D, or stop at an earlier checkpoint",
            2,
        ),
        Condition(
            "augment-pinned",
            "adaptive augmentation's p is stuck at its maximum: D overfits even with every "
            "image augmented",
            "more data, a stronger policy (add color, cutout), R1 (--set r1_gamma=1), a "
            "smaller D, or a lower lr_d",
            4,
        ),
        Condition(
            "diverging",
            "the losses grew by orders of magnitude: training is blowing up",
            "lower the learning rates (by 10x), use --set on_nan=rollback, add R1 or "
            "spectral norm, or restart from an earlier checkpoint",
            2,
        ),
    )
}


@dataclass
class _Episode:
    """How many checks in a row a condition has held, and whether it was reported."""

    run: int = 0  # checks in a row it held
    quiet: int = 0  # checks in a row it did not
    active: bool = False


class HealthMonitor:
    """Watches a run's statistics and probes; reports each condition once per episode.

    ``sample(z, labels)`` draws G's images ``[B, C, H, W]`` in [-1, 1] as the run's grids
    and samples do (EMA when on); ``train_images`` are the uint8 ``[N, C, H, W]`` images
    trained on, ``heldout`` those kept out (None: no memorisation check).
    """

    def __init__(
        self,
        mode: str,
        every: int,
        sample: Callable[[Tensor, Tensor | None], Tensor],
        networks: dict[str, nn.Module],
        fixed_noise: Tensor,
        fixed_labels: Tensor | None,
        train_images: np.ndarray,
        heldout: np.ndarray | None = None,
        adaptive_augment: bool = False,
        seed: int = 0,
        num_classes: int = 0,
    ) -> None:
        self.mode, self.every, self.sample = mode, every, sample
        self.networks = networks  # {"D": D, "G": G}: their gradient norms after a step
        self.fixed_noise, self.fixed_labels = fixed_noise, fixed_labels
        self.adaptive_augment = adaptive_augment
        self.episodes = {name: _Episode() for name in CONDITIONS}
        self.stop_reason: str | None = None  # the first warning's name, with health = "stop"
        self.checks = 0
        self._window: list[dict[str, Tensor]] = []
        self._diverse_once = False  # collapse: G's images have once been diverse
        self._d_history: list[tuple[float, float]] = []  # d-wins: (gap, G's loss) per check
        rng = np.random.default_rng([seed, 0x4EA1])
        pick = np.sort(rng.choice(len(train_images), min(DIVERSITY_REAL, len(train_images)), False))
        self.real_diversity = _diversity(_pixels(np.asarray(train_images[pick])))
        self.train_images, self.heldout = train_images, heldout
        self._heldout_nearest: Tensor | None = None
        if heldout is not None:
            # its own stream: the run's noise draws none of these
            noise = torch.Generator().manual_seed(seeds.stream(seed, seeds.HEALTH))
            self.memo_noise = torch.randn(MEMO_SAMPLES, fixed_noise.shape[1], generator=noise)
            self.memo_noise = self.memo_noise.to(fixed_noise.device)
            self.memo_labels = (  # conditional runs: every class equally often
                torch.arange(MEMO_SAMPLES, device=fixed_noise.device) % num_classes
                if num_classes
                else None
            )

    def observe(
        self,
        step: int,
        stats: dict[str, Tensor],
        logger: RunLogger,
        statistics: Callable[[], dict[str, Tensor]] = dict,
    ) -> None:
        """Keep the losses of ``step``; run a check when one is due. ``statistics`` gives
        the step's figures that are computed only when asked (D(x), D(G(z)), augment p)."""
        self._window.append(stats)
        if step % self.every == 0:
            self.check(step, logger, statistics())

    def check(self, step: int, logger: RunLogger, last: dict[str, Tensor] | None = None) -> None:
        """Measure everything, judge every condition, report what started or cleared.
        ``last`` holds the figures of the step just taken that the losses do not."""
        self.checks += 1
        values = self._window_means()
        values |= {k: float(v) for k, v in (last or {}).items() if k in _LAST_STEP_FIGURES}
        self._window = []
        values |= {f"grad_norm/{k}": v for k, v in self._grad_norms().items()}
        values["diversity"] = self._diversity_ratio()
        memo_due = self.heldout is not None and self.checks % MEMO_EVERY == 0
        memo = self._memorisation_ratio() if memo_due else None
        if memo is not None:
            values["memorisation"] = memo
        logger.board(step, {f"health/{k}": v for k, v in values.items()})
        verdicts = {
            "d-wins": self._d_wins(values),
            "collapse": self._collapse(step, values["diversity"]),
            "augment-pinned": self._pinned(values),
            "diverging": self._diverging(values),
        }
        if memo is not None:  # judged at its own probes only
            verdicts["memorising"] = self._memorising(memo)
        for name, (holds, detail) in verdicts.items():
            self._judge(name, holds, detail, step, logger)

    # --- measures ---

    def _window_means(self) -> dict[str, float]:
        """The mean of each loss over the steps since the last check (one sync)."""
        if not self._window:
            return {}
        keys = [k for k in self._window[0] if k in ("loss/D", "loss/G")]
        device = self._window[0]["loss/D"].device
        means = [torch.stack([s[k].to(device).float() for s in self._window]).mean() for k in keys]
        out = dict(zip(keys, torch.stack(means).tolist(), strict=True))
        return out

    def _grad_norms(self) -> dict[str, float]:
        """The gradient norm of each network at the step just taken."""
        norms = {}
        for name, net in self.networks.items():
            grads = [p.grad for p in net.parameters() if p.grad is not None]
            if grads:
                norms[name] = float(torch.nn.utils.get_total_norm(grads))
        return norms

    def _diversity_ratio(self) -> float:
        """Mean pairwise distance of G's fixed-noise images over that of real images."""
        fake = self.sample(self.fixed_noise, self.fixed_labels).float().flatten(1)
        return _diversity(fake) / max(self.real_diversity, 1e-12)

    def _memorisation_ratio(self) -> float:
        """Median nearest-training distance of samples over that of held-out reals (pixels)."""
        assert self.heldout is not None
        train = self.train_images
        if self._heldout_nearest is None:  # the training images do not change: once
            self._heldout_nearest = nearest_distances(self.heldout[:MEMO_HELDOUT], train)
        samples = to_uint8(self.sample(self.memo_noise, self.memo_labels)).cpu()
        return memorisation_ratio(nearest_distances(samples, train), self._heldout_nearest)

    # --- conditions: (holds, detail for the report) ---

    def _d_wins(self, v: dict[str, float]) -> tuple[bool, str]:
        if "D(x)" not in v:
            return False, ""
        self._d_history = [*self._d_history, (v["D(x)"] - v["D(G(z))"], v["loss/G"])]
        span = self._d_history = self._d_history[-D_WINS_CHECKS:]
        first_loss = span[0][1]
        detail = (
            f"D(x) {v['D(x)']:.2f}, D(G(z)) {v['D(G(z))']:.2f}; G's loss {first_loss:.2f} -> "
            f"{v['loss/G']:.2f} over {(len(span) - 1) * self.every} steps"
        )
        separate = all(gap >= D_WINS_GAP for gap, _ in span)
        climbs = v["loss/G"] > first_loss
        return len(span) == D_WINS_CHECKS and separate and climbs, detail

    def _collapse(self, step: int, ratio: float) -> tuple[bool, str]:
        low = ratio < COLLAPSE_RATIO
        self._diverse_once = self._diverse_once or not low
        detail = f"G's images differ {ratio:.3f}x as much as real images do"
        return low and (self._diverse_once or step >= OPENING), detail

    def _memorising(self, ratio: float | None) -> tuple[bool, str]:
        if ratio is None:
            return False, ""
        detail = f"memorisation ratio {ratio:.2f} (1 for new images, 0 for copies)"
        return ratio < MEMORISING_RATIO, detail

    def _pinned(self, v: dict[str, float]) -> tuple[bool, str]:
        if not self.adaptive_augment or "augment/p" not in v:
            return False, ""
        return v["augment/p"] >= 1.0, f"augment p {v['augment/p']:.2f}"

    def _diverging(self, v: dict[str, float]) -> tuple[bool, str]:
        for key in ("loss/D", "loss/G"):
            if key in v and abs(v[key]) >= LOSS_LIMIT:
                return True, f"mean {key} {v[key]:.3g}, where losses start at about 1"
        return False, ""

    # --- reporting ---

    def _judge(self, name: str, holds: bool, detail: str, step: int, logger: RunLogger) -> None:
        episode, condition = self.episodes[name], CONDITIONS[name]
        if not holds:
            episode.run, episode.quiet = 0, episode.quiet + 1
            if episode.active and episode.quiet >= CLEAR_CHECKS:
                episode.active = False
                logger.record(step, {f"health/{name}": 0.0}, {"health": name, "status": "cleared"})
            return
        episode.run, episode.quiet = episode.run + 1, 0
        if episode.active or episode.run < condition.patience:
            return
        episode.active = True
        message = (
            f"health: {name} at step {step}: {condition.means} ({detail}). Try: {condition.remedy}"
        )
        info(message)
        record = {"health": name, "status": "warning", "message": message}
        logger.record(step, {f"health/{name}": 1.0}, record, {f"health/{name}": message})
        if self.mode == "stop" and self.stop_reason is None:
            self.stop_reason = name


def _pixels(images: np.ndarray) -> Tensor:
    """uint8 images ``[N, C, H, W]`` -> float rows ``[N, C*H*W]`` in [-1, 1], as G draws."""
    return torch.from_numpy(images).float().div(127.5).sub(1.0).flatten(1)


def _diversity(rows: Tensor) -> float:
    """Mean pairwise L2 distance between the rows of ``rows`` ``[N, D]``."""
    return float(torch.pdist(rows.cpu()).mean())


def sampler(
    net: nn.Module, autocast: Callable[[], AbstractContextManager]
) -> Callable[[Tensor, Tensor | None], Tensor]:
    """Draw ``net``'s images in eval mode, without gradients, then restore its mode: a
    probe that changes no BatchNorm statistic and draws no random number of the run."""

    def draw(z: Tensor, labels: Tensor | None) -> Tensor:
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad(), autocast():
                return net(z, labels)
        finally:
            net.train(was_training)

    return draw


def make_monitor(
    cfg: TrainConfig,
    shown: nn.Module,
    networks: dict[str, nn.Module],
    fixed: tuple[Tensor, Tensor | None],
    train: ImageData,
    heldout: ImageData | None,
    autocast: Callable[[], AbstractContextManager],
) -> HealthMonitor | None:
    """The monitor ``cfg.health`` asks for (None when off), probing ``shown``, the G the
    grids show, with the fixed noise and labels ``fixed``."""
    if cfg.health == "off":
        return None
    return HealthMonitor(
        cfg.health, cfg.health_every, sampler(shown, autocast), networks, *fixed, train.images,
        None if heldout is None else heldout.images,
        adaptive_augment=bool(cfg.augment) and cfg.augment_target > 0, seed=cfg.seed,
        num_classes=cfg.num_classes if cfg.conditional else 0,
    )  # fmt: skip
