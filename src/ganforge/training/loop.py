"""The training loop: data, networks, optimisers, budget, logging and checkpoints.

It knows no particular loss or model: those come from the config through
:mod:`ganforge.losses` and :mod:`ganforge.models`, and one update is a
:class:`ganforge.training.steps.GANStep`.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ganforge import config as cfgmod
from ganforge.config import TrainConfig
from ganforge.data import BatchLoader, DataSpec, load_data
from ganforge.errors import ConfigError, UserError
from ganforge.logging import RunLogger, info
from ganforge.losses import LOSSES
from ganforge.models import build_models
from ganforge.training import checkpoint as ckpt
from ganforge.training import run_dir
from ganforge.training.device import autocast_factory, choose_threads, resolve_device
from ganforge.training.evaluation import PeriodicEval
from ganforge.training.steps import GANStep

# Config fields a resumed run may change: budgets and how it is watched, nothing that trains.
RESUMABLE_CHANGES = {"epochs", "steps", "minutes", "progress", "log_every", "ckpt_every"}
RESUMABLE_CHANGES |= {"eval_every", "eval_samples", "eval_metrics", "eval_features"}  # metrics


class TrainingDiverged(UserError):
    """A loss became NaN or infinite."""


@dataclasses.dataclass
class Position:
    """Where training is: the global step, the epoch and the batch inside it."""

    step: int = 0
    epoch: int = 0
    index: int = 0  # next batch of the epoch
    image_step: int = 0  # grids logged so far (TensorBoard image step)
    elapsed: float = 0.0  # seconds trained, summed over resumes


def data_spec(cfg: TrainConfig) -> DataSpec:
    """What data a config asks for."""
    return DataSpec(
        cfg.data, cfg.data_root, cfg.image_size, cfg.channels, cfg.download, cfg.crop,
        cfg.on_bad_image,
    )  # fmt: skip


def _check_resume_config(saved: TrainConfig, asked: dict[str, Any]) -> None:
    changed = sorted(
        k for k, v in asked.items() if k not in RESUMABLE_CHANGES and getattr(saved, k) != v
    )
    if changed:
        raise ConfigError(
            f"cannot resume with changed settings: {', '.join(changed)}; only the budget "
            f"({', '.join(sorted(RESUMABLE_CHANGES))}) may change: start a new run instead"
        )


class _StopSignal:
    """Turns the first SIGINT/SIGTERM into a request to stop after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second signal: leave now; last.pt is only ever replaced atomically
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _budget_reached(cfg: TrainConfig, pos: Position, batches: int) -> bool:
    if cfg.steps and pos.step >= cfg.steps:
        return True
    if cfg.epochs and pos.epoch >= cfg.epochs:
        return True
    return bool(cfg.minutes and pos.elapsed >= cfg.minutes * 60)


def _total_steps(cfg: TrainConfig, batches: int) -> int | None:
    totals = [t for t in (cfg.steps, cfg.epochs * batches) if t]
    return min(totals) if totals else None


