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
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganforge import config as cfgmod
from ganforge import seeds
from ganforge.animation import progress_gif
from ganforge.config import TrainConfig
from ganforge.console import Progress, info
from ganforge.data import DataSpec, load_data, resolve_shape
from ganforge.errors import ConfigError, DataError, UserError
from ganforge.run import checkpoint as ckpt
from ganforge.run import folder as run_folder
from ganforge.run.device import autocast_factory, precision_notice
from ganforge.training import distributed
from ganforge.training.build import build_run, eval_spec, with_classes
from ganforge.training.guard import LossGuard, NonFinite
from ganforge.training.health import TrainingUnhealthy, make_monitor
from ganforge.training.periodic_eval import PeriodicEval
from ganforge.training.run_log import RunLogger

# Config fields a resumed run may change: budgets and how it is watched, nothing that trains.
RESUMABLE_CHANGES = {
    "epochs", "steps", "minutes", "progress", "log_every", "ckpt_every", "keep_last", "device",
    "on_nan", "dist_timeout", "decode_workers", "max_memory_mb", "scalar_every", "image_step",
    "health", "health_every",
}  # fmt: skip
# Speed settings that leave the arithmetic as it was may change too.
RESUMABLE_CHANGES |= {"compile", "compile_backend", "cuda_graphs", "threads", "tune_threads"}
# So may evaluation during training: it reads the generator, never changes it.
RESUMABLE_CHANGES |= {"eval_every", "eval_samples", "eval_metrics", "eval_features"}
# A run may move to another device or machine: the settings tied to the device, and where
# its data is (the checkpoint's data fingerprint checks that it is the same images).
RESUMABLE_CHANGES |= {"precision", "channels_last", "adam_impl", "data", "data_root", "download"}
MAX_ROLLBACKS = 3
GUARD_EVERY = 50  # steps between reads of the losses when scalar_every is 0


class TrainingDiverged(UserError):
    """A loss became NaN or infinite."""


@dataclasses.dataclass
class Position:
    """Where training is: the global step, the epoch and the batch inside it."""

    step: int = 0
    epoch: int = 0
    index: int = 0  # next batch of the epoch
    image_step: int = 0  # grids logged so far (the TensorBoard image index with image_step=count)
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


def _budget_reached(cfg: TrainConfig, pos: Position) -> bool:
    if cfg.steps and pos.step >= cfg.steps:
        return True
    if cfg.epochs and pos.epoch >= cfg.epochs:
        return True
    return bool(cfg.minutes and pos.elapsed >= cfg.minutes * 60)


def _total_steps(cfg: TrainConfig, batches: int) -> int | None:
    totals = [t for t in (cfg.steps, cfg.epochs * batches) if t]
    return min(totals) if totals else None


FEW_UPDATES = 1000  # an epoch budget that gives fewer updates than this gets a word


def _few_epochs(cfg: TrainConfig, batches: int) -> str:
    """A line when an epoch budget on small data buys too few updates to learn from (the
    tutorial's 5 epochs are 2,345 updates on MNIST, 135 on 3,400 images), else ''."""
    updates = cfg.epochs * batches
    if not cfg.epochs or cfg.steps or cfg.minutes or updates >= FEW_UPDATES:
        return ""
    epochs = math.ceil(3 * FEW_UPDATES / batches)
    return (
        f"{cfg.epochs} epochs of {batches} batches are {updates} updates: too few for a GAN "
        f"to draw much; try --epochs {epochs}, or a time budget (--epochs 0 --minutes 10)"
    )


def _resolve_config(
    cfg: TrainConfig | None, resume: str | Path | None, overrides: dict[str, Any]
) -> tuple[TrainConfig, dict[str, Any] | None, Path | None, list[str]]:
    """The config to train with; for a resumed run also its checkpoint and run folder; the
    lines to print: what the data decided (a new run's channels, size and recipe), or that
    the checkpoint resumed is not the run's last.pt (see run_folder.load_checkpoint)."""
    state: dict[str, Any] | None = None
    folder: Path | None = None
    notices: list[str] = []
    if resume is not None:
        path, state, note = run_folder.load_checkpoint(resume)
        notices += [note] if note else []
        saved = cfgmod.from_dict(state["config"], str(path))
        _check_resume_config(saved, overrides)
        cfg = cfgmod.run_config(saved, overrides)
        folder = run_folder.run_of(path)
    else:
        cfg = cfgmod.run_config(cfg, overrides)  # None: the default preset
        cfg, notices = resolve_shape(cfg)  # channels, image_size 0: chosen from the data
        cfg, recipe = cfgmod.apply_variant(cfg)  # the preset's recipe for such data
        notices += [recipe] if recipe else []
    cfg = cfgmod.validate(cfg)
    if not cfg.budget_set():
        raise ConfigError("no training budget: give --epochs, --steps or --minutes")
    return cfg, state, folder, notices


