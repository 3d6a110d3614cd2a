"""Decoding one image file to a square uint8 array; imports only numpy and Pillow.

Decoder processes import this module alone, so it must stay free of torch and of
the rest of ganforge (``tests/data/test_decode.py`` checks that).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_NAMED_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128)}
_WIDE_INT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class BadImage(Exception):
    """One file that cannot be used as an image; the message says why."""


class NotSquare(Exception):
    """A non-square image met with ``crop='none'``; args are (width, height)."""


def parse_background(text: str) -> tuple[int, int, int]:
    """``white``, ``black``, ``grey`` or ``R,G,B`` (0-255 each) -> an RGB triple."""
    key = text.strip().lower()
    if key in _NAMED_COLOURS:
        return _NAMED_COLOURS[key]
    parts = key.split(",")
    try:
        rgb = tuple(int(p) for p in parts)
    except ValueError:
        rgb = ()
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise ValueError(
            f"background must be white, black, grey or R,G,B with values 0-255, got '{text}'"
        )
    return rgb[0], rgb[1], rgb[2]


def _wide_to_l(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grey -> 8-bit grey, scaled by the range the data can have.

    I;16 scales 0..65535 to 0..255. I (32-bit) and F take the smallest of the ranges
    [0, 1] (F only), [0, 255], [0, 65535] that holds the image, else its maximum.
    """
    arr = np.asarray(img, dtype=np.float64)
    top = float(arr.max(initial=0.0))
    if img.mode.startswith("I;16"):
        scale = 65535.0
    elif img.mode == "F" and top <= 1.0:
        scale = 1.0
    else:
        scale = next((s for s in (255.0, 65535.0) if top <= s), top)
    scaled = np.clip(arr / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, "L")


def to_mode(img: Image.Image, channels: int, background: tuple[int, int, int]) -> Image.Image:
    """Any Pillow mode -> L (``channels=1``) or RGB (3); alpha composited on ``background``."""
    if img.mode in _WIDE_INT_MODES:
        img = _wide_to_l(img)
    if "transparency" in img.info and img.mode in ("P", "L", "RGB"):
        img = img.convert("RGBA")  # palette or colour-key transparency becomes alpha
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        img = Image.alpha_composite(canvas, rgba)
    return img.convert("L" if channels == 1 else "RGB")


@contextlib.contextmanager
def image_errors() -> Iterator[None]:
    """Turn what Pillow raises for an unusable file into BadImage; bombs are errors too."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("too many pixels: possible decompression bomb") from None
    except UnidentifiedImageError:
        raise BadImage("not an image") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise BadImage(str(exc) or type(exc).__name__) from None


def _open(path: Path, size: int) -> Image.Image:
    """Open and fully decode the first frame, with EXIF orientation applied (inside
    :func:`image_errors`, which makes a decompression bomb warning an error)."""
    with Image.open(path) as opened:
        if opened.format == "JPEG":  # let libjpeg decode at 1/2..1/8 scale when that
            opened.draft(opened.mode, (2 * size, 2 * size))  # still leaves 2x to spare
        opened.seek(0)  # first frame of animations
        opened.load()
        return ImageOps.exif_transpose(opened)


def decode_image(
    path: str | Path,
    size: int,
    channels: int,
    crop: str = "center",
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Decode one file to uint8 ``[C, size, size]``.

    Raises BadImage when the file cannot be used, NotSquare for a non-square
    image when ``crop`` is ``"none"``.
    """
    with image_errors():
        img = to_mode(_open(Path(path), size), channels, background)
    w, h = img.size
    if w != h:
        if crop == "none":
            raise NotSquare(w, h)
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


# One decoded chunk: its images stacked [K, C, S, S] and, for every file of the chunk,
# None when it went into the stack, else ("bad", reason) or ("not-square", "WxH").
Chunk = tuple[np.ndarray, list[tuple[str, str] | None]]


def decode_chunk(
    paths: Sequence[str],
    size: int,
    channels: int,
    crop: str,
    background: tuple[int, int, int],
) -> Chunk:
    """Decode several files (one task of a decoder process); bad files are reported, not raised."""
    images = np.empty((len(paths), channels, size, size), dtype=np.uint8)
    status: list[tuple[str, str] | None] = []
    kept = 0
    for path in paths:
        try:
            images[kept] = decode_image(path, size, channels, crop, background)
        except BadImage as exc:
            status.append(("bad", str(exc)))
            continue
        except NotSquare as exc:
            status.append(("not-square", f"{exc.args[0]}x{exc.args[1]}"))
            continue
        status.append(None)
        kept += 1
    return images[:kept], status
