"""DataSpec: what the ``--data`` family of settings asks for, checked."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ganforge.data.decode import parse_background
from ganforge.errors import DataError


def default_root() -> Path:
    """The data root: ``$GANFORGE_DATA`` when set, else ``./data``."""
    return Path(os.environ.get("GANFORGE_DATA", "data"))


@dataclass(frozen=True)
class DataSpec:
    """What to load: a dataset name, image folder or prepared file, and how to fit it."""

    data: str = ""  # "" = implicit default (MNIST on disk, else the bundled sample)
    root: str = ""
    image_size: int = 28
    channels: int = 1
    download: bool = True
    crop: str = "center"
    on_bad_image: str = "skip"
    split: str = "train"
    background: str = "white"  # what transparent pixels become: white, black, grey or R,G,B
    decode_workers: int = 0  # decoder processes for image folders; 0 = one per core when large

    @property
    def root_path(self) -> Path:
        """The data root this spec names, or the default one."""
        return Path(self.root) if self.root else default_root()

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        """``background`` as an RGB triple; DataError when it is not a colour."""
        try:
            return parse_background(self.background)
        except ValueError as exc:
            raise DataError(str(exc)) from None
