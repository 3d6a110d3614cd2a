"""Named datasets: where each is looked for on disk, how it is read, how it is downloaded."""

from __future__ import annotations

import contextlib
import gzip
import importlib
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganforge.data.idx import find_idx, read_idx
from ganforge.data.images import ImageData
from ganforge.errors import DataError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
PACKAGE_DIR = Path(__file__).parent

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
CIFAR10_BATCH = 10_000  # images in each cifar-10-batches-py file


@dataclass(frozen=True)
class NamedDataset:
    """A dataset known by name: the folders it may be in, how to read and fetch it.

    ``read`` is None for datasets that are plain image folders (CelebA): those are
    decoded like any ``--data FOLDER``.
    """

    name: str
    description: str
    folders: Callable[[Path], list[Path]]  # candidate folders under a data root, in order
    present: Callable[[Path], bool]  # whether a folder holds the dataset
    read: Callable[[Path, str], ImageData] | None  # (folder, split) -> images
    count: Callable[[Path], int]  # training images in a found folder
    download: Callable[[Path], None] | None
    offline_hint: str  # how to get it without a download; {root} is the data root

    def locate(self, root: Path) -> Path | None:
        """The first folder that holds the dataset, or None."""
        for folder in self.folders(root):
            if self.present(folder):
                return folder
        return None

    def not_found(self, root: Path) -> DataError:
        """The error for a dataset missing from every folder it may be in."""
        looked = ", ".join(str(f) for f in self.folders(root))
        return DataError(
            f"{self.name} not found (looked in {looked}); to use it offline, "
            f"{self.offline_hint.format(root=root)}"
        )


# ---- MNIST and Fashion-MNIST: IDX files -------------------------------------------------


def _idx_present(folder: Path) -> bool:
    return find_idx(folder, "train-images-idx3-ubyte") is not None


def _idx_count(folder: Path) -> int:
    path = find_idx(folder, "train-images-idx3-ubyte")
    assert path is not None
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        head = fh.read(8)
    return int.from_bytes(head[4:8], "big")


def _idx_reader(classes: list[str]) -> Callable[[Path, str], ImageData]:
    def read(folder: Path, split: str) -> ImageData:
        prefix = "train" if split == "train" else "t10k"
        image_file = find_idx(folder, f"{prefix}-images-idx3-ubyte")
        label_file = find_idx(folder, f"{prefix}-labels-idx1-ubyte")
        if image_file is None:
            raise DataError(f"no {prefix}-images-idx3-ubyte[.gz] in {folder}")
        images = read_idx(image_file)[:, None]  # [N, 1, 28, 28]
        labels = read_idx(label_file).astype(np.int64) if label_file else None
        return ImageData(images, labels, classes if labels is not None else [], str(folder))

    return read


# ---- the bundled MNIST sample -------------------------------------------------------------


def load_sample() -> ImageData:
    """The bundled 10,000 real MNIST training digits (CC BY-SA 3.0, LeCun, Cortes, Burges)."""
    return _read_sample(PACKAGE_DIR, "train")


def _read_sample(folder: Path, split: str) -> ImageData:
    if split != "train":
        raise DataError("mnist-sample holds training digits only (split 'train')")
    with np.load(folder / "mnist_sample.npz") as arrays:
        images, labels = arrays["images"], arrays["labels"]
    return ImageData(images[:, None], labels.astype(np.int64), MNIST_CLASSES, "mnist-sample")


# ---- CIFAR-10: torchvision's cifar-10-batches-py pickles ----------------------------------

# The only globals a CIFAR-10 batch file may name: numpy arrays and their dtypes. Any
# other (a pickle that would run code) is refused.
_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}  # fmt: skip


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core"):  # numpy 2 moved numpy.core to numpy._core
            try:
                return getattr(importlib.import_module("numpy._core" + module[10:]), name)
            except ImportError:
                pass
        return getattr(importlib.import_module(module), name)


def _unpickle(path: Path) -> dict[str, object]:
    try:
        with open(path, "rb") as fh:
            raw = _ArrayUnpickler(fh, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise DataError(f"cannot read {path} as a CIFAR-10 batch file: {exc}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path} is not a CIFAR-10 batch file")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in raw.items()}


def _cifar_files(split: str) -> list[str]:
    return [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]


def _read_cifar10(folder: Path, split: str) -> ImageData:
    images, labels = [], []
    for name in _cifar_files(split):
        path = folder / name
        if not path.is_file():
            raise DataError(f"cifar10 is incomplete: {path} is missing; unpack the archive again")
        batch = _unpickle(path)
        try:
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch["labels"], dtype=np.int64))
        except (KeyError, ValueError) as exc:
            raise DataError(f"{path} is not a CIFAR-10 batch file ({exc})") from None
    classes = CIFAR10_CLASSES
    if (folder / "batches.meta").is_file():
        names = _unpickle(folder / "batches.meta").get("label_names")
        if isinstance(names, list):
            classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return ImageData(np.concatenate(images), np.concatenate(labels), classes, str(folder))


def _cifar10_count(folder: Path) -> int:
    return CIFAR10_BATCH * sum((folder / n).is_file() for n in _cifar_files("train"))


