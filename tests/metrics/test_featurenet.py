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


def _colour_folder(root: Path, per_class: int = 40) -> Path:
    """Two classes of 48x48 RGBA pictures a colour net must tell apart by hue alone."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, hue in enumerate(((220, 40, 40), (40, 60, 220))):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(hue) + rng.normal(0, 20, (48, 48, 3)), 0, 255)
            alpha = np.full((48, 48, 1), 255.0)
            rgba = np.concatenate([pixels, alpha], axis=2).astype(np.uint8)
            Image.fromarray(rgba, "RGBA").save(root / f"class{k}" / f"{i}.png")
    return root


def test_a_colour_net_trains_on_a_labelled_folder_and_scores_by_its_path(tmp_path: Path) -> None:
    from ganforge.metrics import get_extractor
    from ganforge.scoring import train_feature_net

    folder = _colour_folder(tmp_path / "pictures")
    out = tmp_path / "pictures-net.pt"
    trained, path = train_feature_net(str(folder), epochs=8, out=out, progress=False)
    assert path == out and trained.name == "pictures-net"
    assert (trained.net.channels, trained.net.size) == (3, 32)
    assert trained.test_accuracy == 1.0  # red from blue: a colour net cannot miss it
    state = torch.load(out, weights_only=True)
    assert (state["channels"], state["size"], state["width"]) == (3, 32, 32)
    net = get_extractor(str(out))
    red = np.full((4, 3, 64, 64), 0, np.uint8)
    red[:, 0] = 220
    assert net.features(red).shape == (4, 128)
    assert list(net.logits(red).argmax(1)) == [0, 0, 0, 0]
    grey_input = red[:, :1]  # grey images are repeated to three channels, not refused
    assert net.features(grey_input).shape == (4, 128)


def test_a_folder_without_classes_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    from ganforge.errors import DataError
    from ganforge.scoring import train_feature_net

    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(4):
        Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(flat / f"{i}.png")
    with pytest.raises(DataError, match="no class sub-folders"):
        train_feature_net(str(flat), epochs=1, out=tmp_path / "x.pt", progress=False)
    with pytest.raises(DataError, match="neither"):
        train_feature_net(str(tmp_path / "missing"), epochs=1, progress=False)
