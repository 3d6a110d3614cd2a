"""Channels and image size from the data, for a config that leaves them at 0.

``channels = 0`` or ``image_size = 0`` mean "from the data" (the presets and the
defaults say so). :func:`resolve_shape` looks at what ``--data`` names and fills
them in, returning the config with concrete values and one line saying what it
chose; fields already set are kept. :func:`choose_shape` holds the rule:

- channels: 3 when at least ``COLOUR_SHARE`` of the images hold colour (RGB, RGBA,
  CMYK, palette... files whose pixels are not all grey), else 1;
- size: the largest size the model builds that is not above the images' median
  shorter side, at most ``AUTO_MAX_SIZE`` (``--image-size 128`` asks for more);
  images smaller than every size the model builds get its smallest (upscaled).
  So 28x28 images, grey or colour, train at 28, 32x32 at 32, 178x218 at 64;
- a prepared ``.gfd`` file trains at the shape it was prepared at.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ganforge.config import TrainConfig
from ganforge.data import packed
from ganforge.data.scan import ImageSummary, scan_folder
from ganforge.data.source import check_path, data_name
from ganforge.data.spec import DataSpec

AUTO_MAX_SIZE = 64  # the largest size chosen without --image-size
COLOUR_SHARE = 0.1  # images holding colour from which a folder trains in RGB
# The named datasets' training images: mode, width, height, count.
NAMED_SHAPES: dict[str, tuple[str, int, int, int]] = {
    "mnist": ("L", 28, 28, 60_000),
    "mnist-sample": ("L", 28, 28, 10_000),
    "fashion-mnist": ("L", 28, 28, 60_000),
    "cifar10": ("RGB", 32, 32, 50_000),
    "celeba": ("RGB", 178, 218, 202_599),
}


def choose_size(short_side: int, model: str) -> int:
    """The image size for images of median shorter side ``short_side`` and ``model``."""
    from ganforge.models import IMAGE_SIZES  # here: scanning alone needs no torch

    limit = min(short_side, AUTO_MAX_SIZE)
    sizes = IMAGE_SIZES.get(model)
    if sizes is None:  # a model of any size (mlp)
        return max(limit, 1)
    fitting = [s for s in sizes if s <= limit]
    return max(fitting) if fitting else min(sizes)


def choose_shape(cfg: TrainConfig, summary: ImageSummary) -> tuple[TrainConfig, str]:
    """``cfg`` with channels and image_size that are 0 chosen from ``summary``, and the line
    that says so (``data: 3,786 RGBA images, 64x64 -> 3 channels, 64 px``)."""
    if summary.stored is not None:
        channels, size = summary.stored
    else:
        channels = 3 if summary.colour >= COLOUR_SHARE else 1
        size = choose_size(summary.short_side, cfg.model)
    chosen = dataclasses.replace(
        cfg, channels=cfg.channels or channels, image_size=cfg.image_size or size
    )
    size_notes = ["set"] * (cfg.image_size != 0)
    size_notes += ["upscaled"] * (chosen.image_size > summary.short_side)
    plural = "s" if chosen.channels > 1 else ""
    parts = [
        f"{chosen.channels} channel{plural}" + (" (set)" if cfg.channels else ""),
        f"{chosen.image_size} px" + (f" ({', '.join(size_notes)})" if size_notes else ""),
    ]
    return chosen, f"data: {summary.describe()} -> {', '.join(parts)}"


def summarise_data(spec: DataSpec) -> ImageSummary:
    """What the data ``spec`` names is like: a named dataset from what ganforge knows of it,
    a folder from its images' headers, a prepared file from its header."""
    name = data_name(spec)
    if name in NAMED_SHAPES:
        mode, width, height, count = NAMED_SHAPES[name]
        return ImageSummary(
            name, count, {mode: count}, width, height, min(width, height),
            0.0 if mode == "L" else 1.0, count,
        )  # fmt: skip
    path = Path(name).expanduser()
    if path.is_dir():
        return scan_folder(path).summary
    header = packed.read_header(check_path(name))
    mode = "L" if header.channels == 1 else "RGB"
    return ImageSummary(
        name, header.count, {mode: header.count}, header.size, header.size, header.size,
        0.0 if header.channels == 1 else 1.0, header.count, (header.channels, header.size),
    )  # fmt: skip


def resolve_shape(cfg: TrainConfig) -> tuple[TrainConfig, list[str]]:
    """``cfg`` with channels and image_size that are 0 chosen from its data, and the notice
    saying what was chosen (none when both were set)."""
    if cfg.channels and cfg.image_size:
        return cfg, []
    spec = DataSpec(cfg.data, cfg.data_root, download=cfg.download)
    chosen, line = choose_shape(cfg, summarise_data(spec))
    return chosen, [line]
