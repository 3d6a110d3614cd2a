"""The training configuration: one flat dataclass, TOML presets, validation.

A run's configuration is resolved once, in this order (later wins): the
defaults below, a preset from ``ganforge/presets/``, a TOML file, command-line
flags, and ``--set key=value`` pairs. The resolved result is written to the run
folder as ``config.toml`` and is everything needed to repeat the run.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from ganforge.errors import ConfigError

if TYPE_CHECKING:
    from ganforge.models.spec import ModelSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class TrainConfig:
    """Every setting of a training run. Field names are the ``--set`` keys."""

    preset: str = ""
    # data
    data: str = ""  # "" is the implicit default: full MNIST if on disk, else the bundled sample
    data_root: str = ""  # "" -> $GANFORGE_DATA or ./data
    download: bool = True  # a dataset named explicitly may be downloaded when missing
    image_size: int = 0  # square side in pixels; 0: from the data (ganforge.data.shape)
    channels: int = 0  # 1 grey, 3 RGB; 0: from the data
    crop: str = "center"  # center | none
    on_bad_image: str = "skip"  # skip | error
    drop_last: bool = False
    # data loading (issue 4): transparency, decoder processes, what is held in memory
    background: str = "white"  # transparent pixels become white | black | grey | R,G,B
    decode_workers: int = 0  # processes decoding image folders; 0 = one per core for big ones
    max_memory_mb: float = 0.0  # bigger prepared files stream from disk; 0 = 1/4 device memory
    holdout: float = 0.0  # share of the images kept out of training (by seed) to check memorising
    # model
    model: str = "dcgan"
    z_dim: int = 100
    g_features: int = 64  # dcgan: width of G's last hidden layer / 2; mlp: hidden width of G
    d_features: int = 64  # dcgan: width of D's first layer; mlp: hidden width of D
    leaky_slope: float = 0.2
    weight_init: str = "dcgan"  # dcgan: conv weights ~ N(0, 0.02) | default: PyTorch's
    bn_init: str = "paper"  # paper: BN weight ~ N(1, 0.02), bias 0 | tutorial: N(0, 0.02)
    # objective and optimisers
    loss: str = "bce"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 128
    # quality (issue 6): regularisers, normalisation, EMA, augmentation, conditioning
    n_critic: int = 1  # D steps per G step; `steps` and epochs count D steps (batches)
    r1_gamma: float = 0.0  # R1 penalty gamma/2 * E||grad D(x)||^2 on reals; 0 = off
    r1_every: int = 1  # lazy R1: every N D steps, scaled by N
    gp_weight: float = 10.0  # weight of wgan-gp's gradient penalty
    spectral_norm_d: bool = False
    spectral_norm_g: bool = False
    minibatch_std: int = 0  # dcgan D: minibatch-std channel over groups of N images; 0 = off
    ema_decay: float = 0.0  # EMA of G's weights for grids, samples, metrics; 0 = off
    ema_rampup: float = 0.0  # decay at G step t: min(ema_decay, (1+t)/(ema_rampup+t)); 0 = none
    augment: str = ""  # D's input augmentation, e.g. "translation,cutout,color"; "" = off
    augment_p: float = 1.0  # probability of each augmentation per image (start value if adaptive)
    augment_target: float = 0.0  # adaptive p: target of r_t = E[sign(D(real))], e.g. 0.6; 0 = fixed
    augment_interval: int = 4  # D steps between adjustments of the adaptive p
    augment_kimg: float = 100.0  # thousands of images over which adaptive p can move by 1
    conditional: bool = False  # condition G and D on the data's class labels
    num_classes: int = 0  # filled from the data when conditional; 0 = unconditional
    mismatch: bool = False  # conditional D also learns real images under a wrong label as fake
    top_k: float = 1.0  # G learns from the fraction of fakes D rates most real, decaying to this
    top_k_decay: float = 0.99  # per epoch, from 1 down to top_k (Sinha et al. 2020); top_k 1 = off
    # budget: training stops at whichever is reached first; 0 means unused
    epochs: int = 0
    steps: int = 0
    minutes: float = 0.0
    # runtime
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps (or cuda:N)
    precision: str = "fp32"  # fp32 | bf16 | fp16 | auto (bf16 where the device has it natively)
    channels_last: bool = True
    threads: int = 0  # CPU threads; 0: by timing (tune_threads), else by model size
    tune_threads: bool = True  # time 1 and all cores on a throwaway step, re-time on drift
    # speed: the step's fast paths, each with a switch (training/steps.py, docs/BENCHMARKS.md)
    freeze_d: bool = True  # D's weights get no gradient in the G step (same losses, less work)
    joint_d: bool = True  # real and fake through D as one batch where D treats images alone
    by_hand: bool = True  # fully connected G and D: the step's backward by hand, not autograd's
    adam_impl: str = "auto"  # auto (lean on CPU and CUDA) | lean | fused | foreach | for-loop
    compile: bool = False  # torch.compile G's forward, D's loss and G's loss
    compile_backend: str = "inductor"  # torch.compile backend (aot_eager: no code generation)
    cuda_graphs: bool = False  # CUDA: capture the whole D+G step once the shapes are fixed
    # watching
    log_every: int = 100  # steps between console lines, grids and metrics; 0 = never
    log_batch_every: int = 0  # also log when the batch index inside the epoch is a multiple
    log_epoch_start: bool = False  # also log at the first batch of every epoch
    scalar_every: int = 25  # steps between scalars (TensorBoard, metrics.jsonl); 0 = only at logs
    image_step: str = "step"  # TensorBoard image index: step | count (grids so far, as seed-*)
    grid_n: int = 32  # fixed noise vectors drawn in every grid
    grid_mode: str = "eval"  # eval | train: the mode G is in while grids are drawn
    ckpt_every: int = 1000  # steps between checkpoints (one is always written at the end)
    keep_last: int = 3  # periodic checkpoints kept beside last.pt; 0 keeps only last.pt
    on_nan: str = "stop"  # stop | rollback (to the last checkpoint, halving the learning rates)
    progress: bool = True  # tqdm progress bar
    health: str = "warn"  # training-health warnings (training/health.py): off | warn | stop
    health_every: int = 50  # steps between health checks
    # several processes (torchrun): see training/distributed.py
    dist_timeout: float = 600.0  # seconds a rank waits for the others before giving up
    sync_bn: bool = False  # SyncBatchNorm across GPUs (per-rank BatchNorm otherwise)
    # evaluation during training (metrics): scores logged as eval/<metric>, best.pt kept by FID
    eval_every: int = 0  # steps between evaluations; 0 = never
    eval_samples: int = 10_000  # generated images scored at each evaluation
    eval_metrics: str = "fid"  # comma-separated names of ganforge.metrics.METRICS
    eval_features: str = "auto"  # auto | inception | mnist-net | fashion-net | PATH.pt

    def model_spec(self) -> ModelSpec:
        """The part of this config the model builder reads; the class count only when
        ``conditional`` is on (the training loop fills ``num_classes`` from the data)."""
        from ganforge.models.spec import ModelSpec  # here: the models package imports torch

        if self.conditional and self.num_classes < 2:
            raise ConfigError(
                "conditional = true needs num_classes >= 2: train on labelled data (the loop "
                "fills it in) or set num_classes"
            )
        return ModelSpec(
            self.model, self.image_size, self.channels, self.z_dim, self.g_features,
            self.d_features, self.num_classes if self.conditional else 0, self.leaky_slope,
            self.weight_init, self.bn_init, self.spectral_norm_g, self.spectral_norm_d,
            self.minibatch_std,
        )  # fmt: skip

    def budget_set(self) -> bool:
        """Whether any training budget is set."""
        return self.epochs > 0 or self.steps > 0 or self.minutes > 0

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain dict (TOML-serialisable)."""
        return dataclasses.asdict(self)


