"""One GAN training step: the D update on real and detached fake, then the G update.

The step knows the objective only as a :class:`ganforge.losses.Loss` and the
networks only as modules; it works for any loss and any model.

Training options, all off by default: the loss's penalties (R1, gradient
penalty) added to D's loss when due; ``n_critic`` D steps per G step (each call
is one D step on one batch, and every ``n_critic``-th call also steps G);
``augment`` applied to every image D sees; ``ema`` updated after each G step;
``top_k``: G's loss on the fakes D rates most real only (Sinha et al. 2020);
``mismatch_classes``: for a class-conditional D, real images paired with a wrong
label join the fakes in D's loss (the matching-aware D of Reed et al. 2016), so D
must check that an image shows its class, not only that it looks real.

Fast paths, each with a switch (see :class:`StepOptions`):

- channels_last activations for conv models (the weights are converted by
  :func:`build_step`);
- D's parameters frozen during the G step, so no weight gradient of D is computed
  that the G step would throw away (exactly the same losses as not freezing);
- ``joint_d``: where D treats each image alone (no BatchNorm, no batch statistic, no
  spectral norm's power iteration per call; :func:`treats_images_alone`), the real and
  the fake batch go through D as one batch: one pass and one backward instead of two,
  and no sum of two weight gradients (the same losses up to rounding);
- ``by_hand``: where G and D are plain fully connected stacks, the step's backward
  through them is written out (:class:`ganforge.training.by_hand.ByHandStep`, chosen
  by :func:`build_step`), with no autograd graph;
- ``zero_grad(set_to_none=True)``: gradients are freed, not zero-filled;
- ``compile``: torch.compile of the three pieces of a step (G's forward, D's loss,
  G's loss) separately, so no compiled graph spans the D and the G backward;
- ``cuda_graphs``: on CUDA, the whole D+G step captured once the batch shape is
  fixed and replayed after that.

Under DistributedDataParallel the step gets the wrapped G and D for the forward
passes whose gradients must be averaged across ranks, and the plain modules
(``plain_G``, ``plain_D``) for the G step's pass through D, the penalties and the
EMA: a G step never updates D, so it must not wait for D's gradients.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ganforge.augment import Augment
from ganforge.console import info
from ganforge.losses import Loss
from ganforge.training.adam import make_adam
from ganforge.training.ema import EMA
from ganforge.training.speed import adam_options, compile_problem, cuda_graphs_problem

# Eager steps run before a CUDA graph is captured (cuDNN and the allocator warm up).
CUDA_GRAPH_WARMUP = 3


@dataclass(frozen=True)
class StepOptions:
    """What a training step does besides the loss: the optimisers' settings, the schedule of
    D and G steps, the mismatch term, and the switchable fast paths."""

    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1  # D steps per G step
    mismatch_classes: int = 0  # class count for the mismatch term of a conditional D; 0: off
    channels_last: bool = True  # conv models only
    freeze_d: bool = True  # D's parameters need no gradient during the G step
    joint_d: bool = True  # real and fake through D as one batch where D treats images alone
    adam_impl: str = "auto"  # auto | lean | fused | foreach | for-loop
    compile: bool = False
    cuda_graphs: bool = False
    compile_backend: str = "inductor"
    top_k: float = 1.0  # G's loss on the fakes D rates most real: this fraction at least; 1: off
    top_k_decay: float = 0.99  # the fraction's decay per epoch, from 1 down to top_k
    steps_per_epoch: int = 1  # D steps (batches) per epoch, for the decay
    by_hand: bool = True  # fully connected G and D: their backward by hand (training/by_hand.py)


@dataclass
class StepParts:
    """The objects a step works on. ``G`` and ``D`` are what the passes whose gradients are
    averaged across ranks run (DistributedDataParallel-wrapped under several ranks);
    ``plain_G`` and ``plain_D`` the modules themselves (the same when not wrapped)."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: Loss
    autocast: Callable[[], AbstractContextManager] = contextlib.nullcontext
    augment: Augment | None = None
    ema: EMA | None = None
    plain_G: nn.Module | None = None
    plain_D: nn.Module | None = None


class _Piece:
    """One function of the step, compiled with torch.compile when asked; falls back to the
    plain function, with one line, if compiling it fails."""

    def __init__(self, fn: Callable[..., Any], name: str, backend: str | None) -> None:
        self.fn, self.name = fn, name
        self.compiled = torch.compile(fn, backend=backend) if backend else None
        self.succeeded = False

    def __call__(self, *args: Any) -> Any:
        if self.compiled is None:
            return self.fn(*args)
        if self.succeeded:
            return self.compiled(*args)
        try:
            out = self.compiled(*args)
        except Exception as exc:  # compilation runs inside the first call
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            info(f"--compile: compiling {self.name} failed ({first}); running it uncompiled")
            self.compiled = None
            return self.fn(*args)
        self.succeeded = True
        return out


