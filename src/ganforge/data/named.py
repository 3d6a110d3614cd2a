"""Named datasets: where each is looked for on disk, how it is read, how it is downloaded."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ganforge.data.idx import find_idx, read_idx
from ganforge.data.images import ImageData
from ganforge.errors import DataError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def default_root() -> Path:
    """The data root: ``$GANFORGE_DATA`` when set, else ``./data``."""
    return Path(os.environ.get("GANFORGE_DATA", "data"))


@dataclass(frozen=True)
class NamedDataset:
    """A dataset known by name: the folders it may be in and how to fetch it."""

    name: str
    description: str
    folders: Callable[[Path], list[Path]]  # candidate folders under a data root, in order
    stem: str  # the file name (IDX stem) whose presence marks a folder as holding it
    classes: list[str]
    download: Callable[[Path], None] | None
    offline_hint: str

    def locate(self, root: Path) -> Path | None:
        """The first folder that holds the dataset, or None."""
        for folder in self.folders(root):
            if find_idx(folder, self.stem):
                return folder
        return None


def _tv_download(cls_name: str) -> Callable[[Path], None]:
    def download(root: Path) -> None:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        for train in (True, False):
            cls(str(root), train=train, download=True)

    return download


NAMED: dict[str, NamedDataset] = {
    "mnist": NamedDataset(
        "mnist",
        "MNIST handwritten digits, 60,000 train / 10,000 test, 28x28 grey",
        lambda root: [root / "MNIST" / "raw"],
        "train-images-idx3-ubyte",
        MNIST_CLASSES,
        _tv_download("MNIST"),
        "put train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz in DATA_ROOT/MNIST/raw/",
    ),
    "fashion-mnist": NamedDataset(
        "fashion-mnist",
        "Fashion-MNIST clothing, 60,000 train / 10,000 test, 28x28 grey",
        lambda root: [root / "FashionMNIST" / "raw", DEBIAN_FASHION_MNIST],
        "train-images-idx3-ubyte",
        FASHION_CLASSES,
        _tv_download("FashionMNIST"),
        "`apt-get install dataset-fashion-mnist`, or put the IDX files in "
        "DATA_ROOT/FashionMNIST/raw/",
    ),
}


def names() -> list[str]:
    """Every dataset name ``--data`` accepts."""
    return ["mnist-sample", *NAMED]


def load_sample() -> ImageData:
    """The bundled sample: 10,000 real MNIST training digits (CC BY-SA 3.0, LeCun, Cortes, Burges)."""
    with resources.files("ganforge.data").joinpath("mnist_sample.npz").open("rb") as fh:
        arrays = np.load(fh)
        images, labels = arrays["images"], arrays["labels"]
    return ImageData(images[:, None], labels.astype(np.int64), MNIST_CLASSES, "mnist-sample")


def load_named(name: str, root: Path, split: str = "train", download: bool = False) -> ImageData:
    """Load a named dataset's ``split`` ("train" or "test") from ``root``, downloading if allowed."""
    if name == "mnist-sample":
        if split != "train":
            raise DataError("mnist-sample holds training digits only (split 'train')")
        return load_sample()
    spec = NAMED[name]
    folder = spec.locate(root)
    if folder is None and download and spec.download is not None:
        try:
            spec.download(root)
        except Exception as exc:  # network errors come in many types
            raise DataError(
                f"could not download {name} into {root} ({type(exc).__name__}: {exc}); "
                f"to use it offline, {spec.offline_hint}"
            ) from None
        folder = spec.locate(root)
    if folder is None:
        looked = ", ".join(str(f) for f in spec.folders(root))
        raise DataError(
            f"{name} not found (looked in {looked}); {spec.offline_hint}, "
            "or allow the download (drop --no-download)"
        )
    prefix = "train" if split == "train" else "t10k"
    image_file = find_idx(folder, f"{prefix}-images-idx3-ubyte")
    label_file = find_idx(folder, f"{prefix}-labels-idx1-ubyte")
    if image_file is None:
        raise DataError(f"{name}: no {prefix}-images-idx3-ubyte[.gz] in {folder}")
    images = read_idx(image_file)[:, None]  # [N, 1, 28, 28]
    labels = read_idx(label_file).astype(np.int64) if label_file else None
    return ImageData(images, labels, spec.classes if labels is not None else [], str(folder))
