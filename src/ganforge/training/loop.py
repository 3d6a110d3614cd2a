"""The training loop: data, networks, optimisers, budget, logging and checkpoints.

It knows no particular loss or model: those come from the config through
:mod:`ganforge.losses` and :mod:`ganforge.models`, and one update is a
:class:`ganforge.training.steps.GANStep`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from ganforge import config as cfgmod
from ganforge.animation import progress_gif
from ganforge.config import TrainConfig
from ganforge.data import BatchLoader, DataSpec, load_data
from ganforge.errors import ConfigError, UserError
from ganforge.logging import RunLogger, info
from ganforge.losses import build_loss
from ganforge.models import build_models
from ganforge.training import checkpoint as ckpt
from ganforge.training import distributed, run_dir
from ganforge.training.device import autocast_factory, choose_threads
from ganforge.training.evaluation import PeriodicEval
from ganforge.training.quality import make_augment, make_ema, with_classes
from ganforge.training.steps import StepOptions, build_step

# Config fields a resumed run may change: budgets and how it is watched, nothing that trains.
RESUMABLE_CHANGES = {
    "epochs", "steps", "minutes", "progress", "log_every", "ckpt_every", "keep_last", "device",
    "on_nan", "dist_timeout", "decode_workers", "max_memory_mb",
}  # fmt: skip
# Speed settings that leave the arithmetic as it was may change too.
RESUMABLE_CHANGES |= {"compile", "compile_backend", "cuda_graphs", "threads"}
MAX_ROLLBACKS = 3
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
        cfg.on_bad_image, background=cfg.background, decode_workers=cfg.decode_workers,
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
            with contextlib.suppress(ValueError):  # not the main thread: no handler
                self._previous[sig] = signal.signal(sig, self._handle)
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

    world = distributed.world_from_env()
    if world.enabled and cfg.batch_size % world.size:
        raise ConfigError(
            f"batch_size {cfg.batch_size} (the global batch) must divide evenly among "
            f"{world.size} processes"
        )
    if world.enabled and not cfg.drop_last:  # a short last batch cannot be split evenly
        cfg = dataclasses.replace(cfg, drop_last=True)
    device = distributed.setup(world, cfg.device, cfg.dist_timeout)
    autocast = autocast_factory(device, cfg.precision)
    data, notices = load_data(data_spec(cfg))
    cfg = with_classes(cfg, data)  # conditional runs take their class count from the data
    evaluator = PeriodicEval(cfg, data, device, world) if cfg.eval_every else None
    torch.manual_seed(cfg.seed)  # a new run's weights depend only on the seed
    G, D = build_models(cfg)  # raises before anything is written
    loader = BatchLoader(
        data, cfg.batch_size, cfg.seed, device, cfg.drop_last, world.rank, world.size,
        cfg.max_memory_mb,
    )  # fmt: skip
    if len(loader) == 0:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is larger than the {len(data)} images and drop_last is on"
        )
    if resume is None:
        run = Path(out) if out else run_dir.default_name(cfg.preset)
        failure: UserError | None = None
        if world.is_main:
            try:
                run_dir.create(run)
                cfgmod.save(cfg, run / "config.toml")
            except UserError as exc:
                failure = exc
        # every rank learns whether rank 0 could start, so none waits for it in vain
        if distributed.any_rank(failure is not None, world, device):
            raise failure or UserError(f"rank 0 could not create the run folder {run}")
    if world.is_main:
        for line in notices:
            info(line)

    if device.type == "cpu":
        torch.set_num_threads(choose_threads(cfg.threads, [G, D]))
    ema = make_ema(cfg, G)
    augment = make_augment(cfg)
    loss = build_loss(cfg.loss, cfg.r1_gamma, cfg.r1_every, cfg.gp_weight)
    step_fn = build_step(
        G, D, loss, (cfg.lr_g, cfg.lr_d), (cfg.beta1, cfg.beta2), device, autocast,
        StepOptions.from_config(cfg), n_critic=cfg.n_critic, augment=augment, ema=ema,
        wrap=(lambda net: distributed.wrap(net, world, device, cfg.sync_bn))
        if world.enabled else None,
    )  # fmt: skip
    opt_g, opt_d = step_fn.opt_g, step_fn.opt_d
    noise = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    fixed_noise = torch.randn(
        cfg.grid_n, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2)
    ).to(device)
    fixed_labels = (
        torch.arange(cfg.grid_n, device=device) % cfg.num_classes if cfg.conditional else None
    )
    pos = Position()
    ckpt_dir = run / "checkpoints"

    def snapshot() -> dict[str, Any]:
        return {
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
            **({"G_ema": ema.model.state_dict(), "ema_updates": ema.updates} if ema else {}),
            **({"augment": augment.state_dict()} if augment else {}),
        }

    def restore(saved: dict[str, Any]) -> None:
        nonlocal pos, fixed_noise
        G.load_state_dict(saved["G"])
        D.load_state_dict(saved["D"])
        opt_g.load_state_dict(saved["opt_g"])
        opt_d.load_state_dict(saved["opt_d"])
        noise.set_state(saved["noise_rng"].to(noise.get_state().device))
        fixed_noise = saved["fixed_noise"].to(device)
        pos = Position(**saved["position"])
        if ema is not None:
            ema.model.load_state_dict(saved["G_ema"])
            ema.updates = int(saved["ema_updates"])
        if augment is not None:
            augment.load_state_dict(saved["augment"])
        ckpt.set_rng_state(saved["rng"])
        step_fn.d_steps = pos.step  # n_critic and lazy regularisers count D steps

    def save() -> None:
        bad = _non_finite_network(G, D)
        if bad:
            raise TrainingDiverged(
                f"the weights of {bad} hold NaN or Inf at step {pos.step}; not saving them. "
                f"The last good checkpoint is {ckpt_dir / 'last.pt'}"
            )
        if world.is_main:
            ckpt.save_rotating(snapshot(), ckpt_dir, pos.step, cfg.keep_last)

    if state is not None:
        restore(state)
        info(f"resuming {run} at step {pos.step} (epoch {pos.epoch}, batch {pos.index})")

    def log_grids(real: torch.Tensor) -> None:
        net = ema.model if ema is not None else G  # grids show the EMA generator when on
        was_training = net.training
        net.train(cfg.grid_mode == "train")
        with torch.no_grad(), autocast():
            fake = net(fixed_noise, fixed_labels)
        net.train(was_training)
        logger.grids(pos.image_step, pos.step, fake.float(), real[: cfg.grid_n])
        pos.image_step += 1

    batches = len(loader)
    total = _total_steps(cfg, batches)
    lock = run_dir.RunLock(run).acquire() if world.is_main else None
    if world.is_main:
        ckpt.remove_stale_temps(ckpt_dir)
        info(f"run folder: {run}   watch it with: tensorboard --logdir {run / 'tb'}")
    logger = RunLogger(run, enabled=world.is_main)
    bar = tqdm(
        total=total, initial=pos.step, unit="step", dynamic_ncols=True,
        disable=not (cfg.progress and world.is_main),
        mininterval=0.5 if sys.stderr.isatty() else 30,
    )  # fmt: skip
    window_start, window_images = time.perf_counter(), 0
    rollbacks = 0
    G.train()
    D.train()
    with _StopSignal() as stop:
        try:
            while not distributed.any_rank(
                _budget_reached(cfg, pos, batches) or stop.requested, world, device
            ):
                t0 = time.perf_counter()
                real, labels = loader.batch(pos.epoch, pos.index)
                # every rank draws the global batch's noise and keeps its own slice of it
                n = real.shape[0]
                z = torch.randn(n * world.size, cfg.z_dim, device=device, generator=noise)
                z = z[world.rank * n : (world.rank + 1) * n]
                stats = step_fn(real, z, labels)
                batch_epoch, batch_index = pos.epoch, pos.index
                pos.step += 1
                pos.index += 1
                if pos.index == batches:
                    pos.epoch, pos.index = pos.epoch + 1, 0
                window_images += real.shape[0]
                loss_d, loss_g = float(stats["loss/D"]), float(stats["loss/G"])
                finite = math.isfinite(loss_d) and math.isfinite(loss_g)
                if distributed.any_rank(not finite, world, device):
                    which, value = ("D", loss_d) if not math.isfinite(loss_d) else ("G", loss_g)
                    last = ckpt_dir / "last.pt"
                    if cfg.on_nan == "rollback" and last.is_file() and rollbacks < MAX_ROLLBACKS:
                        rollbacks += 1
                        restore(ckpt.load(last, device))
                        for opt in (opt_g, opt_d):
                            for group in opt.param_groups:
                                group["lr"] *= 0.5
                        info(
                            f"loss of {which} became {value} at step {pos.step}: rolled back to "
                            f"step {pos.step} and halved the learning rates ({rollbacks}/"
                            f"{MAX_ROLLBACKS})"
                        )
                        bar.n = pos.step
                        continue
                    raise TrainingDiverged(
                        f"loss of {which} became {value} at step {pos.step}; the last good "
                        f"checkpoint is {last if last.is_file() else 'none (no step was saved)'}; "
                        "lower the learning rate, or use --set on_nan=rollback"
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
                        f"Epoch [{batch_epoch}{epochs}] Batch {batch_index}/{batches} "
                        f"Loss D: {loss_d:.4f}, loss G: {loss_g:.4f}"
                    )
                if cfg.ckpt_every and pos.step % cfg.ckpt_every == 0:
                    save()
                scored = ema.model if ema is not None else G  # metrics: the G the grids show
                if evaluator and evaluator.due(pos.step) and evaluator(scored, pos.step, logger):
                    ckpt.save_atomic(snapshot(), ckpt_dir / "best.pt")  # metrics: best by FID
            save()
            if world.is_main:
                progress_gif(run / "samples")  # samples/progress.gif from the grids saved so far
        finally:
            bar.close()
            logger.close()
            if lock is not None:
                lock.release()
            distributed.teardown(world)
    if stop.requested and world.is_main:
        info(f"stopped at step {pos.step}; continue with: ganforge train --resume {run}")
    return run


def _non_finite_network(G: nn.Module, D: nn.Module) -> str:
    """'G' or 'D' when that network's weights hold NaN or Inf, else ''."""
    for name, net in (("G", G), ("D", D)):
        for p in net.parameters():
            if not torch.isfinite(p).all():
                return name
    return ""