class GANStep:
    """Callable doing one D step (and, when due, one G step), returning the step's losses
    (and penalties); :meth:`statistics` gives the rest of what is logged."""

    by_hand = False  # autograd's backward (training/by_hand.py's subclass: written out)

    def __init__(
        self, parts: StepParts, options: StepOptions = StepOptions(), d_steps: int = 0
    ) -> None:
        self.G, self.D, self.loss = parts.G, parts.D, parts.loss
        self.opt_g, self.opt_d = parts.opt_g, parts.opt_d
        self.plain_G = parts.plain_G if parts.plain_G is not None else parts.G
        self.plain_D = parts.plain_D if parts.plain_D is not None else parts.D
        self.autocast = parts.autocast
        self.options = options
        fmt = torch.channels_last if options.channels_last else torch.contiguous_format
        self.memory_format = fmt
        self.freeze_d = options.freeze_d
        self._d_params = list(self.plain_D.parameters())  # frozen in the G step with freeze_d
        self.joint_d = options.joint_d and treats_images_alone(self.plain_D)
        self.n_critic, self.augment, self.ema = options.n_critic, parts.augment, parts.ema
        self.d_steps = d_steps  # D steps done so far: schedules n_critic and lazy penalties
        self.mismatch_classes = options.mismatch_classes  # 0: off
        self._last_g: dict[str, Tensor] = {}  # the last G step's loss (0 until G first steps)
        self._logits: tuple[Tensor, Tensor] | None = None  # D's on the last real and fake
        # With a compile backend each piece is one compiled graph; none spans two backwards.
        backend = options.compile_backend if options.compile else None
        self._generate = _Piece(self._generate_fn, "G's forward", backend)
        self._d_loss = _Piece(self._d_loss_fn, "D's loss", backend)
        self._g_loss = _Piece(self._g_loss_fn, "G's loss", backend)
        self.cuda_graphs = options.cuda_graphs
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_key: tuple[Any, ...] = ()
        self._graph_inputs: list[Tensor | None] = []
        self._graph_outputs: dict[str, Tensor] = {}
        self._graph_logits: tuple[Tensor, Tensor] | None = None  # each replay rewrites them
        self._eager_calls = 0

    def _generate_fn(self, z: Tensor, labels: Tensor | None) -> Tensor:
        with self.autocast():
            return self.G(z, labels)  # [B, C, H, W]

    def _d_loss_fn(
        self, real: Tensor, fake: Tensor, labels: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        with self.autocast():
            if self.joint_d:
                both = None if labels is None else torch.cat([labels, labels])
                real_logits, fake_logits = self.D(torch.cat([real, fake]), both).float().chunk(2)
            else:
                real_logits = self.D(real, labels).float()
                fake_logits = self.D(fake, labels).float()
            if not (self.mismatch_classes and labels is not None):
                return self.loss.d(real_logits, fake_logits), real_logits, fake_logits
            wrong_logits = self.D(real, wrong_labels(labels, self.mismatch_classes)).float()
        # as Reed et al.: the real term, and the mean over generated and mislabelled reals
        loss = self.loss.d(real_logits, torch.cat([fake_logits, wrong_logits]))
        return loss, real_logits, fake_logits

    def _g_loss_fn(self, fake: Tensor, labels: Tensor | None) -> Tensor:
        with self.autocast():
            g_logits = self.plain_D(self._d_input(fake), labels).float()
        return self.loss.g(self.top_k(g_logits))

    def top_k(self, g_logits: Tensor) -> Tensor:
        """The logits of the fakes G learns from at this step: all, or with top-k training
        the :meth:`top_k_fraction` of them that D rates most real."""
        keep = self.top_k_fraction()
        if keep >= 1:
            return g_logits
        return g_logits.topk(max(1, round(keep * len(g_logits)))).values

    def top_k_fraction(self) -> float:
        """The fraction of fakes G learns from at this step: top-k training (Sinha et al.,
        2020) decays it by ``top_k_decay`` per epoch from 1 down to ``top_k``."""
        o = self.options
        if o.top_k >= 1:
            return 1.0
        return max(o.top_k, o.top_k_decay ** (self.d_steps / max(1, o.steps_per_epoch)))

    def step(self, real: Tensor, z: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """One D update and, every ``n_critic``-th call, one G update, as plain PyTorch calls."""
        real = real.contiguous(memory_format=self.memory_format)
        g_turn = (self.d_steps + 1) % self.n_critic == 0
        with torch.set_grad_enabled(g_turn):
            fake = self._generate(z, labels)

        # D step: real vs detached fake, so D's loss sends no gradient into G.
        self.opt_d.zero_grad(set_to_none=True)
        real_in, fake_in = self._d_input(real), self._d_input(fake.detach())
        loss_d, real_logits, fake_logits = self._d_loss(real_in, fake_in, labels)
        stats = self._penalties(real_in, fake_in, labels)
        total_d = loss_d + sum(stats.values()) if stats else loss_d
        total_d.backward()
        self.opt_d.step()
        self.d_steps += 1
        if self.augment is not None:
            self.augment.observe(real_logits)

        if g_turn:
            self._last_g = self._g_step(fake, labels)

        self._logits = (real_logits.detach(), fake_logits.detach())
        return {
            "loss/D": loss_d.detach(),
            **(self._last_g or {"loss/G": torch.zeros_like(loss_d.detach())}),
            **{k: v.detach() for k, v in stats.items()},
        }

    def statistics(self) -> dict[str, Tensor]:
        """Figures of the last step worth logging but not needed to train, computed only
        when asked: D's mean output on the real and the fake images, and the adaptive
        augmentation's p and r_t. With CUDA graphs they read the graph's last replay."""
        if self._logits is None:
            return {}
        real_logits, fake_logits = self._logits
        stats = {
            "D(x)": torch.sigmoid(real_logits).mean(),
            "D(G(z))": torch.sigmoid(fake_logits).mean(),
        }
        if self.augment is not None:
            stats["augment/p"] = torch.tensor(self.augment.p)
            stats["augment/r_t"] = torch.tensor(self.augment.r_t)
        return stats

    def _g_step(self, fake: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
        # G step on the same fake, now through D. With freeze_d, D's weights need no
        # gradient, so none is computed (its BatchNorm statistics still update, as in training).
        self.opt_g.zero_grad(set_to_none=True)
        frozen = self._d_params if self.freeze_d else []
        for p in frozen:
            p.requires_grad_(False)
        try:
            loss_g = self._g_loss(fake, labels)
            loss_g.backward()
        finally:
            for p in frozen:
                p.requires_grad_(True)
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(self.plain_G)
        return {"loss/G": loss_g.detach()}

    def _d_input(self, images: Tensor) -> Tensor:
        """What D sees: the images, augmented when augmentation is on."""
        return images if self.augment is None else self.augment(images)

    def _penalties(self, real: Tensor, fake: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
        """The loss's penalties due at this D step, in fp32, keyed ``penalty/NAME``."""
        return {
            f"penalty/{p.name}": p(self.plain_D, real, fake, labels)
            for p in self.loss.penalties
            if p.due(self.d_steps)
        }

    def __call__(self, real: Tensor, z: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        if self.cuda_graphs and real.is_cuda:
            return self._graphed_step(real, z, labels)
        return self.step(real, z, labels)

    def _graphed_step(self, real: Tensor, z: Tensor, labels: Tensor | None) -> dict[str, Tensor]:
        """Warm up eagerly on a side stream, capture the whole step once, then replay it.

        A batch of another shape (the last, shorter one of an epoch) runs eagerly: the
        parameters and optimiser states are the same tensors in both paths.
        """
        key = (real.shape, z.shape, None if labels is None else labels.shape)
        if self._graph is not None and key == self._graph_key:
            for static, new in zip(self._graph_inputs, (real, z, labels), strict=True):
                if static is not None and new is not None:
                    static.copy_(new)
            self._graph.replay()
            self._logits = self._graph_logits
            return {k: v.clone() for k, v in self._graph_outputs.items()}
        if self._graph is not None or self._eager_calls < CUDA_GRAPH_WARMUP:
            self._eager_calls += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.step(real, z, labels)
            torch.cuda.current_stream().wait_stream(side)
            return out
        # Capture: gradients start as None so the graph allocates them in its own pool.
        self._graph_inputs = [t.clone() if t is not None else None for t in (real, z, labels)]
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_g.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        cache = torch.is_autocast_cache_enabled()
        torch.set_autocast_cache_enabled(False)  # cached casts would be stale on replay
        try:
            with torch.cuda.graph(graph):
                self._graph_outputs = self.step(*self._graph_inputs)  # type: ignore[arg-type]
        finally:
            torch.set_autocast_cache_enabled(cache)
        self._graph, self._graph_key, self._graph_logits = graph, key, self._logits
        graph.replay()  # capturing records the work; replaying does this batch's update
        return {k: v.clone() for k, v in self._graph_outputs.items()}


def wrong_labels(labels: Tensor, num_classes: int) -> Tensor:
    """A label other than each of ``labels``: offsets 1 .. K-1 in turn along the batch, so
    every wrong class appears and no random numbers are drawn."""
    offsets = 1 + torch.arange(len(labels), device=labels.device) % (num_classes - 1)
    return (labels + offsets) % num_classes


# Layers whose output for an image depends on that image alone (and no random draw).
PER_IMAGE_LAYERS = (
    nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.LeakyReLU, nn.ReLU, nn.Tanh, nn.Sigmoid,
    nn.Flatten, nn.Identity, nn.Embedding,
)  # fmt: skip


def altered(module: nn.Module) -> bool:
    """Whether ``module``'s forward does more than its own code: a forward hook or
    pre-hook, or a parametrisation (spectral norm's power iteration runs on each call)."""
    return bool(
        parametrize.is_parametrized(module) or module._forward_hooks
        or module._forward_pre_hooks
    )  # fmt: skip


def treats_images_alone(net: nn.Module) -> bool:
    """Whether each image's output of ``net`` depends on that image alone, so that two
    batches may go through it as one: every layer is one of ``PER_IMAGE_LAYERS``, every
    module holding layers is a Sequential or a class that says so (``per_image = True``),
    and none has a hook or a parametrisation (spectral norm iterates once per call)."""
    for m in net.modules():
        if altered(m):
            return False
        if next(m.children(), None) is None:
            if not isinstance(m, PER_IMAGE_LAYERS):
                return False
        elif not (isinstance(m, nn.Sequential) or getattr(m, "per_image", False)):
            return False
    return True


def build_step(
    G: nn.Module,
    D: nn.Module,
    loss: Loss,
    device: torch.device,
    options: StepOptions = StepOptions(),
    *,
    autocast: Callable[[], AbstractContextManager] = contextlib.nullcontext,
    augment: Augment | None = None,
    ema: EMA | None = None,
    wrap: Callable[[nn.Module], nn.Module] | None = None,
) -> GANStep:
    """Move G and D to ``device`` and build their Adam optimisers and the step, with
    each fast path of ``options`` that applies here (one line for each that does not).

    The optimisers are the step's ``opt_g`` and ``opt_d``. ``wrap`` (e.g.
    DistributedDataParallel) wraps each network once it is on the device.
    """
    conv = any(isinstance(m, nn.Conv2d | nn.ConvTranspose2d) for m in D.modules())
    channels_last = options.channels_last and conv
    for net in (G, D, *([ema.model] if ema is not None else [])):
        net.to(device)
        if channels_last:
            net.to(memory_format=torch.channels_last)  # 4-D conv weights as NHWC
    compile = options.compile
    if compile and (reason := compile_problem(device)):
        info(f"--compile: {reason}; training uncompiled")
        compile = False
    cuda_graphs = options.cuda_graphs
    if cuda_graphs and (reason := cuda_graphs_problem(device)):
        info(f"--cuda-graphs: {reason}; training without them")
        cuda_graphs = False
    if cuda_graphs and (options.n_critic > 1 or augment or loss.penalties or ema or wrap):
        info("--cuda-graphs: not with n_critic > 1, augmentation, penalties, EMA or several "
             "ranks (their schedules live outside the graph); training without them")  # fmt: skip
        cuda_graphs = False
    adam = adam_options(device, options.adam_impl, capturable=cuda_graphs)
    opt_g = make_adam(G.parameters(), options.lr_g, options.betas, adam)
    opt_d = make_adam(D.parameters(), options.lr_d, options.betas, adam)
    G_run, D_run = (wrap(G), wrap(D)) if wrap is not None else (G, D)
    parts = StepParts(G_run, D_run, opt_g, opt_d, loss, autocast, augment, ema, G, D)
    here = replace(options, channels_last=channels_last, compile=compile, cuda_graphs=cuda_graphs)
    if options.by_hand:
        from ganforge.training.by_hand import ByHandStep, by_hand_problem

        problem = by_hand_problem(
            G, D, loss, here, autocast=autocast, augment=augment, wrapped=wrap is not None
        )
        if problem is None:
            return ByHandStep(parts, here)
    return GANStep(parts, here)
