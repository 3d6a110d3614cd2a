"""What ``--data`` names (a dataset, an image folder, a prepared file), loaded or prepared."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganforge.data import named, packed
from ganforge.data.folder import DecodeReport, decode_files, list_images, load_folder
from ganforge.data.images import ImageData, fit
from ganforge.data.spec import DataSpec
from ganforge.errors import DataError

SAMPLE_NOTICE = (
    "full MNIST not found on disk: training on the bundled sample of 10,000 real MNIST "
    "digits (put MNIST in DATA_ROOT/MNIST/raw or use --data mnist to download it)"
)
PREPARE_HINT_FROM = 10_000  # folders this big get a hint to prepare them once


def data_name(spec: DataSpec) -> str:
    """The dataset name or path ``spec`` loads: the implicit default ("") is MNIST when
    it is on disk, else the bundled sample."""
    if spec.data != "":
        return spec.data
    return "mnist" if named.NAMED["mnist"].locate(spec.root_path) is not None else "mnist-sample"


def _resolve_name(spec: DataSpec, notices: list[str]) -> str:
    """:func:`data_name`, with a notice when the implicit default falls back to the sample."""
    name = data_name(spec)
    if spec.data == "" and name == "mnist-sample":
        notices.append(SAMPLE_NOTICE)
    return name


def image_folder(spec: DataSpec) -> Path | None:
    """The image folder ``spec`` names (a folder path, or CelebA), None for other sources."""
    name = spec.data
    if name in named.NAMED:
        if named.NAMED[name].read is not None:
            return None
        if spec.split != "train":
            raise DataError(f"{name} is used whole (split 'train'); it has no '{spec.split}' split")
        return named.find_named(name, spec.root_path, spec.download)
    path = Path(name).expanduser()
    return path if path.is_dir() else None


def check_path(name: str) -> Path:
    """A ``--data`` value that is no dataset name: the prepared file it names, else DataError."""
    path = Path(name).expanduser()
    if path.is_file():
        if not packed.is_packed(path):
            raise DataError(
                f"--data {name} is a file but not one `ganforge prepare` wrote; give an image "
                "folder, a dataset name or a .gfd file"
            )
        return path
    if path.exists():
        raise DataError(f"--data {name} is neither a folder nor a file")
    if "/" in name or "\\" in name or name.startswith(".") or path.suffix:
        raise DataError(f"data path {name} does not exist; check the path")
    raise DataError(
        f"unknown dataset '{name}'; choose one of {', '.join(named.names())} "
        "or give the path of an image folder or a prepared .gfd file"
    )


def _load_folder(folder: Path, spec: DataSpec) -> tuple[ImageData, list[str]]:
    start = time.perf_counter()
    data, report = load_folder(
        folder, spec.image_size, spec.channels, spec.crop, spec.on_bad_image,
        spec.background_rgb, spec.decode_workers,
    )  # fmt: skip
    notices = [report.summary()] if report.bad else []
    if report.used + len(report.bad) >= PREPARE_HINT_FROM:
        notices.append(
            f"decoded {report.used:,} images in {time.perf_counter() - start:.0f} s; to start "
            f"instantly next time: ganforge prepare {folder} --size {spec.image_size} "
            f"--channels {spec.channels} --out {folder.name}-{spec.image_size}.gfd, "
            "then --data that file"
        )
    return data, notices


def _load_packed(path: Path, spec: DataSpec) -> ImageData:
    header = packed.read_header(path)
    if (header.size, header.channels) != (spec.image_size, spec.channels):
        raise DataError(
            f"{path} holds {header.describe()}; train it with --image-size {header.size} "
            f"--channels {header.channels}, or prepare it again at the size you want"
        )
    return packed.read_packed(path)


def load_data(spec: DataSpec) -> tuple[ImageData, list[str]]:
    """Load and fit the data ``spec`` names; return it with notices for the user.

    A prepared file comes back memory-mapped (see :class:`ganforge.data.BatchLoader`
    for how it is then read); everything else is decoded into memory.
    """
    notices: list[str] = []
    explicit = spec.data != ""  # only a dataset named by the user may be downloaded
    name = _resolve_name(spec, notices)
    spec = dataclasses.replace(spec, data=name, download=spec.download and explicit)
    spec.background_rgb  # noqa: B018 - a bad colour fails before any decoding
    folder = image_folder(spec)
    if folder is not None:
        data, more = _load_folder(folder, spec)
        return data, notices + more
    if name in named.NAMED:
        data = named.load_named(name, spec.root_path, spec.split, spec.download)
        return fit(data, spec.image_size, spec.channels), notices
    return _load_packed(check_path(name), spec), notices


@dataclass
class Prepared:
    """What ``prepare`` wrote."""

    path: Path
    header: packed.PackedHeader
    report: DecodeReport | None  # for image folders: the files skipped
    seconds: float


def prepare(spec: DataSpec, out: str | Path) -> Prepared:
    """Decode the data ``spec`` names once into prepared file ``out`` (parallel for folders)."""
    start = time.perf_counter()
    spec.background_rgb  # noqa: B018 - a bad colour fails before any decoding
    out = Path(out)
    if spec.data == "":
        raise DataError("name what to prepare: an image folder, a dataset name or a .gfd file")
    folder = image_folder(spec)
    if folder is None:
        data, _ = load_data(spec)
        header = packed.write_packed(data, out)
        return Prepared(out, header, None, time.perf_counter() - start)
    listing = list_images(folder)
    writer = packed.PackedWriter(
        out, len(listing.files), spec.image_size, spec.channels, str(folder), listing.class_names
    )
    try:
        kept, report = decode_files(
            listing.files, writer.images, spec.crop, spec.on_bad_image, spec.background_rgb,
            spec.decode_workers,
        )  # fmt: skip
        if not kept:
            raise DataError(f"none of the {len(listing.files)} image files in {folder} is usable")
        labels = None if listing.labels is None else np.asarray(listing.labels)[kept]
        header = writer.close(len(kept), labels)
    except BaseException:
        writer.abort()
        raise
    return Prepared(out, header, report, time.perf_counter() - start)
