"""Headers without pixels, the colour look, one file's facts; no torch in decoder processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.data.decode import BadImage
from ganforge.data.scan import colour_of, examine, read_header, sample_files
from tests.data.fakes import bad_files, smooth_rgb


def test_header_reads_mode_size_and_exif_turn(tmp_path: Path) -> None:
    img = smooth_rgb(np.random.default_rng(0), 30, 20)
    img.save(tmp_path / "plain.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: shown 20 wide, 30 high
    img.save(tmp_path / "turned.jpg", exif=exif)
    assert read_header(tmp_path / "plain.jpg").__dict__ == {
        "mode": "RGB", "width": 30, "height": 20, "format": "JPEG",
    }  # fmt: skip
    assert (
        read_header(tmp_path / "turned.jpg").width,
        read_header(tmp_path / "turned.jpg").height,
    ) == (20, 30)


def test_bad_files_are_bad_for_headers_and_facts(tmp_path: Path) -> None:
    names = bad_files(tmp_path)
    for name in ("bomb.png", "empty.png", "notes.jpg"):  # the header alone gives these away
        with pytest.raises(BadImage):
            read_header(tmp_path / name)
    errors = {name: examine(str(tmp_path / name)).error for name in names}
    assert all(errors.values()), errors  # truncated files fail when decoded
    assert errors["bomb.png"] == "too many pixels: possible decompression bomb"


def test_colour_look(tmp_path: Path) -> None:
    rgb = smooth_rgb(np.random.default_rng(0), 32, 32)
    rgb.save(tmp_path / "rgb.png")
    rgb.convert("L").convert("RGB").save(tmp_path / "grey-as-rgb.jpg", quality=80)
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))  # red, but fully transparent: white
    rgba.save(tmp_path / "clear.png")
    looks = {n: colour_of(tmp_path / n) for n in ("clear.png", "grey-as-rgb.jpg", "rgb.png")}
    assert looks == {"clear.png": False, "grey-as-rgb.jpg": False, "rgb.png": True}
    facts = examine(str(tmp_path / "rgb.png"))
    assert facts.colour and facts.error == "" and facts.header is not None
    assert facts.digest == examine(str(tmp_path / "rgb.png")).digest


def test_samples_are_the_same_every_time() -> None:
    items = list(range(1000))
    a = sample_files(items, 10)
    assert a == sample_files(items, 10) and a == sorted(a) and len(set(a)) == 10
    assert sample_files(items[:5], 10) == items[:5]


def test_scan_module_does_not_import_torch() -> None:
    """Inspect's decoder processes import ganforge.data.scan alone: no torch."""
    code = "import sys, ganforge.data.scan; print(sorted(m for m in sys.modules if 'torch' in m))"
    src = str(Path(__file__).parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
