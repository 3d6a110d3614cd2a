"""Data: named datasets, image folders, the bundled MNIST sample, in-memory batch loading."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ganforge.data.folder import load_folder
from ganforge.data.images import ImageData, fit
from ganforge.data.loader import BatchLoader
from ganforge.data.named import NAMED, default_root, load_named, load_sample, names
from ganforge.errors import DataError

__all__ = [
    "BatchLoader",
    "DataSpec",
    "ImageData",
    "default_root",
    "load_data",
    "load_sample",
    "names",
]

SAMPLE_NOTICE = (
    "full MNIST not found on disk: training on the bundled sample of 10,000 real MNIST "
    "digits (put MNIST in DATA_ROOT/MNIST/raw or use --data mnist to download it)"
)


@dataclass(frozen=True)
class DataSpec:
    """What to load: a dataset name or path, and how to fit it."""

    data: str = ""  # "" = implicit default (MNIST on disk, else the bundled sample)
    root: str = ""
    image_size: int = 28
    channels: int = 1
    download: bool = True
    crop: str = "center"
    on_bad_image: str = "skip"
    split: str = "train"


def load_data(spec: DataSpec) -> tuple[ImageData, list[str]]:
    """Load and fit the data ``spec`` names; return it with notices for the user."""
    root = Path(spec.root) if spec.root else default_root()
    notices: list[str] = []
    name = spec.data
    if name == "":
        if NAMED["mnist"].locate(root) is not None:
            name = "mnist"
        else:
            name = "mnist-sample"
            notices.append(SAMPLE_NOTICE)
    if name in names():
        data = load_named(name, root, spec.split, download=spec.download and spec.data != "")
    else:
        path = Path(name).expanduser()
        if path.is_dir():
            data, report = load_folder(
                path, spec.image_size, spec.channels, spec.crop, spec.on_bad_image
            )
            if report.bad:
                notices.append(report.summary())
        elif path.exists():
            raise DataError(f"--data {name} is a file; give an image folder or a dataset name")
        elif "/" in name or "\\" in name or name.startswith("."):
            raise DataError(f"data path {name} does not exist; check the path")
        else:
            raise DataError(
                f"unknown dataset '{name}'; choose one of {', '.join(names())} "
                "or give the path of an image folder"
            )
    return fit(data, spec.image_size, spec.channels), notices
