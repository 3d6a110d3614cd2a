"""Image folders: discovery, labels, bad files skipped or refused, parallel = serial."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.data.folder import decode_workers, list_images, load_folder
from ganforge.errors import DataError
from tests.data.fakes import bad_files, write_jpegs


def test_labels_from_sub_folders(tmp_path: Path) -> None:
    for cls, value in (("cats", 10), ("dogs", 200)):
        (tmp_path / cls / "deep").mkdir(parents=True)
        Image.new("L", (8, 8), value).save(tmp_path / cls / "a.png")
        Image.new("L", (8, 8), value).save(tmp_path / cls / "deep" / "b.bmp")
    (tmp_path / "dogs" / ".hidden.png").write_bytes(b"")  # hidden: left out, not counted bad
    (tmp_path / "dogs" / "readme.txt").write_text("not an image extension: ignored")
    data, report = load_folder(tmp_path, 8, 1)
    assert data.class_names == ["cats", "dogs"]
    assert data.labels is not None and data.labels.tolist() == [0, 0, 1, 1]
    assert data.images[:, 0, 0, 0].tolist() == [10, 10, 200, 200]
    assert report.used == 4 and report.bad == []


def test_flat_folder_is_unlabelled(tmp_path: Path) -> None:
    write_jpegs(tmp_path, 3, 20, 20)
    data, _ = load_folder(tmp_path, 8, 3)
    assert data.labels is None and data.class_names == [] and data.images.shape == (3, 3, 8, 8)


def test_bad_files_are_skipped_with_a_count_and_names(tmp_path: Path) -> None:
    write_jpegs(tmp_path, 4, 30, 40)
    names = bad_files(tmp_path)
    data, report = load_folder(tmp_path, 8, 3, on_bad_image="skip")
    assert len(data) == 4 and report.used == 4
    assert sorted(p.name for p, _ in report.bad) == names
    line = report.summary()
    assert line.startswith("skipped 5 unreadable image file(s): ")
    assert "bomb.png (too many pixels: possible decompression bomb)" in line
    assert line.endswith("and 2 more") and "\n" not in line


def test_bad_files_are_an_error_when_asked(tmp_path: Path) -> None:
    write_jpegs(tmp_path, 2, 30, 40)
    bad_files(tmp_path)
    with pytest.raises(DataError, match=r"bomb\.png: too many pixels.*--on-bad-image skip"):
        load_folder(tmp_path, 8, 3, on_bad_image="error")


def test_crop_none_refuses_a_non_square_image(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "square.png")
    Image.new("RGB", (178, 218)).save(tmp_path / "face.png")
    with pytest.raises(DataError, match=r"face\.png is 178x218, not square.*--crop center"):
        load_folder(tmp_path, 8, 3, crop="none")
    assert len(load_folder(tmp_path, 8, 3, crop="center")[0]) == 2


def test_empty_and_all_bad_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found in"):
        list_images(tmp_path / "empty")
    bad_files(tmp_path / "bad")
    with pytest.raises(DataError, match="none of the 5 image files"):
        load_folder(tmp_path / "bad", 8, 3)


def test_parallel_decode_equals_serial(tmp_path: Path) -> None:
    write_jpegs(tmp_path / "a", 70, 40, 50, seed=3)  # more than one chunk per process
    write_jpegs(tmp_path / "b", 60, 50, 40, seed=4)
    bad_files(tmp_path / "b")
    serial, serial_report = load_folder(tmp_path, 16, 3, workers=1)
    parallel, report = load_folder(tmp_path, 16, 3, workers=2)
    assert np.array_equal(serial.images, parallel.images)
    assert serial.labels is not None and parallel.labels is not None
    assert np.array_equal(serial.labels, parallel.labels) and len(parallel) == 130
    assert [p for p, _ in report.bad] == [p for p, _ in serial_report.bad]


def test_decode_workers_choice() -> None:
    assert decode_workers(3, 10) == 3
    assert decode_workers(0, 100) == 1  # small folders decode in-process
    assert decode_workers(0, 100_000) >= 1


def test_decoders_do_not_rerun_an_unguarded_script(tmp_path: Path) -> None:
    """A user script without a __main__ guard runs once: decoders do not re-run it."""
    write_jpegs(tmp_path / "pics", 4, 20, 20)
    script = tmp_path / "user_script.py"
    script.write_text(
        "from ganforge.data.folder import load_folder\n"
        "data, _ = load_folder('pics', 8, 3, workers=2)\n"
        "print('ran once with', len(data), 'images')\n"
    )
    src = str(Path(__file__).parents[2] / "src")
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
        env={"PYTHONPATH": src}, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["ran once with 4 images"]
