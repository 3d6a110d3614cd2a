"""The ``inception`` extractor: TF-Inception-v3 pool3 features through torch-fidelity.

torch-fidelity is used (rather than pytorch-fid) because it takes uint8 images
as they are, resizes them to 299x299 with a bilinear filter written to match
TensorFlow 1.x bit for bit (the original FID code ran in TF1), and loads its
converted TF weights from a path we give it. The weights (about 91 MB) come from
``--inception-weights PATH``, else the torch hub cache, else a download when
online; offline and absent, the error says where to put the file.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import torch
from torch import Tensor

from ganforge.errors import MetricsError
from ganforge.metrics.extractors import FeatureExtractor, file_fingerprint

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILE
FEATURE_DIM = 2048
INPUT_SIZE = 299


def hub_weights_path() -> Path:
    """Where the weights sit in the torch hub cache ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def _download(path: Path) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(WEIGHTS_URL, str(path), progress=False)
    except Exception:  # offline, proxy, HTTP or disk errors: all mean "not available"
        return False
    return path.is_file()


def find_weights(explicit: str | Path | None = None, download: bool = True) -> Path:
    """The Inception weights file: ``explicit``, the hub cache, or a fresh download."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise MetricsError(f"--inception-weights {path} does not exist")
        return path
    cached = hub_weights_path()
    if cached.is_file() or (download and _download(cached)):
        return cached
    raise MetricsError(
        f"Inception weights not found: put {WEIGHTS_FILE} (from {WEIGHTS_URL}) in "
        f"{cached.parent}/ or pass --inception-weights PATH"
    )


class InceptionExtractor(FeatureExtractor):
    """2048-d pool3 features and 1008 logits of the TF Inception-v3 FID network."""

    def __init__(
        self,
        weights: str | Path | None = None,
        download: bool = True,
        device: str | torch.device = "cpu",
    ) -> None:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = find_weights(weights, download)
        try:  # refuse files that need code to unpickle before torch-fidelity opens it
            torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # unpickling errors come in many types
            raise MetricsError(
                f"{path} is not a weights-only Inception file ({type(exc).__name__})"
            ) from None
        try:
            with contextlib.redirect_stdout(sys.stderr):
                net = FeatureExtractorInceptionV3(
                    "inception-v3-compat",
                    ["2048", "logits"],
                    feature_extractor_weights_path=str(path),
                )
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise MetricsError(
                f"{path} does not hold torch-fidelity Inception weights ({first})"
            ) from None
        self.name = "inception"
        self.dim = FEATURE_DIM
        self.class_names = []  # ImageNet's 1008 classes say nothing about class coverage here
        self.fingerprint = file_fingerprint(path)
        self.batch_size = 50  # 50 x 3 x 299 x 299 activations stay within a few GB
        self.resize_filter = "tf1-bilinear"  # torch-fidelity's TensorFlow 1.x-exact bilinear
        self.net = net.to(device)

    @property
    def input_size(self) -> int:
        """299: torch-fidelity resizes every image to it."""
        return INPUT_SIZE

    def _forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        features, logits = self.net(images.contiguous())
        return features, logits
