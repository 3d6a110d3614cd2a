"""The reference loop follows the tutorial: per-sample PIL transforms, Sigmoid + BCELoss, fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision import transforms

from ganforge.bench.reference import (
    ArrayImageDataset,
    _dcgan_discriminator,
    _dcgan_generator,
    check_supported,
    reference_steps,
)
from ganforge.config import TrainConfig
from ganforge.errors import ConfigError
from ganforge.models import build_models
from tests.training.helpers import on_mnist


def test_dataset_serves_pil_images_through_the_transforms() -> None:
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 1, 28, 28)
    seen = []

    def transform(image: object) -> torch.Tensor:
        seen.append(type(image).__name__)
        pipeline = transforms.Compose(
            [transforms.Resize(64), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])]
        )
        return pipeline(image)

    x, label = ArrayImageDataset(images, np.array([3, 4]), transform)[1]
    assert seen == ["Image"]
    assert x.shape == (1, 64, 64) and label == 4
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


def test_reference_dcgan_has_ganforges_shapes_plus_a_sigmoid() -> None:
    G, D = build_models(on_mnist("seed-dcgan").model_spec())
    ref_d, ref_g = _dcgan_discriminator(1, 64), _dcgan_generator(100, 1, 64)
    shapes = [tuple(p.shape) for p in ref_d.parameters()]
    assert shapes == [tuple(p.shape) for p in D.parameters()]
    assert [tuple(p.shape) for p in ref_g.parameters()] == [tuple(p.shape) for p in G.parameters()]
    assert isinstance(ref_d[-1], nn.Sigmoid)
    with torch.no_grad():
        out = ref_d(ref_g(torch.randn(2, 100, 1, 1)))
    assert out.shape == (2, 1, 1, 1) and float(out.min()) > 0 and float(out.max()) < 1


def test_reference_loop_trains_with_the_last_short_batch() -> None:
    cfg = TrainConfig(model="mlp", image_size=28, channels=1, z_dim=8, g_features=16, d_features=8,
                      batch_size=4)  # fmt: skip
    images = np.random.default_rng(0).integers(0, 256, (10, 1, 28, 28), dtype=np.uint8)
    steps = reference_steps(cfg, images, None, torch.device("cpu"))
    assert [next(steps) for _ in range(4)] == [4, 4, 2, 4]  # 10 images, batch 4, kept short


def test_only_seed_programs_have_a_reference() -> None:
    check_supported(on_mnist("seed-simple"))
    check_supported(on_mnist("seed-dcgan"))
    with pytest.raises(ConfigError, match="dcgan at 28 pixels"):
        check_supported(on_mnist("quick"))
