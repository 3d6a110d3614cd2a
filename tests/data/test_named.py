"""Named datasets in torchvision's layouts: CIFAR-10 pickles, CelebA folders, the survey."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from ganforge.data import DataSpec, default_root, load_data, survey
from ganforge.errors import DataError
from tests.data.fakes import fake_cifar10, write_jpegs


def _spec(name: str, size: int = 32, channels: int = 3, **kw: object) -> DataSpec:
    return DataSpec(name, image_size=size, channels=channels, download=False, **kw)  # type: ignore[arg-type]


def test_cifar10_from_torchvision_layout() -> None:
    train = fake_cifar10(default_root())
    data, notices = load_data(_spec("cifar10"))
    assert notices == [] and np.array_equal(data.images, train)
    assert data.labels is not None and len(data.labels) == 30
    assert data.class_names[0] == "airplane" and data.class_names[9] == "truck"
    assert data.source.endswith("cifar-10-batches-py")
    test, _ = load_data(_spec("cifar10", split="test"))
    assert len(test) == 6
    grey64, _ = load_data(_spec("cifar10", 64, 1))
    assert grey64.images.shape == (30, 1, 64, 64)


def test_cifar10_missing_says_where_it_looked_and_how_to_get_it() -> None:
    with pytest.raises(DataError) as err:
        load_data(_spec("cifar10"))
    message = str(err.value)
    assert f"looked in {default_root() / 'cifar-10-batches-py'}" in message
    assert "cifar-10-python.tar.gz" in message and "\n" not in message


def test_cifar10_pickle_that_would_run_code_is_refused() -> None:
    fake_cifar10(default_root())

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, ("echo pwned",))

    path = default_root() / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match="refusing to load .*system"):
        load_data(_spec("cifar10"))


@pytest.mark.parametrize("where", ["celeba/img_align_celeba", "img_align_celeba"])
def test_celeba_found_by_name_in_either_layout(where: str) -> None:
    write_jpegs(default_root() / where, 3)
    (default_root() / "celeba" / "list_attr_celeba.txt").parent.mkdir(exist_ok=True)
    (default_root() / "celeba" / "list_attr_celeba.txt").write_text("3\n")
    data, _ = load_data(_spec("celeba", 64))
    assert data.images.shape == (3, 3, 64, 64) and data.labels is None
    assert data.source == str(default_root() / where)


def test_celeba_folders_given_as_paths(tmp_path: Path) -> None:
    write_jpegs(tmp_path / "celeba" / "img_align_celeba", 4)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("000001.jpg 0\n")
    bare, _ = load_data(_spec(str(tmp_path / "celeba" / "img_align_celeba"), 64))
    parent, _ = load_data(_spec(str(tmp_path / "celeba"), 64))
    assert bare.images.shape == (4, 3, 64, 64) and bare.labels is None
    assert np.array_equal(bare.images, parent.images) and parent.labels is None


def test_celeba_missing_names_both_places() -> None:
    with pytest.raises(DataError) as err:
        load_data(_spec("celeba", 64))
    message = str(err.value)
    assert str(default_root() / "celeba" / "img_align_celeba") in message
    assert str(default_root() / "img_align_celeba") in message
    assert "img_align_celeba.zip" in message and "--data PATH/img_align_celeba" in message


def test_survey_reports_what_is_here() -> None:
    fake_cifar10(default_root())
    write_jpegs(default_root() / "celeba" / "img_align_celeba", 2, 20, 20)
    found = {s.name: s for s in survey(default_root())}
    assert list(found) == ["mnist", "mnist-sample", "fashion-mnist", "cifar10", "celeba"]
    assert found["mnist"].folder is None and found["mnist"].looked
    assert found["mnist-sample"].images == 10_000 and found["mnist-sample"].bytes > 1_000_000
    assert found["cifar10"].images == 50_000 and found["cifar10"].bytes > 30 * 3072
    assert found["celeba"].images == 2 and found["celeba"].folder is not None
