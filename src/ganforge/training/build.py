"""build_run(): the one place that turns a training config and its data into a run's parts.

Training (:class:`ganforge.training.loop.Trainer`), ``ganforge bench`` and the
benchmarks all build their networks, step, EMA, augmentation and loader here, so a
step that is timed or measured is the step that training takes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from ganforge import seeds
from ganforge.augment import Augment
from ganforge.config import TrainConfig
from ganforge.console import info
from ganforge.data import BatchLoader, DataSpec, ImageData, data_name
from ganforge.data.split import holdout_split
from ganforge.errors import ConfigError
from ganforge.losses import build_loss
from ganforge.models import build_models
from ganforge.run.device import autocast_factory
from ganforge.training import distributed
from ganforge.training.distributed import World
from ganforge.training.ema import EMA
from ganforge.training.periodic_eval import EvalSpec
from ganforge.training.speed import ThreadTuner, choose_threads, run_thread_tuner
from ganforge.training.steps import GANStep, StepOptions, build_step


@dataclass
class RunParts:
    """What a training run is made of."""

    cfg: TrainConfig  # the config, with num_classes taken from the data when conditional
    G: nn.Module
    D: nn.Module
    step: GANStep  # one D step (and G step when due): opt_g, opt_d, EMA, augmentation
    ema: EMA | None
    augment: Augment | None
    trained: ImageData  # the images trained on: the data less the held-out ones
    heldout: ImageData | None  # images kept out of training (holdout > 0), else None
    loader: BatchLoader  # batches of the trained images, this rank's share of each
    autocast: Callable[[], AbstractContextManager]
    threads: ThreadTuner  # the CPU thread count: call tick() before each step

    def summary(self) -> str:
        """What one training step runs, in one line (``ganforge bench`` prints it)."""
        cfg, step = self.cfg, self.step
        penalties = [p.name for p in step.loss.penalties]
        parts = [
            f"{cfg.model} G {cfg.g_features} / D {cfg.d_features}",
            f"loss {cfg.loss}" + (f" + {', '.join(penalties)}" if penalties else ""),
            f"n_critic {step.n_critic}",
            f"augment {cfg.augment}" if self.augment is not None else "no augment",
            f"EMA {cfg.ema_decay}" if self.ema is not None else "no EMA",
        ]
        if cfg.conditional:
            parts.append(f"{cfg.num_classes} classes" + (", mismatch" if cfg.mismatch else ""))
        if step.by_hand:
            parts.append("backward by hand")
        return ", ".join(parts)


def step_options(cfg: TrainConfig, steps_per_epoch: int = 1) -> StepOptions:
    """What a training step reads of ``cfg``; ``steps_per_epoch`` paces top-k's decay."""
    mismatch = cfg.num_classes if cfg.conditional and cfg.mismatch else 0
    return StepOptions(
        cfg.lr_g, cfg.lr_d, (cfg.beta1, cfg.beta2), cfg.n_critic, mismatch, cfg.channels_last,
        cfg.freeze_d, cfg.joint_d, cfg.adam_impl, cfg.compile, cfg.cuda_graphs,
        cfg.compile_backend, cfg.top_k, cfg.top_k_decay, steps_per_epoch, cfg.by_hand,
    )  # fmt: skip


def eval_spec(cfg: TrainConfig) -> EvalSpec:
    """What evaluation during training reads of ``cfg``."""
    return EvalSpec(
        cfg.eval_every, cfg.eval_samples, cfg.eval_metrics, cfg.eval_features,
        data_name(DataSpec(cfg.data, cfg.data_root)), cfg.z_dim,
        cfg.num_classes if cfg.conditional else 0, cfg.seed, cfg.ema_decay > 0,
    )  # fmt: skip


def with_classes(cfg: TrainConfig, data: ImageData) -> TrainConfig:
    """``cfg`` with ``num_classes`` taken from the data when ``conditional`` is on."""
    if not cfg.conditional:
        return cfg
    if data.labels is None or data.num_classes < 2:
        raise ConfigError(
            "conditional = true needs labelled data (a named dataset, or an image folder with "
            "one sub-folder per class); these images have no labels"
        )
    if cfg.num_classes not in (0, data.num_classes):
        raise ConfigError(
            f"num_classes is {cfg.num_classes} but the data has {data.num_classes} classes; "
            "leave num_classes at 0 to take it from the data"
        )
    return dataclasses.replace(cfg, num_classes=data.num_classes)


def make_ema(cfg: TrainConfig, G: nn.Module) -> EMA | None:
    """The EMA of G that ``cfg.ema_decay`` asks for, or None when it is 0."""
    if cfg.ema_decay <= 0:
        return None
    return EMA(G, cfg.ema_decay, cfg.ema_rampup, seeds.stream(cfg.seed, seeds.BN_STATS))


def make_augment(cfg: TrainConfig) -> Augment | None:
    """D's input augmentation that ``cfg.augment`` asks for, or None when it is empty."""
    if not cfg.augment:
        return None
    return Augment(
        cfg.augment, cfg.augment_p, cfg.augment_target, cfg.augment_interval,
        cfg.augment_kimg * 1000,
    )  # fmt: skip


def build_run(
    cfg: TrainConfig,
    data: ImageData,
    device: torch.device,
    world: World | None = None,
    *,
    say: Callable[[str], None] | None = info,
) -> RunParts:
    """Build the parts of a run of ``cfg`` on ``data``: G and D (weights from the seed
    alone), the step with its optimisers, EMA, augmentation and penalties, the loader of
    the images not held out, and the CPU thread choice. ``world``: this process's place
    among torchrun's (one process when None). ``say`` gets the one-line notices."""
    world = world or World()
    cfg = with_classes(cfg, data)
    autocast = autocast_factory(device, cfg.precision)  # auto: resolved there
    torch.manual_seed(cfg.seed)  # a new run's weights depend only on the seed
    G, D = build_models(cfg.model_spec())
    trained, heldout = holdout_split(data, cfg.holdout, cfg.seed)  # holdout 0: (data, None)
    loader = BatchLoader(
        trained, cfg.batch_size, cfg.seed, device, cfg.drop_last, world.rank, world.size,
        cfg.max_memory_mb,
    )  # fmt: skip
    if len(loader) == 0:
        raise ConfigError(
            f"batch_size {cfg.batch_size} is larger than the {len(data)} images and drop_last is on"
        )
    ema, augment = make_ema(cfg, G), make_augment(cfg)
    loss = build_loss(cfg.loss, cfg.r1_gamma, cfg.r1_every, cfg.gp_weight)

    def wrap(net: nn.Module) -> nn.Module:  # several ranks: DistributedDataParallel
        return distributed.wrap(net, world, device, cfg.sync_bn)

    step = build_step(
        G, D, loss, device, step_options(cfg, len(loader)), autocast=autocast, augment=augment,
        ema=ema, wrap=wrap if world.enabled else None,
    )  # fmt: skip
    threads = run_thread_tuner(  # chooses at its first tick(), before the first step
        cfg.threads, cfg.z_dim, device, step, loader, choose_threads(cfg.threads, [G, D]),
        timed=cfg.tune_threads and not world.enabled and not cfg.compile, say=say,
    )  # fmt: skip
    return RunParts(cfg, G, D, step, ema, augment, trained, heldout, loader, autocast, threads)