_CHOICES: dict[str, tuple[str, ...]] = {
    "crop": ("center", "none"),
    "on_bad_image": ("skip", "error"),
    "weight_init": ("dcgan", "default"),
    "bn_init": ("paper", "tutorial"),
    "precision": ("fp32", "bf16", "fp16", "auto"),
    "grid_mode": ("eval", "train"),
    "image_step": ("step", "count"),
    "on_nan": ("stop", "rollback"),
    "health": ("off", "warn", "stop"),
    "adam_impl": ("auto", "lean", "fused", "foreach", "for-loop"),
}
# The preset a new run starts from when neither a preset nor a config file names one.
DEFAULT_PRESET = "quick"
# The budget keys: training stops at whichever set one is reached first.
BUDGET = ("epochs", "steps", "minutes")


def choices(key: str) -> tuple[str, ...]:
    """The values config key ``key`` accepts, for keys with a fixed set (``precision``, ...)."""
    return _CHOICES[key]


# metrics.EXTRACTORS, or the path of a feature network file (PATH.pt)
_EXTRACTOR_NAMES = ("auto", "inception", "mnist-net", "fashion-net")
_POSITIVE = ("z_dim", "g_features", "d_features", "batch_size", "grid_n", "health_every")
_NON_NEGATIVE = (
    "image_size",
    "epochs",
    "steps",
    "minutes",
    "threads",
    "log_every",
    "log_batch_every",
    "scalar_every",
    "ckpt_every",
    "keep_last",
    "decode_workers",
    "max_memory_mb",
    "minibatch_std",
)
_FIELD_TYPES = {f.name: f.type for f in fields(TrainConfig)}


