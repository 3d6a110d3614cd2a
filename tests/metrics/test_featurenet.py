"""Training, saving and loading ganforge's feature networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.data import load_sample
from ganforge.errors import MetricsError
from ganforge.metrics.featurenet import (
    FeatureNet,
    load_featurenet,
    save_featurenet,
    train_featurenet,
)


def test_train_save_and_load_round_trip(tmp_path: Path) -> None:
    sample = load_sample()
    assert sample.labels is not None
    images, labels = sample.images[:1200], sample.labels[:1200]
    trained = train_featurenet(
        "mnist-net", (images[:1000], labels[:1000]), (images[1000:], labels[1000:]),
        sample.class_names, "a test", epochs=1, progress=False,
    )  # fmt: skip
    assert trained.test_accuracy > 0.2  # eight steps on 1,000 digits: above chance (0.1)
    path = save_featurenet(trained, tmp_path / "net.pt")
    state = torch.load(path, weights_only=True)  # no code needed to load it
    assert state["format"] == "ganforge-featurenet" and state["trained_on"] == "a test"
    loaded = load_featurenet(path)
    x = torch.zeros(2, 1, 28, 28)
    torch.testing.assert_close(loaded.net(x)[1], trained.net(x)[1])
    assert loaded.test_accuracy == trained.test_accuracy


def test_features_are_128_wide_and_the_net_is_small() -> None:
    net = FeatureNet()
    features, logits = net(torch.zeros(3, 1, 28, 28))
    assert features.shape == (3, 128) and logits.shape == (3, 10)
    assert sum(p.numel() for p in net.parameters()) < 100_000


def test_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MetricsError, match="are missing"):
        load_featurenet(tmp_path / "none.pt")
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(MetricsError, match="not a ganforge feature network"):
        load_featurenet(other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(MetricsError, match="not a readable feature network"):
        load_featurenet(junk)
    with pytest.raises(MetricsError, match="epochs must be positive"):
        train_featurenet(
            "x",
            (np.zeros((2, 1, 28, 28), np.uint8), np.zeros(2)),
            (np.zeros((2, 1, 28, 28), np.uint8), np.zeros(2)),
            ["a"],
            "",
            epochs=0,
        )
