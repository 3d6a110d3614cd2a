"""ImageData: a whole dataset as one uint8 array, and fitting it to a size and channel count."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ganforge.errors import DataError

# ITU-R 601-2 luma, the weights Pillow uses for RGB -> L.
_LUMA = np.array([299, 587, 114], dtype=np.float32) / 1000.0


@dataclass
class ImageData:
    """Images as uint8 ``[N, C, H, W]``, optional int64 labels ``[N]`` and class names."""

    images: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        """Number of classes, 0 when unlabelled."""
        return len(self.class_names)


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Convert uint8 ``[N, C, H, W]`` with C in (1, 3) to ``channels`` channels."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=1)
    if have == 3 and channels == 1:
        grey = np.tensordot(_LUMA, images.astype(np.float32), axes=([0], [1]))  # [N, H, W]
        return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, None]
    raise DataError(f"cannot convert {have}-channel images to {channels} channels")


def resize_square(images: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
    """Resize square uint8 ``[N, C, S, S]`` images to ``size`` (bilinear, antialiased)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    if images.shape[-1] != images.shape[-2]:
        raise DataError(
            f"images are {images.shape[-1]}x{images.shape[-2]}, not square; "
            "crop them first (crop = 'center')"
        )
    import torch  # here, so that preparing and listing data start without torch
    import torch.nn.functional as F

    out = np.empty((*images.shape[:2], size, size), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        part = torch.from_numpy(images[start : start + chunk]).float()
        part = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + chunk] = part.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def fit(data: ImageData, image_size: int, channels: int) -> ImageData:
    """Return ``data`` converted to ``channels`` channels and ``image_size`` pixels square."""
    images = to_channels(data.images, channels)
    images = resize_square(images, image_size)
    return ImageData(images, data.labels, data.class_names, data.source)
