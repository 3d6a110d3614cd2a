"""What image files hold, without decoding them for training: headers, thumbnails, a summary.

``read_header`` reads a file's header only (Pillow parses mode and size without
touching the pixels); ``examine`` also decodes a small thumbnail for a perceptual
hash and the colour check and times the decode (``ganforge inspect``). Both run in
decoder processes, so this module imports numpy and Pillow only, never torch.
:class:`ImageSummary` is what the channel and size defaults are chosen from
(:mod:`ganforge.data.shape`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

from ganforge.data.decode import BadImage, image_errors, to_mode
from ganforge.data.folder import FolderListing, list_images
from ganforge.data.phash import THUMB, phash
from ganforge.errors import DataError

# Modes that hold no colour whatever their pixels: these are grey without a look.
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
HEADER_SAMPLE = 400  # a bigger folder's defaults come from this many files' headers
COLOUR_SAMPLE = 24  # of those in a colour mode, this many are decoded (small) to look
_SPREAD = 12  # a pixel is coloured when its channels differ by more than this (0-255)
_COLOURED_PIXELS = 0.01  # an image is colour when at least this share of its pixels is
_ORIENTATION = 0x0112  # EXIF orientation; 5-8 turn the image by 90 degrees
_WHITE = (255, 255, 255)
T = TypeVar("T")


@dataclass(frozen=True)
class Header:
    """A readable image file's mode, upright size and format."""

    mode: str
    width: int
    height: int
    format: str

    @property
    def short_side(self) -> int:
        """The shorter of width and height."""
        return min(self.width, self.height)


def _header(img: Image.Image) -> Header:
    w, h = img.size
    if img.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):  # stored turned by 90 degrees
        w, h = h, w
    return Header(img.mode, w, h, img.format or "")


def read_header(path: str | Path) -> Header:
    """The header of one image file; BadImage when it is no image or a decompression bomb."""
    with image_errors(), Image.open(path) as img:
        return _header(img)


