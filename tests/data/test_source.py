"""What --data may name, and one clear error for each thing it cannot use."""

from __future__ import annotations

from pathlib import Path

import pytest

from ganforge.data import DataSpec, load_data
from ganforge.data.source import SAMPLE_NOTICE
from ganforge.errors import DataError


def test_implicit_default_is_the_sample_with_a_notice() -> None:
    data, notices = load_data(DataSpec())
    assert len(data) == 10_000 and notices == [SAMPLE_NOTICE]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("./no/such/folder", "data path ./no/such/folder does not exist"),
        ("missing.gfd", "data path missing.gfd does not exist"),
        ("cifar100", "unknown dataset 'cifar100'; choose one of mnist, mnist-sample"),
    ],
)
def test_bad_names_and_paths(data: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_data(DataSpec(data, download=False))


def test_empty_folder_and_foreign_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found in .*empty"):
        load_data(DataSpec(str(tmp_path / "empty")))
    (tmp_path / "x.npz").write_bytes(b"PK not ours")
    with pytest.raises(DataError, match="not one `ganforge prepare` wrote"):
        load_data(DataSpec(str(tmp_path / "x.npz")))


def test_bad_background_fails_before_decoding() -> None:
    with pytest.raises(DataError, match="background must be white, black"):
        load_data(DataSpec("mnist-sample", background="pink"))