# ---- CelebA: a folder of aligned JPEGs ----------------------------------------------------


def _jpegs(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    with os.scandir(folder) as entries:
        return sum(e.name.lower().endswith((".jpg", ".jpeg")) for e in entries)


def _celeba_present(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    with os.scandir(folder) as entries:
        return any(e.name.lower().endswith((".jpg", ".jpeg")) for e in entries)


# ---- downloads (through torchvision; never run by the tests) ------------------------------


def _tv_download(cls_name: str, **kwargs: object) -> Callable[[Path], None]:
    def download(root: Path) -> None:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        if kwargs:
            cls(str(root), download=True, **kwargs)
        else:
            for train in (True, False):
                cls(str(root), train=train, download=True)

    return download


NAMED: dict[str, NamedDataset] = {
    "mnist": NamedDataset(
        "mnist",
        "MNIST handwritten digits, 60,000 train / 10,000 test, 28x28 grey, 10 classes",
        lambda root: [root / "MNIST" / "raw"],
        _idx_present,
        _idx_reader(MNIST_CLASSES),
        _idx_count,
        _tv_download("MNIST"),
        "put train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz in {root}/MNIST/raw/",
    ),
    "mnist-sample": NamedDataset(
        "mnist-sample",
        "10,000 real MNIST training digits bundled with ganforge, 28x28 grey",
        lambda root: [PACKAGE_DIR],
        lambda folder: (folder / "mnist_sample.npz").is_file(),
        _read_sample,
        lambda folder: 10_000,
        None,
        "reinstall ganforge (the sample ships inside the package)",
    ),
    "fashion-mnist": NamedDataset(
        "fashion-mnist",
        "Fashion-MNIST clothing, 60,000 train / 10,000 test, 28x28 grey, 10 classes",
        lambda root: [root / "FashionMNIST" / "raw", DEBIAN_FASHION_MNIST],
        _idx_present,
        _idx_reader(FASHION_CLASSES),
        _idx_count,
        _tv_download("FashionMNIST"),
        "`apt-get install dataset-fashion-mnist`, or put the IDX files in {root}/FashionMNIST/raw/",
    ),
    "cifar10": NamedDataset(
        "cifar10",
        "CIFAR-10 photos, 50,000 train / 10,000 test, 32x32 RGB, 10 classes",
        lambda root: [root / "cifar-10-batches-py"],
        lambda folder: (folder / "data_batch_1").is_file(),
        _read_cifar10,
        _cifar10_count,
        _tv_download("CIFAR10"),
        "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
        "and unpack it in {root} (giving {root}/cifar-10-batches-py/data_batch_1 ...)",
    ),
    "celeba": NamedDataset(
        "celeba",
        "CelebA aligned faces, 202,599 JPEGs of 178x218 RGB, centre-cropped square, unlabelled",
        lambda root: [root / "celeba" / "img_align_celeba", root / "img_align_celeba"],
        _celeba_present,
        None,
        _jpegs,
        _tv_download("CelebA", split="all", target_type=[]),
        "download img_align_celeba.zip from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html "
        "and unzip it in {root}/celeba/ (giving {root}/celeba/img_align_celeba/000001.jpg ...), "
        "or pass the unzipped folder itself: --data PATH/img_align_celeba",
    ),
}


def names() -> list[str]:
    """Every dataset name ``--data`` accepts."""
    return list(NAMED)


def find_named(name: str, root: Path, download: bool = False) -> Path:
    """The folder holding named dataset ``name``, downloading it into ``root`` when allowed."""
    spec = NAMED[name]
    folder = spec.locate(root)
    if folder is None and download and spec.download is not None:
        try:
            spec.download(root)
        except Exception as exc:  # network errors come in many types
            raise DataError(
                f"could not download {name} into {root} ({type(exc).__name__}: {exc}); "
                f"to use it offline, {spec.offline_hint.format(root=root)}"
            ) from None
        folder = spec.locate(root)
    if folder is None:
        raise spec.not_found(root)
    return folder


def load_named(name: str, root: Path, split: str = "train", download: bool = False) -> ImageData:
    """Load a named array dataset's ``split`` ("train" or "test") from ``root``."""
    spec = NAMED[name]
    if spec.read is None:
        raise DataError(f"{name} is an image folder; load it with load_data(DataSpec('{name}'))")
    return spec.read(find_named(name, root, download), split)


@dataclass
class DatasetStatus:
    """Whether a named dataset is on this machine, where, and how big it is."""

    name: str
    description: str
    folder: Path | None  # where it was found, None when absent
    looked: list[Path]
    images: int = 0
    bytes: int = 0


def _disk_bytes(folder: Path) -> int:
    if folder == PACKAGE_DIR:
        return (folder / "mnist_sample.npz").stat().st_size
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def survey(root: Path) -> list[DatasetStatus]:
    """Each named dataset: present or not under ``root`` (or its other places), where, its size."""
    out = []
    for spec in NAMED.values():
        folder = spec.locate(root)
        status = DatasetStatus(spec.name, spec.description, folder, spec.folders(root))
        if folder is not None:
            status.images = spec.count(folder)
            status.bytes = _disk_bytes(folder)
        out.append(status)
    return out
