"""Prepared files: the layout numpy can map, labels, damaged files refused, folder prepare."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.data import DataSpec, ImageData, load_data, prepare
from ganforge.data.packed import read_header, read_packed, write_packed
from ganforge.errors import DataError
from tests.data.fakes import bad_files, write_jpegs


def _data(n: int = 12, labelled: bool = True) -> ImageData:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8)
    labels = rng.integers(0, 3, n).astype(np.int64) if labelled else None
    return ImageData(images, labels, ["a", "b", "c"] if labelled else [], "test")


def test_round_trip_and_a_layout_numpy_can_map_alone(tmp_path: Path) -> None:
    data = _data()
    path = tmp_path / "d.gfd"
    write_packed(data, path)
    back = read_packed(path)
    assert isinstance(back.images, np.memmap)
    assert np.array_equal(back.images, data.images)
    assert back.labels is not None and data.labels is not None
    assert np.array_equal(back.labels, data.labels)
    assert back.class_names == ["a", "b", "c"] and back.source == "test"
    # the documented layout, read without ganforge
    raw = path.read_bytes()
    assert raw[:8] == b"GANFORGE"
    header = json.loads(raw[16 : 16 + int.from_bytes(raw[8:12], "little")])
    assert (header["size"], header["channels"], header["count"]) == (8, 3, 12)
    assert header["images_offset"] % 4096 == 0
    mapped = np.memmap(path, np.uint8, "r", header["images_offset"], (12, 3, 8, 8))
    assert np.array_equal(mapped, data.images)
    labels = np.frombuffer(raw, "<i8", 12, header["labels_offset"])
    assert np.array_equal(labels, data.labels)
    assert len(raw) == header["labels_offset"] + 8 * 12
    assert not (tmp_path / "d.gfd.tmp").exists()


def test_unlabelled_file(tmp_path: Path) -> None:
    write_packed(_data(labelled=False), tmp_path / "u.gfd")
    header = read_header(tmp_path / "u.gfd")
    assert header.labels_offset is None and read_packed(tmp_path / "u.gfd").labels is None


def test_damaged_files_are_refused(tmp_path: Path) -> None:
    write_packed(_data(), tmp_path / "d.gfd")
    raw = (tmp_path / "d.gfd").read_bytes()
    (tmp_path / "cut.gfd").write_bytes(raw[:-100])
    with pytest.raises(DataError, match="truncated.*prepare it again"):
        read_header(tmp_path / "cut.gfd")
    (tmp_path / "other.gfd").write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(DataError, match="not a ganforge prepared file"):
        read_header(tmp_path / "other.gfd")
    (tmp_path / "v9.gfd").write_bytes(raw[:12] + (9).to_bytes(4, "little") + raw[16:])
    with pytest.raises(DataError, match="version 9"):
        read_header(tmp_path / "v9.gfd")


def test_prepare_a_folder_with_labels_and_bad_files(tmp_path: Path) -> None:
    write_jpegs(tmp_path / "src" / "x", 3, 40, 30, seed=1)
    write_jpegs(tmp_path / "src" / "y", 2, 30, 40, seed=2)
    bad_files(tmp_path / "src" / "y")
    done = prepare(DataSpec(str(tmp_path / "src"), image_size=16, channels=3), tmp_path / "p.gfd")
    assert done.report is not None and len(done.report.bad) == 5
    assert done.header.count == 5 and done.header.class_names == ["x", "y"]
    packed = read_packed(done.path)
    direct, _ = load_data(DataSpec(str(tmp_path / "src"), image_size=16, channels=3))
    assert np.array_equal(packed.images, direct.images)
    assert packed.labels is not None and packed.labels.tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(DataError, match="--on-bad-image skip"):
        prepare(DataSpec(str(tmp_path / "src"), on_bad_image="error"), tmp_path / "e.gfd")
    assert not (tmp_path / "e.gfd").exists() and not (tmp_path / "e.gfd.tmp").exists()


def test_prepare_a_named_dataset_and_load_it(tmp_path: Path) -> None:
    done = prepare(DataSpec("mnist-sample", image_size=28, channels=1), tmp_path / "m.gfd")
    assert done.header.count == 10_000 and done.header.class_names[:2] == ["0", "1"]
    data, notices = load_data(DataSpec(str(done.path), image_size=28, channels=1))
    assert isinstance(data.images, np.memmap) and notices == []
    assert np.array_equal(data.images, load_data(DataSpec("mnist-sample"))[0].images)
    with pytest.raises(DataError, match="holds 10,000 images of 28x28 grey.*--image-size 28"):
        load_data(DataSpec(str(done.path), image_size=64, channels=3))


def test_grey_and_rgb_folders_prepare_to_the_asked_channels(tmp_path: Path) -> None:
    Image.new("L", (10, 10), 90).save(tmp_path / "g.png")
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(tmp_path / "t.png")
    spec = DataSpec(str(tmp_path), image_size=8, channels=3, background="0,0,255")
    done = prepare(spec, tmp_path / "out" / "c.gfd")
    images = read_packed(done.path).images
    assert images[0, :, 0, 0].tolist() == [90, 90, 90]  # grey -> RGB
    assert images[1, :, 0, 0].tolist() == [0, 0, 255]  # transparent -> the background