def _thumbnail(img: Image.Image) -> Image.Image:
    """``img`` (open, not yet loaded) as a THUMB x THUMB RGB image, transparency on white."""
    if img.format == "JPEG":  # libjpeg decodes at 1/2..1/8 scale, still above 2x THUMB
        img.draft(img.mode, (2 * THUMB, 2 * THUMB))
    img.seek(0)
    img.load()  # the whole file: a truncated one fails here, as it would in training
    w, h = img.size
    if min(w, h) >= 4 * THUMB and img.mode in ("L", "RGB", "RGBA", "LA"):
        img = img.reduce(min(w, h) // (2 * THUMB))  # box-averaged: cheaper conversions below
    return to_mode(img, 3, _WHITE).resize((THUMB, THUMB), Image.Resampling.BILINEAR)


def colour_images(images: np.ndarray) -> np.ndarray:
    """For uint8 RGB images ``[N, 3, H, W]``: whether each holds colour, bool ``[N]``."""
    spread = images.max(axis=1).astype(np.int16) - images.min(axis=1)  # [N, H, W]
    return np.asarray((spread > _SPREAD).mean(axis=(1, 2)) >= _COLOURED_PIXELS)


def looks_colour(rgb: Image.Image) -> bool:
    """Whether an RGB image's pixels hold colour (not grey stored as RGB)."""
    arr = np.asarray(rgb.convert("RGB")).transpose(2, 0, 1)[None]  # [1, 3, H, W]
    return bool(colour_images(arr)[0])


def colour_of(path: str | Path) -> bool:
    """Whether the image file ``path`` holds colour; BadImage when it cannot be decoded."""
    with image_errors(), Image.open(path) as img:
        return img.mode not in GREY_MODES and looks_colour(_thumbnail(img))


@dataclass(frozen=True)
class FileFacts:
    """One file as ``ganforge inspect`` sees it; ``error`` says why it is unusable."""

    header: Header | None
    digest: str = ""  # BLAKE2b of the file's bytes: equal digests are exact duplicates
    phash: int = 0  # perceptual hash of its grey thumbnail (ganforge.data.phash)
    colour: bool = False
    seconds: float = 0.0  # time taken to decode the file
    error: str = ""


def examine(path: str) -> FileFacts:
    """Header, digest, perceptual hash and colour of one file, decoded as training would."""
    start = time.perf_counter()
    try:
        with image_errors():
            raw = Path(path).read_bytes()
            with Image.open(io.BytesIO(raw)) as img:
                header = _header(img)
                small = _thumbnail(img)
    except BadImage as exc:
        return FileFacts(None, error=str(exc), seconds=time.perf_counter() - start)
    grey = np.asarray(small.convert("L"))[None]  # [1, THUMB, THUMB]
    return FileFacts(
        header,
        hashlib.blake2b(raw, digest_size=16).hexdigest(),
        int(phash(grey)[0]),
        header.mode not in GREY_MODES and looks_colour(small),
        time.perf_counter() - start,
    )


def examine_chunk(paths: Sequence[str]) -> list[FileFacts]:
    """:func:`examine` over several files (one task of a decoder process)."""
    return [examine(p) for p in paths]


@dataclass(frozen=True)
class ImageSummary:
    """What the data's images are like: the figures the channel and size defaults use.

    ``colour`` is the share of images whose pixels hold colour. ``stored`` is the
    (channels, size) of data that can only be read at its own shape (a prepared file).
    """

    name: str  # what --data named, as the user sees it
    count: int  # images in the data (files, for a folder)
    modes: dict[str, int]  # Pillow mode -> images of the ones looked at
    width: int  # median width of the images looked at
    height: int  # median height
    short_side: int  # median of the shorter side
    colour: float
    looked: int  # files looked at (of a sample: its size, unreadable ones included)
    stored: tuple[int, int] | None = None
    uniform: bool = True  # every image looked at has the same size

    def describe(self) -> str:
        """e.g. ``3,786 RGBA images, 64x64`` or ``202,599 images (RGB, L), typically 178x218``."""
        modes = sorted(self.modes, key=lambda m: (-self.modes[m], m))
        kind = f"{modes[0]} images" if len(modes) == 1 else f"images ({', '.join(modes)})"
        size = ("" if self.uniform else "typically ") + f"{self.width}x{self.height}"
        sampled = f", {self.looked:,} sampled" if self.looked < self.count else ""
        return f"{self.count:,} {kind}, {size}{sampled}"


def summarise(
    name: str, count: int, headers: Sequence[Header], colours: Sequence[bool]
) -> ImageSummary:
    """The summary of ``count`` images from the ``headers`` looked at and the colour looks
    taken at those in a colour mode (``colours``, any number of them)."""
    if not headers:
        raise DataError(f"none of the image files of {name} looked at could be read")
    coloured_modes = sum(h.mode not in GREY_MODES for h in headers) / len(headers)
    share = coloured_modes * (sum(colours) / len(colours)) if colours else 0.0
    widths, heights = [h.width for h in headers], [h.height for h in headers]
    return ImageSummary(
        name, count, dict(Counter(h.mode for h in headers)),
        int(statistics.median_low(widths)), int(statistics.median_low(heights)),
        int(statistics.median_low(h.short_side for h in headers)), share, len(headers),
        uniform=len({(h.width, h.height) for h in headers}) == 1,
    )  # fmt: skip


def sample_files(files: Sequence[T], n: int, seed: int = 0) -> list[T]:
    """At most ``n`` of ``files`` (or any items), drawn the same way every time, in order."""
    if len(files) <= n:
        return list(files)
    picked = sorted(random.Random(seed).sample(range(len(files)), n))
    return [files[i] for i in picked]


@dataclass
class FolderScan:
    """A folder's listing and the summary its sampled headers give."""

    listing: FolderListing
    summary: ImageSummary
    bad: list[tuple[Path, str]] = field(default_factory=list)  # of the files looked at


def scan_folder(root: str | Path, sample: int = HEADER_SAMPLE) -> FolderScan:
    """Read the headers of (a sample of) the images under ``root`` and summarise them."""
    listing = list_images(root)
    headers: list[Header] = []
    bad: list[tuple[Path, str]] = []
    colour_mode: list[Path] = []
    picked = sample_files(listing.files, sample)
    for path in picked:
        try:
            header = read_header(path)
        except BadImage as exc:
            bad.append((path, str(exc)))
            continue
        headers.append(header)
        if header.mode not in GREY_MODES:
            colour_mode.append(path)
    colours = []
    for path in sample_files(colour_mode, COLOUR_SAMPLE, seed=1):
        try:
            colours.append(colour_of(path))
        except BadImage:
            continue
    name = str(listing.root)
    if not headers:
        raise DataError(
            f"none of the {len(bad)} image files looked at in {name} could be read "
            f"(first: {bad[0][0]}: {bad[0][1]}); point --data at a folder of images"
        )
    summary = summarise(name, len(listing.files), headers, colours)
    return FolderScan(listing, dataclasses.replace(summary, looked=len(picked)), bad)