def field_names() -> list[str]:
    """All config keys."""
    return list(_FIELD_TYPES)


def _unknown_key(key: str, where: str) -> ConfigError:
    close = difflib.get_close_matches(key, field_names(), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"unknown config key '{key}' in {where}{hint}; see `ganforge train --help`")


def coerce(key: str, value: Any, where: str = "config") -> Any:
    """Convert ``value`` (a TOML value or a command-line string) to the type of field ``key``."""
    if key not in _FIELD_TYPES:
        raise _unknown_key(key, where)
    kind = _FIELD_TYPES[key]
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise ConfigError(f"config key '{key}' in {where} must be {kind}, got {value!r}") from None


def apply(cfg: TrainConfig, values: dict[str, Any], where: str) -> TrainConfig:
    """Return ``cfg`` with ``values`` applied, each checked and converted."""
    changes = {key: coerce(key, value, where) for key, value in values.items()}
    return dataclasses.replace(cfg, **changes)


def parse_set(pairs: list[str]) -> dict[str, str]:
    """Parse ``key=value`` strings from ``--set``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got '{pair}'")
        out[key.strip()] = value.strip()
    return out


def preset_names() -> list[str]:
    """Names of the presets shipped with ganforge."""
    files = resources.files("ganforge.presets").iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".toml"))


def _read_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where} is not valid TOML: {exc}") from None


# A preset may hold a recipe per kind of data: a table of keys that replace the preset's
# own when the data is of that kind, once the data decided its channels and size
# (``[colour]``: 3 channels; ``[colour-32]``: 3 channels at 32 px or less, where it has one).
VARIANTS = ("colour", "colour-32")


def _preset_values(name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A preset's flat keys and its per-data tables."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}'; choose one of: {', '.join(preset_names())}")
    text = resources.files("ganforge.presets").joinpath(f"{name}.toml").read_text()
    values = _read_toml(text, f"preset {name}")
    tables = {k: values.pop(k) for k in VARIANTS if isinstance(values.get(k), dict)}
    return values, tables


def load_preset(name: str) -> TrainConfig:
    """The config of a named preset (its recipe for the data it is given comes from
    :func:`apply_variant` once the data's channels are known)."""
    values, _ = _preset_values(name)
    return apply(TrainConfig(), {**values, "preset": name}, f"preset {name}")


def _variants_of(cfg: TrainConfig) -> list[str]:
    """The kinds of data ``cfg`` trains on, as a preset's tables name them, the most
    particular first (none for grey)."""
    if cfg.channels != 3:
        return []
    return ["colour-32", "colour"] if 0 < cfg.image_size <= 32 else ["colour"]


def apply_variant(cfg: TrainConfig) -> tuple[TrainConfig, str]:
    """``cfg`` with its preset's recipe for this kind of data, and a line saying so ('' when
    the preset has none). Keys whose value differs from the preset's own were chosen by
    the user (a file, a flag, ``--set``) and stay as they are."""
    if not cfg.preset or cfg.preset not in preset_names():
        return cfg, ""
    _, tables = _preset_values(cfg.preset)
    kind = next((k for k in _variants_of(cfg) if k in tables), "")
    if not kind:
        return cfg, ""
    base = load_preset(cfg.preset)
    table = dict(tables[kind])
    note = str(table.pop("note", ""))
    changes = {k: v for k, v in table.items() if getattr(cfg, k) == getattr(base, k)}
    cfg = apply(cfg, changes, f"preset {cfg.preset} [{kind}]")
    return cfg, f"preset {cfg.preset}: its {kind} recipe" + (f" ({note})" if note else "")


def load_file(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """A config from a TOML file of flat keys (``preset = NAME`` in it starts from that preset)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    values = _read_toml(text, str(path))
    nested = [k for k, v in values.items() if isinstance(v, dict)]
    if nested:
        raise ConfigError(f"{path}: config keys are flat; remove the table(s) {nested}")
    if base is None:
        name = values.get("preset", "")
        base = load_preset(str(name)) if name else TrainConfig()
    return apply(base, values, str(path))


def start_config(preset: str | None = None, config_file: str | Path | None = None) -> TrainConfig:
    """Where a new run's settings start: the preset, then the config file over it;
    :data:`DEFAULT_PRESET` when neither is given (a file alone may name its own preset)."""
    if config_file:
        return load_file(config_file, load_preset(preset) if preset else None)
    return load_preset(preset or DEFAULT_PRESET)


def run_config(
    base: TrainConfig | None, overrides: dict[str, Any], where: str = "overrides"
) -> TrainConfig:
    """``base`` (None: :func:`start_config`'s default) with ``overrides`` applied; a budget
    among the overrides replaces the base's whole budget (the budget keys not given become
    0), so ``--steps 10`` on a preset of 3,000 steps or 2.5 minutes trains 10 steps.
    ``ganforge train`` and :func:`ganforge.train` both resolve a run's config with this."""
    if any(key in overrides for key in BUDGET):
        overrides = {**dict.fromkeys(BUDGET, 0), **overrides}
    return apply(start_config() if base is None else base, overrides, where)


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check every field's range and choices; raise ConfigError naming the first bad one."""
    for key, choices in _CHOICES.items():
        if getattr(cfg, key) not in choices:
            got = getattr(cfg, key)
            raise ConfigError(f"{key} must be one of {', '.join(choices)}, got '{got}'")
    if cfg.eval_features not in _EXTRACTOR_NAMES and not cfg.eval_features.endswith(".pt"):
        raise ConfigError(
            f"eval_features must be one of {', '.join(_EXTRACTOR_NAMES)} or a feature network "
            f"file NET.pt, got '{cfg.eval_features}'"
        )
    for key in _POSITIVE:
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"{key} must be positive, got {getattr(cfg, key)}")
    for key in _NON_NEGATIVE:
        if getattr(cfg, key) < 0:
            raise ConfigError(f"{key} must not be negative, got {getattr(cfg, key)}")
    _validate_quality(cfg)
    for key in ("lr_g", "lr_d"):
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"{key} must be positive, got {getattr(cfg, key)}")
    for key in ("beta1", "beta2", "holdout"):
        if not 0 <= getattr(cfg, key) < 1:
            raise ConfigError(f"{key} must be in [0, 1), got {getattr(cfg, key)}")
    if cfg.channels not in (0, 1, 3):
        raise ConfigError(f"channels must be 1 or 3 (0: from the data), got {cfg.channels}")
    from ganforge.losses import LOSSES
    from ganforge.models import MODELS

    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model '{cfg.model}'; choose one of: {', '.join(MODELS)}")
    if cfg.loss not in LOSSES:
        raise ConfigError(f"unknown loss '{cfg.loss}'; choose one of: {', '.join(LOSSES)}")
    return cfg


