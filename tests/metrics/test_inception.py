"""The inception extractor's plumbing, offline, with a weights file of random values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge import cli
from ganforge.errors import MetricsError
from ganforge.metrics import RealImages, evaluate, get_extractor
from ganforge.metrics import inception as inc
from ganforge.metrics.extractors import file_fingerprint


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file with torch-fidelity's Inception keys and shapes, holding random values."""
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    patch = pytest.MonkeyPatch()
    patch.setattr(tfi, "load_state_dict_from_url", lambda *a, **k: {})  # nothing is fetched
    patch.setattr(tfi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    torch.manual_seed(0)
    net = tfi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    patch.undo()
    path = tmp_path_factory.mktemp("weights") / inc.WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(autouse=True)
def _empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(inc, "_download", lambda path: False)  # tests never download
    return tmp_path / "torch-home"


def test_features_and_logits_from_a_weights_path(random_weights: Path) -> None:
    ex = get_extractor("inception", inception_weights=random_weights)
    grey = np.random.default_rng(0).integers(0, 256, (2, 1, 28, 28), dtype=np.uint8)
    feats, logits = ex.embed(grey)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all()
    assert logits is not None and logits.shape == (2, 1008)
    rgb = np.repeat(grey, 3, axis=1)  # grey images go in as three equal channels
    torch.testing.assert_close(ex.features(rgb), feats)


def test_hub_cache_is_found_and_scores_come_out(
    random_weights: Path, _empty_torch_home: Path
) -> None:
    cached = _empty_torch_home / "hub" / "checkpoints" / inc.WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.symlink_to(random_weights)
    assert inc.find_weights() == cached
    rng = np.random.default_rng(1)
    real = RealImages(rng.integers(0, 256, (3, 3, 32, 32), dtype=np.uint8), "rgb-folder")
    scores = evaluate(real.images[:2], real, "kid", "inception", 2)
    assert scores.features == "inception" and np.isfinite(scores.values["kid"])
    card = scores.card  # the weights file's hash and torch-fidelity's TF1 resize
    assert card is not None and card.extractor_hash == file_fingerprint(random_weights)
    assert (card.resize, card.resize_filter) == ("32x32 -> 299x299", "tf1-bilinear")


def test_missing_weights_offline_say_where_to_put_the_file(
    _empty_torch_home: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(MetricsError) as err:
        inc.find_weights()
    message = str(err.value)
    assert inc.WEIGHTS_FILE in message and str(_empty_torch_home / "hub" / "checkpoints") in message
    assert "--inception-weights" in message
    images = tmp_path / "fakes.npz"
    np.savez(images, images=np.zeros((4, 3, 8, 8), np.uint8))
    folder = tmp_path / "real"
    folder.mkdir()
    from PIL import Image

    for i in range(3):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / f"{i}.png")
    code = cli.main(
        ["eval", str(images), "--features", "inception", "--data", str(folder), "--no-progress"]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and inc.WEIGHTS_FILE in lines[0]


def test_wrong_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MetricsError, match="does not exist"):
        inc.find_weights(tmp_path / "nope.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"fc.weight": torch.zeros(3)}, wrong)
    with pytest.raises(MetricsError, match="does not hold torch-fidelity Inception weights"):
        get_extractor("inception", inception_weights=wrong)
