"""The training loop: data, networks, optimisers, budget, logging and checkpoints.

It knows no particular loss or model: those come from the config through
:mod:`ganforge.losses` and :mod:`ganforge.models`, and one update is a
:class:`ganforge.training.steps.GANStep`. A :class:`Trainer` is one run, built from a
config (a new run, or one resumed from a checkpoint); :meth:`Trainer.run` trains it, and
:func:`train` does both.
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
from ganforge.data import BatchLoader, DataSpec, load_data, resolve_shape
from ganforge.errors import ConfigError, DataError, UserError
from ganforge.logging import RunLogger, info
from ganforge.losses import build_loss
from ganforge.models import build_models
from ganforge.training import checkpoint as ckpt
from ganforge.training import distributed, run_dir
from ganforge.training.device import autocast_factory, choose_threads, run_thread_tuner
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
# So may evaluation during training: it reads the generator, never changes it.
RESUMABLE_CHANGES |= {"eval_every", "eval_samples", "eval_metrics", "eval_features"}
# A run may move to another device or machine: the settings tied to the device, and where
# its data is (the checkpoint's data fingerprint checks that it is the same images).
RESUMABLE_CHANGES |= {"precision", "channels_last", "adam_impl", "data", "data_root", "download"}
MAX_ROLLBACKS = 3


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


def _resolve_config(
    cfg: TrainConfig | None, resume: str | Path | None, overrides: dict[str, Any]
) -> tuple[TrainConfig, dict[str, Any] | None, Path | None, list[str]]:
    """The config to train with; for a resumed run also its checkpoint and run folder; the
    lines to print: what the data decided (a new run's channels, size and recipe), or that
    the checkpoint resumed is not the run's last.pt (see run_dir.load_checkpoint)."""
    state: dict[str, Any] | None = None
    folder: Path | None = None
    notices: list[str] = []
    if resume is not None:
        path, state, note = run_dir.load_checkpoint(resume)
        notices += [note] if note else []
        saved = cfgmod.from_dict(state["config"], str(path))
        _check_resume_config(saved, overrides)
        cfg = dataclasses.replace(saved, **overrides)
        folder = run_dir.run_of(path)
    else:
        cfg = dataclasses.replace(cfg or TrainConfig(), **overrides)
        cfg, notices = resolve_shape(cfg)  # channels, image_size 0: chosen from the data
        cfg, recipe = cfgmod.apply_variant(cfg)  # the preset's recipe for such data
        notices += [recipe] if recipe else []
    cfg = cfgmod.validate(cfg)
    if not cfg.budget_set():
        raise ConfigError("no training budget: give --epochs, --steps or --minutes")
    return cfg, state, folder, notices


class Trainer:
    """One training run. The constructor builds it from a config: a new run, whose folder
    it creates, or with ``resume`` an existing run, restored from its checkpoint.
    :meth:`run` trains until the budget is spent or a signal asks to stop.

    Under torchrun every rank builds one and takes every step; only rank 0 writes.
    """

    # opened by run(), once rank 0 holds the run folder's lock
    logger: RunLogger
    bar: tqdm

    def __init__(
        self,
        cfg: TrainConfig | None = None,
        out: str | Path | None = None,
        resume: str | Path | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        overrides = overrides or {}
        cfg, state, folder, notices = _resolve_config(cfg, resume, overrides)
        self.world = world = distributed.world_from_env()
        if world.enabled and cfg.batch_size % world.size:
            raise ConfigError(
                f"batch_size {cfg.batch_size} (the global batch) must divide evenly among "
                f"{world.size} processes"
            )
        if world.enabled and not cfg.drop_last:  # a short last batch cannot be split evenly
            cfg = dataclasses.replace(cfg, drop_last=True)
        self.device = device = distributed.setup(world, cfg.device, cfg.dist_timeout)
        cfg, lost = _precision_here(cfg, device, state is not None and "precision" not in overrides)
        self.autocast = autocast = autocast_factory(device, cfg.precision)
        data, more = load_data(data_spec(cfg))
        notices += more
        self.cfg = cfg = with_classes(cfg, data)  # conditional runs: class count from the data
        self.evaluator = PeriodicEval(cfg, data, device, world) if cfg.eval_every else None
        torch.manual_seed(cfg.seed)  # a new run's weights depend only on the seed
        self.G, self.D = G, D = build_models(cfg)  # raises before anything is written
        self.loader = BatchLoader(
            data, cfg.batch_size, cfg.seed, device, cfg.drop_last, world.rank, world.size,
            cfg.max_memory_mb,
        )  # fmt: skip
        self.batches = len(self.loader)
        if self.batches == 0:
            raise ConfigError(
                f"batch_size {cfg.batch_size} is larger than the {len(data)} images "
                "and drop_last is on"
            )
        self.data_fingerprint = ckpt.data_fingerprint(data.images, data.labels)
        if state is not None:
            moved = any(k in overrides for k in ("data", "data_root"))
            notices.append(ckpt.check_same_data(state.get("data"), self.data_fingerprint, moved))
        self.folder = self._create_folder(out) if folder is None else folder
        if world.is_main:
            for line in notices:
                if line:
                    info(line)

        self.ema = ema = make_ema(cfg, G)
        self.augment = augment = make_augment(cfg)
        loss = build_loss(cfg.loss, cfg.r1_gamma, cfg.r1_every, cfg.gp_weight)
        self.step_fn = build_step(
            G, D, loss, (cfg.lr_g, cfg.lr_d), (cfg.beta1, cfg.beta2), device, autocast,
            StepOptions.from_config(cfg), n_critic=cfg.n_critic, augment=augment, ema=ema,
            mismatch_classes=cfg.num_classes if cfg.conditional and cfg.mismatch else 0,
            wrap=(lambda net: distributed.wrap(net, world, device, cfg.sync_bn))
            if world.enabled else None,
        )  # fmt: skip
        self.opt_g, self.opt_d = self.step_fn.opt_g, self.step_fn.opt_d
        self.threads = run_thread_tuner(  # chooses before the first step, see run()
            cfg, device, self.step_fn, self.loader, choose_threads(cfg.threads, [G, D]),
            timed=not world.enabled and not cfg.compile, say=info if world.is_main else None,
        )  # fmt: skip
        self.noise = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        self.fixed_noise = torch.randn(
            cfg.grid_n, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 2)
        ).to(device)
        self.fixed_labels = (
            torch.arange(cfg.grid_n, device=device) % cfg.num_classes if cfg.conditional else None
        )
        self.pos = Position()
        self.ckpt_dir = self.folder / "checkpoints"
        self.rollbacks = 0  # on_nan=rollback: how many so far
        if state is not None:
            lost += self.restore(state)
        if state is not None and world.is_main:
            ranks = distributed.rank_count_change(state.get("world_size"), world, cfg.batch_size, G)
            for line in (ckpt.device_change(state.get("device"), device, lost), ranks):
                if line:
                    info(line)
            info(
                f"resuming {self.folder} at step {self.pos.step} "
                f"(epoch {self.pos.epoch}, batch {self.pos.index})"
            )

    def _create_folder(self, out: str | Path | None) -> Path:
        """A new run's folder with its config.toml, created by rank 0. Every rank learns
        whether rank 0 could create it, so none waits for it in vain."""
        folder = Path(out) if out else run_dir.default_name(self.cfg.preset)
        failure: UserError | None = None
        if self.world.is_main:
            try:
                run_dir.create(folder)
                cfgmod.save(self.cfg, folder / "config.toml")
            except UserError as exc:
                failure = exc
        if distributed.any_rank(failure is not None, self.world, self.device):
            raise failure or UserError(f"rank 0 could not create the run folder {folder}")
        return folder

    def snapshot(self) -> dict[str, Any]:
        """Everything a checkpoint holds: what an exact resume needs, and the config."""
        ema, augment = self.ema, self.augment
        return {
            "format": ckpt.FORMAT,
            "version": ckpt.VERSION,
            "config": self.cfg.to_dict(),
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "noise_rng": self.noise.get_state(),
            "fixed_noise": self.fixed_noise.cpu(),
            "position": dataclasses.asdict(self.pos),
            "rng": ckpt.rng_state(),
            "device": self.device.type,
            "world_size": self.world.size,
            "data": self.data_fingerprint,
            **({"G_ema": ema.model.state_dict(), "ema_updates": ema.updates} if ema else {}),
            **({"augment": augment.state_dict()} if augment else {}),
        }

    def restore(self, saved: dict[str, Any]) -> list[str]:
        """Put the run back where :meth:`snapshot` (a loaded checkpoint) left it; return what
        could not be carried over from another device (nothing on the same one)."""
        lost: list[str] = []
        self.G.load_state_dict(saved["G"])
        self.D.load_state_dict(saved["D"])
        ckpt.load_optimizer(self.opt_g, saved["opt_g"])
        ckpt.load_optimizer(self.opt_d, saved["opt_d"])
        self.pos = Position(**saved["position"])
        noise = saved["noise_rng"].cpu()
        if noise.shape == self.noise.get_state().shape:
            self.noise.set_state(noise)
        else:  # another device's generator: a new stream, the same after every such resume
            self.noise.manual_seed((self.cfg.seed + 1) * 1_000_003 + self.pos.step)
            lost.append("the noise generator's state (reseeded from the seed and the step)")
        if self.device.type == "cuda" and "cuda" not in saved["rng"]:
            lost.append("the CUDA random state (the checkpoint has none)")
        if saved.get("device") == "cuda" and not torch.cuda.is_available():
            lost.append("the CUDA random states (no GPU here)")
        self.fixed_noise = saved["fixed_noise"].to(self.device)
        if self.pos.index >= self.batches:  # drop_last turned on for several ranks
            self.pos.epoch, self.pos.index = self.pos.epoch + 1, 0
        if self.ema is not None:
            self.ema.model.load_state_dict(saved["G_ema"])
            self.ema.updates = int(saved["ema_updates"])
        if self.augment is not None:
            self.augment.load_state_dict(saved["augment"])
        ckpt.set_rng_state(saved["rng"])
        self.step_fn.d_steps = self.pos.step  # n_critic and lazy regularisers count D steps
        return lost

    def save(self) -> None:
        """Write the current step to last.pt (and the rotating step files) on rank 0; refuse
        weights that hold NaN or Inf."""
        bad = _non_finite_network(self.G, self.D)
        if bad:
            raise TrainingDiverged(
                f"the weights of {bad} hold NaN or Inf at step {self.pos.step}; not saving them. "
                f"The last good checkpoint is {self.ckpt_dir / 'last.pt'}"
            )
        if self.world.is_main:
            ckpt.save_rotating(self.snapshot(), self.ckpt_dir, self.pos.step, self.cfg.keep_last)

    def log_grids(self, real: torch.Tensor) -> None:
        """Log a grid of the generator's images of the fixed noise beside one of ``real``."""
        net = self.ema.model if self.ema is not None else self.G  # grids show the EMA G when on
        was_training = net.training
        net.train(self.cfg.grid_mode == "train")
        with torch.no_grad(), self.autocast():
            fake = net(self.fixed_noise, self.fixed_labels)
        net.train(was_training)
        self.logger.grids(self.pos.image_step, self.pos.step, fake.float(), real[: self.cfg.grid_n])
        self.pos.image_step += 1

    def run(self) -> None:
        """Train until the budget is spent or a signal asks to stop; save the last step.

        Rank 0 holds the run folder's lock meanwhile. The ranks agree before every step
        whether to stop, so all of them stop together."""
        cfg, world, folder = self.cfg, self.world, self.folder
        total = _total_steps(cfg, self.batches)
        lock = run_dir.RunLock(folder).acquire() if world.is_main else None
        if world.is_main:
            ckpt.remove_stale_temps(self.ckpt_dir)
            cfgmod.save(cfg, folder / "config.toml")  # a resumed run's, e.g. its data's new place
            info(f"run folder: {folder}   watch it with: tensorboard --logdir {folder / 'tb'}")
        self.logger = RunLogger(folder, enabled=world.is_main)
        self.bar = tqdm(
            total=total, initial=self.pos.step, unit="step", dynamic_ncols=True,
            disable=not (cfg.progress and world.is_main),
            mininterval=0.5 if sys.stderr.isatty() else 30,
        )  # fmt: skip
        self._window_start, self._window_images = time.perf_counter(), 0  # for img_per_s
        self.G.train()
        self.D.train()
        with _StopSignal() as stop:
            try:
                while not distributed.any_rank(
                    _budget_reached(cfg, self.pos, self.batches) or stop.requested,
                    world,
                    self.device,
                ):
                    self.threads.tick()  # CPU thread count: chosen, then re-timed on drift
                    self.step()
                self.save()
                if world.is_main:
                    progress_gif(folder / "samples")  # progress.gif from the grids so far
            finally:
                self.bar.close()
                self.logger.close()
                if lock is not None:
                    lock.release()
                distributed.teardown(world)
        if stop.requested and world.is_main:
            info(
                f"stopped at step {self.pos.step}; continue with: ganforge train --resume {folder}"
            )

    def step(self) -> None:
        """One update on the next batch; then the loss check, logs, checkpoint, evaluation."""
        cfg, world, pos = self.cfg, self.world, self.pos
        t0 = time.perf_counter()
        real, labels = self.loader.batch(pos.epoch, pos.index)
        # every rank draws the global batch's noise and keeps its own slice of it
        n = real.shape[0]
        z = torch.randn(n * world.size, cfg.z_dim, device=self.device, generator=self.noise)
        z = z[world.rank * n : (world.rank + 1) * n]
        stats = self.step_fn(real, z, labels)
        batch_epoch, batch_index = pos.epoch, pos.index
        stats = distributed.mean_over_ranks(stats, world, self.device)  # the global batch's
        pos.step += 1
        pos.index += 1
        if pos.index == self.batches:
            pos.epoch, pos.index = pos.epoch + 1, 0
        self._window_images += real.shape[0]
        loss_d, loss_g = float(stats["loss/D"]), float(stats["loss/G"])
        finite = math.isfinite(loss_d) and math.isfinite(loss_g)
        if distributed.any_rank(not finite, world, self.device):
            self.on_non_finite_loss(loss_d, loss_g)  # a rollback replaces self.pos
            return
        pos.elapsed += time.perf_counter() - t0
        self.bar.update(1)
        self.log_step(stats, real, batch_epoch, batch_index)
        if cfg.ckpt_every and pos.step % cfg.ckpt_every == 0:
            self.save()
        self.evaluate()

    def on_non_finite_loss(self, loss_d: float, loss_g: float) -> None:
        """A loss became NaN or Inf on some rank: roll back to last.pt with halved learning
        rates where on_nan=rollback allows it, else raise :class:`TrainingDiverged`."""
        which, value = ("D", loss_d) if not math.isfinite(loss_d) else ("G", loss_g)
        last = self.ckpt_dir / "last.pt"
        if self.cfg.on_nan == "rollback" and last.is_file() and self.rollbacks < MAX_ROLLBACKS:
            self.rollbacks += 1
            bad_step = self.pos.step
            self.restore(ckpt.load(last, self.device))
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] *= 0.5
            info(
                f"loss of {which} became {value} at step {bad_step}: rolled back to "
                f"step {self.pos.step} and halved the learning rates ({self.rollbacks}/"
                f"{MAX_ROLLBACKS})"
            )
            self.bar.n = self.pos.step
            return
        raise TrainingDiverged(
            f"loss of {which} became {value} at step {self.pos.step}; the last good "
            f"checkpoint is {last if last.is_file() else 'none (no step was saved)'}; "
            "lower the learning rate, or use --set on_nan=rollback"
        )

    def log_step(
        self, stats: dict[str, torch.Tensor], real: torch.Tensor, epoch: int, index: int
    ) -> None:
        """Log the step just taken on batch ``index`` of ``epoch`` when the config asks:
        scalars, grids, the progress bar's figures and a console line."""
        cfg, pos = self.cfg, self.pos
        due = (
            (cfg.log_every and pos.step % cfg.log_every == 0)
            or (cfg.log_batch_every and index % cfg.log_batch_every == 0)
            or (cfg.log_epoch_start and index == 0)
        )
        if not due:
            return
        now = time.perf_counter()
        img_s = self._window_images / max(now - self._window_start, 1e-9)
        self._window_start, self._window_images = now, 0
        values = {k: float(v) for k, v in stats.items()}
        loss_d, loss_g = values["loss/D"], values["loss/G"]
        values["img_per_s"] = img_s
        values["epoch"] = pos.epoch
        self.logger.scalars(pos.step, values)
        self.log_grids(real)
        self.bar.set_postfix(D=f"{loss_d:.3f}", G=f"{loss_g:.3f}", img_s=f"{img_s:.0f}")
        epochs = f"/{cfg.epochs}" if cfg.epochs else ""
        info(
            f"Epoch [{epoch}{epochs}] Batch {index}/{self.batches} "
            f"Loss D: {loss_d:.4f}, loss G: {loss_g:.4f}"
        )

    def evaluate(self) -> None:
        """Score the generator the grids show when an evaluation is due (on every rank, at
        the same steps); rank 0 keeps best.pt when its FID is the best so far."""
        scored = self.ema.model if self.ema is not None else self.G
        evaluator, step = self.evaluator, self.pos.step
        if evaluator and evaluator.due(step) and evaluator(scored, step, self.logger):
            ckpt.save_atomic(self.snapshot(), self.ckpt_dir / "best.pt")


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
    try:
        trainer = Trainer(cfg, out, resume, overrides)
    except DataError as exc:
        if resume is None or "--data" in str(exc):
            raise
        raise DataError(
            f"{exc}; if this run's data moved, give its new place: "
            f"ganforge train --resume {resume} --data PATH"
        ) from None
    trainer.run()
    return trainer.folder


def _precision_here(
    cfg: TrainConfig, device: torch.device, resumed: bool
) -> tuple[TrainConfig, list[str]]:
    """A resumed run's config with fp32 where this device lacks its saved precision, and a
    note saying so; a new run's config (or a precision asked for now) as it is."""
    try:
        autocast_factory(device, cfg.precision)
    except ConfigError:
        if not resumed:
            raise
        note = f"precision {cfg.precision} (not on this {device.type}; fp32 now)"
        return dataclasses.replace(cfg, precision="fp32"), [note]
    return cfg, []


def _non_finite_network(G: nn.Module, D: nn.Module) -> str:
    """'G' or 'D' when that network's weights hold NaN or Inf, else ''."""
    for name, net in (("G", G), ("D", D)):
        for p in net.parameters():
            if not torch.isfinite(p).all():
                return name
    return ""
