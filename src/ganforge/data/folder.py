"""Image folders: recursive discovery, robust decoding, centre-crop and resize to a square."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ganforge.data.images import ImageData
from ganforge.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")


class BadImage(Exception):
    """One file that cannot be used as an image; the message says why."""


@dataclass
class DecodeReport:
    """What happened to the files of a folder."""

    used: int = 0
    bad: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self, limit: int = 3) -> str:
        """One line naming the count of skipped files and the first few."""
        named = ", ".join(f"{p} ({why})" for p, why in self.bad[:limit])
        more = f" and {len(self.bad) - limit} more" if len(self.bad) > limit else ""
        return f"skipped {len(self.bad)} unreadable file(s): {named}{more}"


def list_images(root: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """Image files under ``root`` (sorted), with labels when every file sits in a class folder."""
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    tops = [p.relative_to(root).parts for p in files]
    if files and all(len(parts) > 1 for parts in tops):
        class_names = sorted({parts[0] for parts in tops})
        if len(class_names) > 1:
            index = {name: i for i, name in enumerate(class_names)}
            return files, [index[parts[0]] for parts in tops], class_names
    return files, None, []


def _to_mode(img: Image.Image, channels: int, background: tuple[int, int, int]) -> Image.Image:
    """Convert any Pillow mode to L (channels=1) or RGB (channels=3)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        if img.mode in ("I", "F") and arr.max() <= 255:
            top = 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        img = Image.alpha_composite(canvas, rgba)
    return img.convert("L" if channels == 1 else "RGB")


def decode_image(
    path: Path,
    size: int,
    channels: int,
    crop: str = "center",
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Decode one file to uint8 ``[C, size, size]``; raise BadImage when it cannot be used."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                opened.seek(0)  # first frame of animations
                opened.load()
                img = ImageOps.exif_transpose(opened) or opened
                img = _to_mode(img, channels, background)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("too many pixels: possible decompression bomb") from None
    except UnidentifiedImageError:
        raise BadImage("not an image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise BadImage(str(exc) or type(exc).__name__) from None
    w, h = img.size
    if w != h:
        if crop == "none":
            raise DataError(
                f"{path} is {w}x{h}, not square, and crop is 'none'; "
                "use --crop center or prepare square images"
            )
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def load_folder(
    root: str | Path,
    size: int,
    channels: int,
    crop: str = "center",
    on_bad_image: str = "skip",
) -> tuple[ImageData, DecodeReport]:
    """Decode every image under ``root`` into one ImageData."""
    root = Path(root)
    files, labels, class_names = list_images(root)
    if not files:
        raise DataError(
            f"no images found in {root} (looked recursively for "
            f"{', '.join(IMAGE_EXTENSIONS)}); point --data at a folder of images"
        )
    report = DecodeReport()
    images = np.empty((len(files), channels, size, size), dtype=np.uint8)
    keep: list[int] = []
    for i, path in enumerate(files):
        try:
            images[len(keep)] = decode_image(path, size, channels, crop)
        except BadImage as exc:
            if on_bad_image == "error":
                raise DataError(
                    f"{path}: {exc}; remove it or use --on-bad-image skip"
                ) from None
            report.bad.append((path, str(exc)))
            continue
        keep.append(i)
    report.used = len(keep)
    if not keep:
        raise DataError(f"none of the {len(files)} image files in {root} could be read")
    label_array = None if labels is None else np.asarray(labels, dtype=np.int64)[keep]
    data = ImageData(images[: len(keep)], label_array, class_names, source=str(root))
    return data, report
