"""The score card: built from what the evaluation knows, round-trips, and says which
differences change the number."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.errors import MetricsError
from ganforge.metrics import (
    CHANGES_THE_NUMBER,
    FakeOrigin,
    FeatureExtractor,
    RealImages,
    ScoreCard,
    differences,
    evaluate,
    fp32_scoring,
    which_fields_change_the_number,
)
from ganforge.metrics.cache import cache_path, data_hash
from ganforge.metrics.extractors import file_fingerprint
from ganforge.metrics.featurenet import FeatureNet, TrainedNet, save_featurenet
from ganforge.metrics.provenance import scoring_precision


@pytest.fixture
def card(mnist_net: FeatureExtractor, digits: np.ndarray) -> ScoreCard:
    """The card of 100 real digits scored against 200 others, as step 7 of an EMA run."""
    origin = FakeOrigin("runs/x", "run", step=7, ema=True, truncation=0.8, latent_seed=3)
    real = RealImages(digits[:200], "mnist-sample", "test")
    scores = evaluate(digits[-100:], real, "fid", mnist_net, 100, seed=5, origin=origin)
    assert scores.card is not None
    return scores.card


def test_the_card_names_everything_the_evaluation_knew(
    card: ScoreCard, mnist_net: FeatureExtractor, digits: np.ndarray
) -> None:
    assert (card.extractor, card.extractor_hash) == ("mnist-net", mnist_net.fingerprint)
    assert (card.resize, card.resize_filter) == ("28x28", "none")  # already the net's size
    assert (card.n_fake, card.n_real, card.seed) == (100, 200, 5)
    assert (card.data, card.split) == ("mnist-sample", "test")
    assert card.data_hash == data_hash(digits[:200])
    assert (card.source, card.kind, card.step, card.ema) == ("runs/x", "run", 7, True)
    assert (card.truncation, card.latent_seed) == (0.8, 3)
    assert (card.precision, card.device) == ("fp32", "cpu")
    assert card.torch == torch.__version__ and card.numpy == np.__version__
    assert card.created.endswith("+00:00")


def test_the_data_hash_is_the_one_keying_the_features_cache(
    card: ScoreCard, mnist_net: FeatureExtractor, digits: np.ndarray
) -> None:
    real = RealImages(digits[:200], "mnist-sample", "test")
    with np.load(cache_path(real, mnist_net)) as stored:
        assert str(stored["key"]) == f"{card.data_hash}-{mnist_net.fingerprint}"


def test_a_resize_is_named_with_its_filter(mnist_net: FeatureExtractor, digits: np.ndarray) -> None:
    big = np.repeat(np.repeat(digits[:60], 2, axis=2), 2, axis=3)  # [60, 1, 56, 56]
    card = evaluate(big[:30], RealImages(big[30:]), "fid", mnist_net, 30).card
    assert card is not None
    assert (card.resize, card.resize_filter) == ("56x56 -> 28x28", "bilinear-antialiased")
    assert (card.kind, card.step, card.ema) == ("images", None, None)  # no origin given


def test_a_feature_net_file_is_described_at_its_own_size(
    tmp_path: Path, digits: np.ndarray
) -> None:
    net = FeatureNet(num_classes=2, channels=3, size=32)  # untrained: the card needs no skill
    path = save_featurenet(
        TrainedNet(net, "colour-net", ["a", "b"], 0.5, "test"), tmp_path / "c.pt"
    )
    card = evaluate(digits[:30], RealImages(digits[30:60]), "fid", str(path), 30).card
    assert card is not None
    assert (card.extractor, card.extractor_hash) == (str(path), file_fingerprint(path))
    assert (card.resize, card.resize_filter) == ("28x28 -> 32x32", "bilinear-antialiased")


def test_the_card_round_trips_and_a_short_one_is_refused(card: ScoreCard) -> None:
    assert ScoreCard.from_dict(card.to_dict()) == card
    partial = {k: v for k, v in card.to_dict().items() if k not in ("n_fake", "data_hash")}
    with pytest.raises(MetricsError, match="a.json: its score card lacks n_fake, data_hash"):
        ScoreCard.from_dict(partial, "a.json")


def test_short_form_is_one_line_with_the_deciding_fields(card: ScoreCard) -> None:
    line = card.short()
    assert "\n" not in line
    for part in (
        f"mnist-net#{card.extractor_hash[:8]}", "100 fake vs 200 real", "mnist-sample test",
        card.data_hash[:8], "run step 7 ema truncation 0.8", "fp32 cpu",
    ):  # fmt: skip
        assert part in line, part
    assert "| extractor_hash |" in card.markdown()


@pytest.mark.parametrize(
    ("changes", "blocking"),
    [
        ({"n_fake": 5000}, ["n_fake"]),
        ({"extractor": "fashion-net", "extractor_hash": "0" * 16}, ["extractor", "extractor_hash"]),
        ({"split": "train", "data_hash": "f" * 32}, ["split", "data_hash"]),
        ({"ema": False, "truncation": None}, ["ema", "truncation"]),
        ({"precision": "tf32", "resize": "28x28 -> 299x299"}, ["resize", "precision"]),
        ({"seed": 1, "latent_seed": None}, ["seed", "latent_seed"]),
        ({"step": 9, "source": "runs/y", "kind": "checkpoint", "created": "2030-01-01"}, []),
        ({"device": "cuda:0", "data": "elsewhere", "torch": "3.0", "ganforge": "9.9"}, []),
    ],
)
def test_which_fields_change_the_number(
    card: ScoreCard, changes: dict, blocking: list[str]
) -> None:
    other = dataclasses.replace(card, **changes)
    assert which_fields_change_the_number(card, other) == blocking
    assert set(differences(card, other)) == set(changes)
    assert set(blocking) <= set(CHANGES_THE_NUMBER)


def test_precision_names_autocast_and_fp32_scoring_turns_it_off() -> None:
    cpu = torch.device("cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert scoring_precision(cpu) == "bf16"
        with fp32_scoring():
            assert scoring_precision(cpu) == "fp32"
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
        assert scoring_precision(cpu) == "bf16"
    assert scoring_precision(cpu) == "fp32"


def test_fp32_scoring_turns_tf32_off_and_restores_it() -> None:
    cuda = torch.device("cuda")  # the flags and this check need no GPU
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        assert scoring_precision(cuda) == "tf32"
        with fp32_scoring():
            assert scoring_precision(cuda) == "fp32"
            assert not torch.backends.cuda.matmul.allow_tf32
            assert not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and scoring_precision(cuda) == "tf32"
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved
