"""evaluate(): FID, KID, PR, DC and class coverage on real digits with the shipped mnist-net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.errors import MetricsError
from ganforge.metrics import FeatureExtractor, RealImages, evaluate, kid, parse_metrics
from tests.metrics.conftest import blur

N = 2000


def test_real_vs_real_is_small_and_real_vs_noise_large(
    mnist_net: FeatureExtractor, digits: np.ndarray
) -> None:
    real = RealImages(digits[:N], "mnist-sample")
    same = evaluate(digits[-N:], real, "fid,pr,dc", mnist_net, N).values
    noise = np.random.default_rng(0).integers(0, 256, digits[-N:].shape, dtype=np.uint8)
    other = evaluate(noise, real, "fid,pr,dc", mnist_net, N).values
    assert other["fid"] > 50 * same["fid"]
    assert same["precision"] > 0.6 and same["recall"] > 0.6 and same["coverage"] > 0.8
    assert other["precision"] == 0.0 and other["coverage"] == 0.0


def test_kid_of_two_draws_of_digits_is_near_zero(
    mnist_net: FeatureExtractor, digits: np.ndarray
) -> None:
    a, b = mnist_net.features(digits[:1000]), mnist_net.features(digits[-1000:])
    same = kid(a, b, subsets=20, subset_size=500)
    blurred = kid(a, mnist_net.features(blur(digits[-1000:], 1.0)), subsets=20, subset_size=500)
    assert abs(same.mean) < 3 * same.std
    assert blurred.mean > 20 * abs(same.mean)


def test_fid_rises_monotonically_with_blur(mnist_net: FeatureExtractor, digits: np.ndarray) -> None:
    real = RealImages(digits[:N], "mnist-sample")
    test = digits[-1000:]
    sigmas = (0, 0.6, 1.2, 2)
    fids = [evaluate(blur(test, s), real, "fid", mnist_net, 1000).values["fid"] for s in sigmas]
    assert fids == sorted(fids) and len(set(fids)) == 4, fids


def test_every_kind_of_fake_source_gives_the_same_score(
    mnist_net: FeatureExtractor, digits: np.ndarray
) -> None:
    real = RealImages(digits[:500], "mnist-sample")
    fakes = digits[5000:5300]
    whole = evaluate(fakes, real, "fid", mnist_net, 300).values["fid"]
    batches = evaluate(iter(np.split(fakes, 3)), real, "fid", mnist_net, 300).values["fid"]
    position = {"at": 0}

    def sampler(count: int) -> torch.Tensor:
        start = position["at"]
        position["at"] += count
        return torch.from_numpy(fakes[start : start + count])

    called = evaluate(sampler, real, "fid", mnist_net, 300, batch_size=64).values["fid"]
    assert whole == pytest.approx(batches) and whole == pytest.approx(called)
    fewer = evaluate(fakes, real, "fid", mnist_net, 100)
    assert fewer.n_fake == 100 and fewer.n_real == 500


def test_class_coverage_sees_a_collapsed_generator(
    mnist_net: FeatureExtractor, digits: np.ndarray
) -> None:
    from ganforge.data import load_sample

    labels = load_sample().labels
    assert labels is not None
    real = RealImages(digits[:500], "mnist-sample")
    varied = evaluate(digits[-1000:], real, "classes", mnist_net, 1000).values["class_kl"]
    sevens = digits[labels == 7][:300]
    collapsed = evaluate(sevens, real, "classes", mnist_net, 300).values["class_kl"]
    assert varied < 0.05
    assert collapsed > 0.9 * np.log(10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": "fid,bogus"}, "unknown metric"),
        ({"n": 0}, "must be positive"),
        ({"fake": np.zeros((4, 1, 28, 28), np.float32)}, "uint8"),
        ({"fake": np.zeros((1, 1, 28, 28), np.uint8)}, "at least 2 fake"),
        ({"metrics": "pr", "fake": np.zeros((4, 1, 28, 28), np.uint8)}, "more than 5"),
        ({"features": "bogus"}, "unknown feature extractor"),
    ],
)
def test_bad_inputs_raise_one_clear_error(
    kwargs: dict, message: str, mnist_net: FeatureExtractor, digits: np.ndarray
) -> None:
    args = {"fake": digits[:20], "metrics": "fid", "n": 20, "features": mnist_net, **kwargs}
    with pytest.raises(MetricsError, match=message):
        evaluate(args.pop("fake"), RealImages(digits[:50]), **args)


def test_classes_needs_a_classifier_of_the_data() -> None:
    assert parse_metrics(" fid, kid,fid ") == ["fid", "kid"]
    with pytest.raises(MetricsError, match="unknown metric"):
        parse_metrics("")


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)
def test_fashion_train_vs_test_is_small_with_fashion_net(tmp_path: Path) -> None:
    from ganforge.data.named import load_named

    train = load_named("fashion-mnist", tmp_path, "train").images[:2000]
    test = load_named("fashion-mnist", tmp_path, "test").images[:2000]
    real = RealImages(test, "fashion-mnist", "test")
    same = evaluate(train, real, "fid", "auto", 2000).values["fid"]
    noise = np.random.default_rng(0).integers(0, 256, train.shape, dtype=np.uint8)
    other = evaluate(noise, real, "fid", "auto", 2000)
    assert other.features == "fashion-net"
    assert other.values["fid"] > 50 * same