def _validate_quality(cfg: TrainConfig) -> None:
    """Ranges of the quality fields (issue 6)."""
    from ganforge.augment import parse_policy

    for key in ("n_critic", "r1_every", "augment_interval"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{key} must be at least 1, got {getattr(cfg, key)}")
    for key in ("r1_gamma", "gp_weight", "ema_rampup", "num_classes"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"{key} must not be negative, got {getattr(cfg, key)}")
    if not 0 <= cfg.ema_decay < 1:
        raise ConfigError(f"ema_decay must be in [0, 1) (0 turns EMA off), got {cfg.ema_decay}")
    for key in ("augment_p", "augment_target"):
        if not 0 <= getattr(cfg, key) <= 1:
            raise ConfigError(f"{key} must be in [0, 1], got {getattr(cfg, key)}")
    for key in ("top_k", "top_k_decay"):
        if not 0 < getattr(cfg, key) <= 1:
            raise ConfigError(
                f"{key} must be in (0, 1] (top_k 1 turns it off), got {getattr(cfg, key)}"
            )
    if not cfg.augment_kimg > 0:
        raise ConfigError(f"augment_kimg must be positive, got {cfg.augment_kimg}")
    parse_policy(cfg.augment)


def save(cfg: TrainConfig, path: str | Path) -> None:
    """Write the full config as TOML, replacing the file atomically (a resume rewrites it)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(tomli_w.dumps(cfg.to_dict()))
    tmp.replace(path)


# Fields renamed since configs were first saved, old name -> new name: a config saved by an
# older ganforge is read under the new names (docs/RELIABILITY.md, "another ganforge version").
RENAMED: dict[str, str] = {}


def from_dict(values: dict[str, Any], where: str = "checkpoint") -> TrainConfig:
    """Rebuild a config saved with :meth:`TrainConfig.to_dict`, by this or an older ganforge:
    renamed fields are read under their new names, fields added since take their defaults
    and fields since removed are dropped, each said in one line."""
    known: dict[str, Any] = {}
    notes: list[str] = []
    for key, value in values.items():
        new = RENAMED.get(key, key)
        if new not in _FIELD_TYPES:
            notes.append(f"'{key}' is no longer a setting: ignored")
            continue
        if new != key:
            notes.append(f"'{key}' is now '{new}'")
        known[new] = value
    added = [key for key in field_names() if key not in known]
    if added:
        defaults = TrainConfig()
        notes.append(
            "new since it was saved: " + ", ".join(f"{k}={getattr(defaults, k)!r}" for k in added)
        )
    if notes:
        from ganforge.console import info

        info(f"{where}: its config comes from another ganforge version: {'; '.join(notes)}")
    return apply(TrainConfig(), known, where)