def train(
    cfg: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Train a GAN; return the run folder.

    A new run takes ``cfg`` (with ``overrides`` applied) and writes to ``out``.
    ``resume`` (a run folder or checkpoint) continues that run; ``overrides`` may
    then change only its budget.
    """
    overrides = overrides or {}
    state: dict[str, Any] | None = None
    if resume is not None:
        path = run_dir.find_checkpoint(resume)
        state = ckpt.load(path)
        saved = cfgmod.from_dict(state["config"])
        _check_resume_config(saved, overrides)
        cfg = dataclasses.replace(saved, **overrides)
        run = run_dir.run_of(path)
    else:
        cfg = dataclasses.replace(cfg or TrainConfig(), **overrides)
    cfg = cfgmod.validate(cfg)
    if not cfg.budget_set():
        raise ConfigError("no training budget: give --epochs, --steps or --minutes")

    device = resolve_device(cfg.device)
    autocast = autocast_factory(device, cfg.precision)
    torch.manual_seed(cfg.seed)  # a new run's weights depend only on the seed
    G, D = build_models(cfg)  # raises before anything is written
    data, notices = load_data(data_spec(cfg))
    evaluator = PeriodicEval(cfg, data, device) if cfg.eval_every else None
    loader = BatchLoader(data, cfg.batch_size, cfg.seed, device, cfg.drop_last)
    if len(loader) == 0:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is larger than the {len(data)} images and drop_last is on"
        )
    if resume is None:
        run = run_dir.create(Path(out) if out else run_dir.default_name(cfg.preset))
        cfgmod.save(cfg, run / "config.toml")
    for line in notices:
        info(line)

    if device.type == "cpu":
        torch.set_num_threads(choose_threads(cfg.threads, [G, D]))
    conv = any(isinstance(m, nn.Conv2d) for m in D.modules())
    memory_format = torch.channels_last if (cfg.channels_last and conv) else torch.preserve_format
    G.to(device, memory_format=memory_format)
    D.to(device, memory_format=memory_format)
    adam: dict[str, Any] = {"foreach": True} if device.type != "mps" else {}
    opt_g = torch.optim.Adam(G.parameters(), cfg.lr_g, betas=(cfg.beta1, cfg.beta2), **adam)
    opt_d = torch.optim.Adam(D.parameters(), cfg.lr_d, betas=(cfg.beta1, cfg.beta2), **adam)
    noise = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    fixed_noise = torch.randn(
        cfg.grid_n, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2)
    ).to(device)
    pos = Position()

    if state is not None:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        noise.set_state(state["noise_rng"].to(noise.get_state().device))
        fixed_noise = state["fixed_noise"].to(device)
        pos = Position(**state["position"])
        ckpt.set_rng_state(state["rng"])
        info(f"resuming {run} at step {pos.step} (epoch {pos.epoch}, batch {pos.index})")

    step_fn = GANStep(G, D, opt_g, opt_d, LOSSES[cfg.loss], autocast, cfg.channels_last and conv)
    logger = RunLogger(run)
    ckpt_path = run / "checkpoints" / "last.pt"

    def save(path: Path = ckpt_path) -> None:
        ckpt.save_atomic(
            {
                "format": ckpt.FORMAT,
                "version": ckpt.VERSION,
                "config": cfg.to_dict(),
                "G": G.state_dict(),
                "D": D.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "noise_rng": noise.get_state(),
                "fixed_noise": fixed_noise.cpu(),
                "position": dataclasses.asdict(pos),
                "rng": ckpt.rng_state(),
            },
            path,
        )

    def log_grids(real: torch.Tensor) -> None:
        was_training = G.training
        G.train(cfg.grid_mode == "train")
        with torch.no_grad(), autocast():
            fake = G(fixed_noise)
        G.train(was_training)
        logger.grids(pos.image_step, pos.step, fake.float(), real[: cfg.grid_n])
        pos.image_step += 1

    batches = len(loader)
    total = _total_steps(cfg, batches)
    info(f"run folder: {run}   watch it with: tensorboard --logdir {run / 'tb'}")
    bar = tqdm(
        total=total, initial=pos.step, disable=not cfg.progress, unit="step", dynamic_ncols=True
    )
    window_start, window_images = time.perf_counter(), 0
    G.train()
    D.train()
    with _StopSignal() as stop:
        try:
            while not _budget_reached(cfg, pos, batches) and not stop.requested:
                t0 = time.perf_counter()
                real, labels = loader.batch(pos.epoch, pos.index)
                z = torch.randn(real.shape[0], cfg.z_dim, device=device, generator=noise)
                stats = step_fn(real, z, labels)
                batch_epoch, batch_index = pos.epoch, pos.index
                pos.step += 1
                pos.index += 1
                if pos.index == batches:
                    pos.epoch, pos.index = pos.epoch + 1, 0
                window_images += real.shape[0]
                loss_d, loss_g = float(stats["loss/D"]), float(stats["loss/G"])
                if not (math.isfinite(loss_d) and math.isfinite(loss_g)):
                    which = "D" if not math.isfinite(loss_d) else "G"
                    raise TrainingDiverged(
                        f"loss of {which} became {loss_d if which == 'D' else loss_g} at step "
                        f"{pos.step}; the last good checkpoint is {ckpt_path}; lower the "
                        "learning rate or use --precision fp32"
                    )
                pos.elapsed += time.perf_counter() - t0
                bar.update(1)
                log_now = (
                    (cfg.log_every and pos.step % cfg.log_every == 0)
                    or (cfg.log_batch_every and batch_index % cfg.log_batch_every == 0)
                    or (cfg.log_epoch_start and batch_index == 0)
                )
                if log_now:
                    now = time.perf_counter()
                    img_s = window_images / max(now - window_start, 1e-9)
                    window_start, window_images = now, 0
                    values = {k: float(v) for k, v in stats.items()}
                    values["img_per_s"] = img_s
                    values["epoch"] = pos.epoch
                    logger.scalars(pos.step, values)
                    log_grids(real)
                    bar.set_postfix(D=f"{loss_d:.3f}", G=f"{loss_g:.3f}", img_s=f"{img_s:.0f}")
                    epochs = f"/{cfg.epochs}" if cfg.epochs else ""
                    info(
                        f"Epoch [{batch_epoch}{epochs}] "
                        f"Batch {batch_index}/{batches} "
                        f"Loss D: {loss_d:.4f}, loss G: {loss_g:.4f}"
                    )
                if cfg.ckpt_every and pos.step % cfg.ckpt_every == 0:
                    save()
                if evaluator and evaluator.due(pos.step) and evaluator(G, pos.step, logger):
                    save(run / "checkpoints" / "best.pt")
        finally:
            bar.close()
            logger.close()
    save()
    if stop.requested:
        info(f"stopped at step {pos.step}; continue with: ganforge train --resume {run}")
    return run
