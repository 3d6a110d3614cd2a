"""Prepared data files (``.gfd``): one uint8 image block numpy can memory-map, labels, a header.

Layout, all little-endian::

    bytes 0-7      b"GANFORGE"
    bytes 8-11     uint32: length H of the JSON header
    bytes 12-15    uint32: format version (1)
    bytes 16-16+H  JSON header, padded with spaces: size, channels, count, source,
                   class_names, images_offset, labels_offset (null when unlabelled)
    images_offset  uint8 [count, channels, size, size], C order; 4096-aligned
    labels_offset  int64 [count], 8-aligned, after the images

so ``np.memmap(path, np.uint8, "r", images_offset, (count, channels, size, size))``
reads the images without ganforge. Files are written under a temporary name and
renamed when complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganforge.data.images import ImageData
from ganforge.errors import DataError

MAGIC = b"GANFORGE"
VERSION = 1
_PREAMBLE = 16
_ALIGN = 4096


def _align(n: int, to: int) -> int:
    return -(-n // to) * to


def is_packed(path: str | Path) -> bool:
    """Whether ``path`` is a file that starts like a prepared data file."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


@dataclass
class PackedHeader:
    """The JSON header of a prepared file."""

    size: int
    channels: int
    count: int
    source: str
    class_names: list[str] = field(default_factory=list)
    images_offset: int = 0
    labels_offset: int | None = None

    @property
    def image_bytes(self) -> int:
        """Bytes of one image."""
        return self.channels * self.size * self.size

    def describe(self) -> str:
        """``N images of SxS, grey|RGB``."""
        return f"{self.count:,} images of {self.size}x{self.size} {_colour(self.channels)}"


def _colour(channels: int) -> str:
    return "grey" if channels == 1 else "RGB"


def read_header(path: str | Path) -> PackedHeader:
    """The header of prepared file ``path``; DataError when it is not one or is damaged."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            pre = fh.read(_PREAMBLE)
            if len(pre) < _PREAMBLE or pre[:8] != MAGIC:
                raise DataError(f"{path} is not a ganforge prepared file (.gfd)")
            length = int.from_bytes(pre[8:12], "little")
            version = int.from_bytes(pre[12:16], "little")
            if version != VERSION:
                raise DataError(
                    f"{path} is a version {version} prepared file; this ganforge reads "
                    f"version {VERSION}: prepare it again"
                )
            values: dict[str, Any] = json.loads(fh.read(length))
        header = PackedHeader(**values)
        size = path.stat().st_size
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"cannot read {path} as a prepared file: {exc}") from None
    end = header.images_offset + header.count * header.image_bytes
    if header.labels_offset is not None:
        end = header.labels_offset + 8 * header.count
    if size < end:
        raise DataError(
            f"{path} is truncated ({size} bytes, its header needs {end}); prepare it again"
        )
    return header


def read_packed(path: str | Path) -> ImageData:
    """A prepared file as ImageData whose images are a read-only memory map."""
    header = read_header(path)
    shape = (header.count, header.channels, header.size, header.size)
    images = np.memmap(path, np.uint8, "r", header.images_offset, shape)
    labels = None
    if header.labels_offset is not None:
        labels = np.fromfile(path, "<i8", header.count, offset=header.labels_offset)
        labels = labels.astype(np.int64)
    return ImageData(images, labels, header.class_names, header.source)


def _encode(header: PackedHeader, **changes: Any) -> bytes:
    values = {**header.__dict__, **changes}
    return json.dumps(values, ensure_ascii=False).encode()


def _images_offset(header: PackedHeader) -> int:
    """Where the images start: room for the final header whatever its count and offsets."""
    room = len(_encode(header, labels_offset=2**62)) + 64
    return _align(_PREAMBLE + room, _ALIGN)


def file_bytes(
    count: int,
    size: int,
    channels: int,
    source: str,
    class_names: list[str],
    labelled: bool,
    capacity: int = 0,
) -> int:
    """The size of the prepared file ``count`` such images (with labels or not) make, written
    by a :class:`PackedWriter` of ``capacity`` rows (default ``count``)."""
    header = PackedHeader(size, channels, capacity or count, source, list(class_names))
    end = _images_offset(header) + count * header.image_bytes
    return _align(end, 8) + 8 * count if labelled else end


class PackedWriter:
    """Writes a prepared file: fill ``images`` (a memory map of ``capacity`` rows), then close.

    ``close(count, labels)`` keeps the first ``count`` rows, appends the labels,
    writes the header and renames the temporary file into place.
    """

    def __init__(
        self,
        path: str | Path,
        capacity: int,
        size: int,
        channels: int,
        source: str,
        class_names: list[str],
    ) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.header = PackedHeader(size, channels, capacity, source, list(class_names))
        self.header.images_offset = _images_offset(self.header)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.tmp, "wb") as fh:
                fh.truncate(self.header.images_offset + capacity * self.header.image_bytes)
        except OSError as exc:
            raise DataError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        shape = (capacity, channels, size, size)
        self.images: np.ndarray = np.memmap(
            self.tmp, np.uint8, "r+", self.header.images_offset, shape
        )

    def close(self, count: int, labels: np.ndarray | None) -> PackedHeader:
        """Keep the first ``count`` images, add ``labels``, write the header, rename into place."""
        assert isinstance(self.images, np.memmap)
        self.images.flush()
        del self.images
        header = self.header
        header.count = count
        end = header.images_offset + count * header.image_bytes
        try:
            with open(self.tmp, "r+b") as fh:
                if labels is not None:
                    header.labels_offset = _align(end, 8)
                    fh.seek(header.labels_offset)
                    fh.write(np.asarray(labels[:count], dtype="<i8").tobytes())
                    end = header.labels_offset + 8 * count
                fh.truncate(end)
                text = _encode(header).ljust(header.images_offset - _PREAMBLE, b" ")
                fh.seek(0)
                fh.write(MAGIC + len(text).to_bytes(4, "little") + VERSION.to_bytes(4, "little"))
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise DataError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        return header

    def abort(self) -> None:
        """Drop the temporary file."""
        self.__dict__.pop("images", None)
        self.tmp.unlink(missing_ok=True)


def write_packed(data: ImageData, path: str | Path, chunk: int = 8192) -> PackedHeader:
    """Write in-memory (or memory-mapped) ``data`` as a prepared file."""
    n, channels, size, _ = data.images.shape
    writer = PackedWriter(path, n, size, channels, data.source, data.class_names)
    try:
        for start in range(0, n, chunk):
            writer.images[start : start + chunk] = data.images[start : start + chunk]
        return writer.close(n, data.labels)
    except BaseException:
        writer.abort()
        raise