def _for_world(cfg: TrainConfig, world: distributed.World) -> TrainConfig:
    """``cfg`` for this many processes: the global batch must split evenly among them, and
    a short last batch cannot, so several ranks drop it."""
    if world.enabled and cfg.batch_size % world.size:
        raise ConfigError(
            f"batch_size {cfg.batch_size} (the global batch) must divide evenly among "
            f"{world.size} processes"
        )
    if world.enabled and not cfg.drop_last:
        cfg = dataclasses.replace(cfg, drop_last=True)
    return cfg


def _grid_inputs(cfg: TrainConfig, device: torch.device) -> tuple[Tensor, Tensor | None]:
    """The fixed latents (from the run's seed alone) and, when conditional, the class labels
    (in turn) that every grid of the run draws."""
    grid = torch.Generator().manual_seed(seeds.stream(cfg.seed, seeds.GRID))
    noise = torch.randn(cfg.grid_n, cfg.z_dim, generator=grid).to(device)
    labels = torch.arange(cfg.grid_n, device=device) % cfg.num_classes if cfg.conditional else None
    return noise, labels


class Trainer:
    """One training run. The constructor builds it from a config: a new run, whose folder
    it creates, or with ``resume`` an existing run, restored from its checkpoint.
    :meth:`run` trains until the budget is spent or a signal asks to stop.

    Under torchrun every rank builds one and takes every step; only rank 0 writes.
    """

    # opened by run(), once rank 0 holds the run folder's lock
    logger: RunLogger
    progress: Progress

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
        cfg = _for_world(cfg, world)
        self.device = device = distributed.setup(world, cfg.device, cfg.dist_timeout)
        cfg, lost = _precision_here(cfg, device, state is not None and "precision" not in overrides)
        data, more = load_data(data_spec(cfg))
        notices += [*more, precision_notice(device, cfg.precision)]  # after the data's lines
        cfg = with_classes(cfg, data)  # conditional runs: class count from the data
        # before build_run: loading a feature net draws from the global random state
        self.evaluator = (
            PeriodicEval(eval_spec(cfg), data, device, world) if cfg.eval_every else None
        )
        parts = build_run(cfg, data, device, world, say=info if world.is_main else None)
        self.cfg, self.autocast, self.threads = cfg, parts.autocast, parts.threads
        self.G, self.D, self.step_fn = G, D, _ = parts.G, parts.D, parts.step
        self.opt_g, self.opt_d = parts.step.opt_g, parts.step.opt_d
        self.ema, self.augment, self.loader = ema, _, _ = parts.ema, parts.augment, parts.loader
        self.batches = len(self.loader)
        self.data_fingerprint = ckpt.data_fingerprint(data.images, data.labels)
        notices.append(_few_epochs(cfg, self.batches) if state is None else "")
        if state is not None:
            moved = any(k in overrides for k in ("data", "data_root"))
            notices.append(ckpt.check_same_data(state.get("data"), self.data_fingerprint, moved))
        self.folder = self._create_folder(out) if folder is None else folder
        if world.is_main:
            for line in notices:
                if line:
                    info(line)
        self.noise = torch.Generator(device=device).manual_seed(seeds.stream(cfg.seed, seeds.NOISE))
        self.fixed_noise, self.fixed_labels = _grid_inputs(cfg, device)
        self.pos = Position()
        self.ckpt_dir = self.folder / "checkpoints"
        self.rollbacks = 0  # on_nan=rollback: how many so far
        self.guard = LossGuard()  # the losses not yet checked for NaN or Inf
        # the last step's (stats, real batch, epoch, batch index), and where scalars and
        # grids were last logged: the run ends with a grid of its last step, never two
        self._last: tuple[dict[str, torch.Tensor], torch.Tensor, int, int] | None = None
        self._scalars_at = self._grids_at = -1
        self._values: dict[str, float] = {}  # the scalars logged at step _scalars_at
        if state is not None:
            self._resume(state, lost)
        shown = ema.model if ema is not None else G  # the G that grids and samples show
        fixed = (self.fixed_noise, self.fixed_labels)
        self.health = make_monitor(
            cfg, shown, {"D": D, "G": G}, fixed, parts.trained, parts.heldout, self.autocast
        )
        self.health = self.health if world.is_main else None  # rank 0 watches; all ranks stop

    def _resume(self, state: dict[str, Any], lost: list[str]) -> None:
        """Restore a resumed run from its checkpoint; rank 0 says where it resumes and what
        changed on the way (another device, another rank count, what was not carried)."""
        lost = lost + self.restore(state)
        self.threads.keep(int(state.get("threads") or 0))  # timed again only on drift
        if not self.world.is_main:
            return
        before = state.get("world_size")
        ranks = distributed.rank_count_change(before, self.world, self.cfg.batch_size, self.G)
        for line in (ckpt.device_change(state.get("device"), self.device, lost), ranks):
            if line:
                info(line)
        info(
            f"resuming {self.folder} at step {self.pos.step} "
            f"(epoch {self.pos.epoch}, batch {self.pos.index})"
        )

    def _create_folder(self, out: str | Path | None) -> Path:
        """A new run's folder with its config.toml, created by rank 0. Every rank learns
        whether rank 0 could create it, so none waits for it in vain."""
        folder = Path(out) if out else run_folder.default_name(self.cfg.preset)
        failure: UserError | None = None
        if self.world.is_main:
            try:
                run_folder.create(folder)
                cfgmod.save(self.cfg, folder / "config.toml")
            except UserError as exc:
                failure = exc
        if distributed.any_rank(failure is not None, self.world, self.device):
            raise failure or UserError(f"rank 0 could not create the run folder {folder}")
        return folder

    def shown(self) -> nn.Module:
        """The G that grids, checkpoints' samples and evaluations show: the EMA with its own
        BatchNorm statistics (:meth:`EMA.calibrate`) when on, else G."""
        if self.ema is None:
            return self.G
        self.ema.calibrate(self.cfg.z_dim, self.autocast)
        return self.ema.model

    def snapshot(self) -> dict[str, Any]:
        """Everything a checkpoint holds: what an exact resume needs, and the config."""
        ema, augment = self.ema, self.augment
        self.shown()  # the EMA's BatchNorm statistics: its own
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
            "threads": self.threads.threads or torch.get_num_threads(),  # CPU threads in use
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
            self.noise.manual_seed(
                seeds.indexed(seeds.stream(self.cfg.seed, seeds.NOISE), self.pos.step)
            )
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
            self.ema.calibrated = False  # a checkpoint of an older version has G's statistics
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

    def log_grids(self, real: torch.Tensor, keep_state: bool = False) -> None:
        """Log a grid of the generator's images of the fixed noise beside one of ``real``.

        In TensorBoard the grids are indexed by the training step, or with
        ``image_step = "count"`` by the number of grids logged before (the tutorial's
        counter). ``keep_state``: leave G's buffers as they were (a grid drawn in train
        mode updates BatchNorm's running statistics), so that an extra grid leaves the
        weights a checkpoint holds as they were."""
        net = self.shown()  # the EMA G when on
        was_training = net.training
        train_mode = self.cfg.grid_mode == "train"
        kept = [b.clone() for b in net.buffers()] if keep_state and train_mode else []
        net.train(train_mode)
        with torch.no_grad(), self.autocast():
            fake = net(self.fixed_noise, self.fixed_labels)
        net.train(was_training)
        with torch.no_grad():
            for buffer, before in zip(net.buffers(), kept, strict=False):
                buffer.copy_(before)
        if self.ema is not None and train_mode and not kept:
            self.ema.calibrated = False  # the train-mode grid moved its BatchNorm statistics
        index = self.pos.image_step if self.cfg.image_step == "count" else self.pos.step
        self.logger.grids(index, self.pos.step, fake.float(), real[: self.cfg.grid_n])
        self.pos.image_step += 1
        self._grids_at = self.pos.step

    def run(self) -> None:
        """Train until the budget is spent or a signal asks to stop; log the last step's
        grid if it was not just logged; save the last step.

        Rank 0 holds the run folder's lock meanwhile. The ranks agree before every step
        whether to stop, so all of them stop together."""
        cfg, world, folder = self.cfg, self.world, self.folder
        lock = run_folder.RunLock(folder).acquire() if world.is_main else None
        if world.is_main:
            ckpt.remove_stale_temps(self.ckpt_dir)
            cfgmod.save(cfg, folder / "config.toml")  # a resumed run's, e.g. its data's new place
            info(f"run folder: {folder}   watch it with: tensorboard --logdir {folder / 'tb'}")
        self.logger = RunLogger(folder, enabled=world.is_main)
        self.progress = Progress(
            _total_steps(cfg, self.batches), cfg.minutes * 60, self.pos.step, self.pos.elapsed,
            enabled=cfg.progress and world.is_main,
        )  # fmt: skip
        self._window_start, self._window_images = time.perf_counter(), 0  # for img_per_s
        self.G.train()
        self.D.train()
        with _StopSignal() as stop:
            try:
                while not self._finished(stop):
                    self.threads.tick()  # CPU thread count: chosen, then re-timed on drift
                    self.step()
                if self._last is not None and self._grids_at != self.pos.step:
                    self.log_step(*self._last, grids=True, final=True)
                self.save()
                if world.is_main:
                    progress_gif(folder / "samples")  # progress.gif from the grids so far
                distributed.barrier(world)  # no rank leaves the group while another still talks
            finally:
                self.progress.close()
                self.logger.close()
                if lock is not None:
                    lock.release()
                distributed.teardown(world)
        if stop.requested and world.is_main:
            info(
                f"stopped at step {self.pos.step}; continue with: ganforge train --resume {folder}"
            )
        if self.health and self.health.stop_reason:
            raise TrainingUnhealthy(
                f"health = stop: stopped at step {self.pos.step} on '{self.health.stop_reason}' "
                f"and saved {self.ckpt_dir / 'last.pt'}; continue with: ganforge train --resume "
                f"{folder} --set health=warn"
            )

    def _finished(self, stop: _StopSignal) -> bool:
        """Whether the budget is spent or a signal asked to stop (agreed by all ranks), and
        the losses since the last check are finite; a rollback trains on."""
        done = _budget_reached(self.cfg, self.pos) or stop.requested
        done = done or bool(self.health and self.health.stop_reason)
        return distributed.any_rank(done, self.world, self.device) and self.check_losses()

    def step(self) -> None:
        """One update on the next batch; then, when due, the loss check, logs, checkpoint,
        evaluation."""
        cfg, world, pos = self.cfg, self.world, self.pos
        t0 = time.perf_counter()
        real, labels = self.loader.batch(pos.epoch, pos.index)
        # every rank draws the global batch's noise and keeps its own slice of it
        n = real.shape[0]
        z = torch.randn(n * world.size, cfg.z_dim, device=self.device, generator=self.noise)
        if world.size > 1:
            z = z[world.rank * n : (world.rank + 1) * n]
        stats = self.step_fn(real, z, labels)
        batch_epoch, batch_index = pos.epoch, pos.index
        pos.step += 1
        pos.index += 1
        if pos.index == self.batches:
            pos.epoch, pos.index = pos.epoch + 1, 0
        self._window_images += n
        self.guard.add(pos.step, stats["loss/D"], stats["loss/G"])  # read when checked
        pos.elapsed += time.perf_counter() - t0
        scalars, grids = self._log_due(batch_index)
        save = bool(cfg.ckpt_every and pos.step % cfg.ckpt_every == 0)
        evaluate = self.evaluator is not None and self.evaluator.due(pos.step)
        interval = pos.step % (cfg.scalar_every or GUARD_EVERY) == 0
        if (scalars or save or evaluate or interval) and not self.check_losses():
            return  # rolled back: self.pos is the checkpoint's
        self.progress.update(pos.step, pos.elapsed)
        self._last = (stats, real, batch_epoch, batch_index)
        if scalars:
            self.log_step(stats, real, batch_epoch, batch_index, grids)
        if self.health is not None:
            self.health.observe(pos.step, stats, self.logger, self.step_fn.statistics)
        if save:
            self.save()
        self.evaluate()

    def check_losses(self) -> bool:
        """Read the losses of the steps since the last check (agreed by all ranks). True
        when all were finite; False after a rollback (see :meth:`on_non_finite_loss`)."""
        bad = self.guard.check()
        if not distributed.any_rank(bad is not None, self.world, self.device):
            return True
        self.on_non_finite_loss(bad or NonFinite(self.pos.step, "D or G on another rank", math.nan))
        return False

    def on_non_finite_loss(self, bad: NonFinite) -> None:
        """A loss became NaN or Inf on some rank: roll back to last.pt with halved learning
        rates where on_nan=rollback allows it, else raise :class:`TrainingDiverged`."""
        which, value, bad_step = bad.network, bad.value, bad.step
        last = self.ckpt_dir / "last.pt"
        if self.cfg.on_nan == "rollback" and last.is_file() and self.rollbacks < MAX_ROLLBACKS:
            self.rollbacks += 1
            self.restore(ckpt.load(last, self.device))
            self.guard.clear()
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] *= 0.5
            info(
                f"loss of {which} became {value} at step {bad_step}: rolled back to "
                f"step {self.pos.step} and halved the learning rates ({self.rollbacks}/"
                f"{MAX_ROLLBACKS})"
            )
            self.progress.update(self.pos.step, self.pos.elapsed)
            self._last = None  # the abandoned steps' batch; their logs are logged again
            self._scalars_at = self._grids_at = -1
            return
        raise TrainingDiverged(
            f"loss of {which} became {value} at step {bad_step}; the last good "
            f"checkpoint is {last if last.is_file() else 'none (no step was saved)'}; "
            "lower the learning rate, or use --set on_nan=rollback"
        )

    def _log_due(self, index: int) -> tuple[bool, bool]:
        """(scalars, grids): what the config logs for the step just taken on batch ``index``
        of its epoch. Scalars come every scalar_every steps and with every grid."""
        cfg, step = self.cfg, self.pos.step
        grids = bool(
            (cfg.log_every and step % cfg.log_every == 0)
            or (cfg.log_batch_every and index % cfg.log_batch_every == 0)
            or (cfg.log_epoch_start and index == 0)
        )
        return grids or bool(cfg.scalar_every and step % cfg.scalar_every == 0), grids

    def log_step(
        self,
        stats: dict[str, torch.Tensor],
        real: torch.Tensor,
        epoch: int,
        index: int,
        grids: bool,
        final: bool = False,
    ) -> None:
        """Log the step just taken on batch ``index`` of ``epoch``: scalars (TensorBoard,
        one metrics.jsonl record) and the progress bar's figures unless this step's are
        logged already; with ``grids`` also the grids and a console line. ``final``: the
        run's last step, whose extra grid must leave G's buffers as they were."""
        cfg, pos = self.cfg, self.pos
        if self._scalars_at != pos.step:
            now = time.perf_counter()
            img_s = self._window_images / max(now - self._window_start, 1e-9)
            self._window_start, self._window_images = now, 0
            figures = {**stats, **self.step_fn.statistics()}
            figures = distributed.mean_over_ranks(figures, self.world, self.device)  # global batch
            self._values = values = {k: float(v) for k, v in figures.items()}
            values["img_per_s"] = img_s
            values["epoch"] = pos.epoch
            self.logger.scalars(pos.step, values)
            self._scalars_at = pos.step
            self.progress.figures(values["loss/D"], values["loss/G"], img_s)
        if not grids:
            return
        self.log_grids(real, keep_state=final)
        epochs = f"/{cfg.epochs}" if cfg.epochs else ""
        loss_d, loss_g = self._values["loss/D"], self._values["loss/G"]
        info(
            f"Epoch [{epoch}{epochs}] Batch {index}/{self.batches} "
            f"Loss D: {loss_d:.4f}, loss G: {loss_g:.4f}"
        )

    def evaluate(self) -> None:
        """Score the generator the grids show when an evaluation is due (on every rank, at
        the same steps); rank 0 keeps best.pt when its FID is the best so far."""
        evaluator, step = self.evaluator, self.pos.step
        if evaluator and evaluator.due(step) and evaluator(self.shown(), step, self.logger):
            ckpt.save_atomic(self.snapshot(), self.ckpt_dir / "best.pt")


def train(
    cfg: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Train a GAN; return the run folder.

    A new run takes ``cfg`` (None: the default preset, as ``ganforge train``) with
    ``overrides`` applied, and writes to ``out``. ``resume`` (a run folder or checkpoint)
    continues that run; ``overrides`` may then change only its budget. A budget among
    the overrides replaces the whole budget of ``cfg`` or the run (config.run_config).
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
