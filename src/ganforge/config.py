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
from typing import Any

import tomli_w

from ganforge.errors import ConfigError

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
    image_size: int = 28
    channels: int = 1
    crop: str = "center"  # center | none
    on_bad_image: str = "skip"  # skip | error
    drop_last: bool = False
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
    # budget: training stops at whichever is reached first; 0 means unused
    epochs: int = 0
    steps: int = 0
    minutes: float = 0.0
    # runtime
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | mps (or cuda:N)
    precision: str = "fp32"  # fp32 | bf16 | fp16
    channels_last: bool = True
    threads: int = 0  # CPU threads; 0 picks by model size
    # watching
    log_every: int = 100  # steps between console lines, grids and metrics; 0 = never
    log_batch_every: int = 0  # also log when the batch index inside the epoch is a multiple
    log_epoch_start: bool = False  # also log at the first batch of every epoch
    grid_n: int = 32  # fixed noise vectors drawn in every grid
    grid_mode: str = "eval"  # eval | train: the mode G is in while grids are drawn
    ckpt_every: int = 1000  # steps between checkpoints (one is always written at the end)
    progress: bool = True  # tqdm progress bar
    # evaluation during training (metrics): scores logged as eval/<metric>, best.pt kept by FID
    eval_every: int = 0  # steps between evaluations; 0 = never
    eval_samples: int = 10_000  # generated images scored at each evaluation
    eval_metrics: str = "fid"  # comma-separated: fid, kid, pr, dc, classes
    eval_features: str = "auto"  # auto | inception | mnist-net | fashion-net

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
    "precision": ("fp32", "bf16", "fp16"),
    "grid_mode": ("eval", "train"),
}
_POSITIVE = ("image_size", "channels", "z_dim", "g_features", "d_features", "batch_size", "grid_n")
_NON_NEGATIVE = (
    "epochs", "steps", "minutes", "threads", "log_every", "log_batch_every", "ckpt_every"
)
_CHOICES["eval_features"] = ("auto", "inception", "mnist-net", "fashion-net")  # metrics
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
        raise ConfigError(
            f"config key '{key}' in {where} must be {kind}, got {value!r}"
        ) from None


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


def load_preset(name: str) -> TrainConfig:
    """The config of a named preset."""
    if name not in preset_names():
        raise ConfigError(f"unknown preset '{name}'; choose one of: {', '.join(preset_names())}")
    text = resources.files("ganforge.presets").joinpath(f"{name}.toml").read_text()
    values = _read_toml(text, f"preset {name}")
    return apply(TrainConfig(), {**values, "preset": name}, f"preset {name}")


def load_file(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """A config from a TOML file of flat keys; ``preset = NAME`` inside it starts from that preset."""
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


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check every field's range and choices; raise ConfigError naming the first bad one."""
    for key, choices in _CHOICES.items():
        if getattr(cfg, key) not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}, got '{getattr(cfg, key)}'")
    for key in _POSITIVE:
        if getattr(cfg, key) <= 0:
            raise ConfigError(f"{key} must be positive, got {getattr(cfg, key)}")
    for key in _NON_NEGATIVE:
        if getattr(cfg, key) < 0:
            raise ConfigError(f"{key} must not be negative, got {getattr(cfg, key)}")
    for key in ("lr_g", "lr_d"):
        if not getattr(cfg, key) > 0:
            raise ConfigError(f"{key} must be positive, got {getattr(cfg, key)}")
    for key in ("beta1", "beta2"):
        if not 0 <= getattr(cfg, key) < 1:
            raise ConfigError(f"{key} must be in [0, 1), got {getattr(cfg, key)}")
    if cfg.channels not in (1, 3):
        raise ConfigError(f"channels must be 1 or 3, got {cfg.channels}")
    from ganforge.losses import LOSSES
    from ganforge.models import MODELS

    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model '{cfg.model}'; choose one of: {', '.join(MODELS)}")
    if cfg.loss not in LOSSES:
        raise ConfigError(f"unknown loss '{cfg.loss}'; choose one of: {', '.join(LOSSES)}")
    return cfg


def save(cfg: TrainConfig, path: str | Path) -> None:
    """Write the full config as TOML."""
    Path(path).write_text(tomli_w.dumps(cfg.to_dict()))


def from_dict(values: dict[str, Any], where: str = "checkpoint") -> TrainConfig:
    """Rebuild a config saved with :meth:`TrainConfig.to_dict`."""
    return apply(TrainConfig(), values, where)
