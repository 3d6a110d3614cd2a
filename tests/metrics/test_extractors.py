"""Feature extractors: one interface, the shipped domain nets, and auto."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganforge.errors import MetricsError
from ganforge.metrics import FeatureExtractor, get_extractor
from ganforge.metrics.extractors import resolve_auto
from ganforge.metrics.featurenet import accuracy, load_featurenet, shipped_path


@pytest.mark.parametrize("name", ["mnist-net", "fashion-net"])
def test_shipped_nets_load_weights_only_and_are_small(name: str) -> None:
    path = shipped_path(name)
    assert 50_000 < path.stat().st_size < 1_000_000
    state = torch.load(path, weights_only=True)
    assert state["name"] == name and len(state["class_names"]) == 10
    assert state["test_accuracy"] > 0.88


def test_mnist_net_classifies_the_held_out_sample_digits(digits: np.ndarray) -> None:
    from ganforge.data import load_sample

    labels = load_sample().labels
    assert labels is not None
    trained = load_featurenet(shipped_path("mnist-net"))
    held_out = slice(8000, 10_000)  # the digits it was not trained on
    assert accuracy(trained.net, digits[held_out], labels[held_out]) > 0.97


def test_one_interface_for_any_channels_and_size(
    mnist_net: FeatureExtractor, digits: np.ndarray
) -> None:
    grey = digits[:8]
    feats, logits = mnist_net.embed(grey)
    assert feats.shape == (8, 128) and feats.dtype == torch.float32
    assert logits is not None and logits.shape == (8, 10)
    assert torch.equal(mnist_net.features(torch.from_numpy(grey)), feats)
    rgb = np.repeat(grey, 3, axis=1)  # same picture in RGB: luma gives the grey back
    torch.testing.assert_close(mnist_net.features(rgb), feats, atol=1e-4, rtol=1e-4)
    big = torch.nn.functional.interpolate(torch.from_numpy(grey).float(), size=64)
    assert mnist_net.features(big.round().to(torch.uint8)).shape == (8, 128)


def test_non_uint8_images_are_refused(mnist_net: FeatureExtractor) -> None:
    with pytest.raises(MetricsError, match="uint8"):
        mnist_net.features(torch.rand(2, 1, 28, 28))
    with pytest.raises(MetricsError, match="C = 1 or 3"):
        mnist_net.features(torch.zeros(2, 2, 28, 28, dtype=torch.uint8))


def test_unknown_extractor_is_refused() -> None:
    with pytest.raises(MetricsError, match="choose one of auto, inception"):
        get_extractor("vgg")


def test_auto_picks_the_domain_net_for_mnist_like_data() -> None:
    assert resolve_auto("fashion-mnist", 1, 28) == "fashion-net"
    assert resolve_auto("mnist", 1, 64) == "mnist-net"
    assert resolve_auto("mnist-sample", 1, 28) == "mnist-net"
    assert resolve_auto("my/folder", 1, 28) == "mnist-net"
    assert resolve_auto("my/folder", 3, 64) == "inception"
    assert get_extractor("auto", dataset="fashion-mnist").name == "fashion-net"
