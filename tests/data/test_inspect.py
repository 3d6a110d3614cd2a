"""``ganforge inspect`` on generated trees: every figure of its report, bad input, the sheet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.cli import main
from ganforge.data import DataSpec, prepare
from ganforge.data.decode import decode_image
from ganforge.data.inspect import InspectRequest, inspect, machine
from tests.data.fakes import bad_files, write_jpegs


def _noise(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """An RGB image with some structure (8x8 noise blown up): its resized copies hash alike."""
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)


def _tree(root: Path) -> Path:
    """Two class folders: 4 RGB 64x64, an exact copy, a resized copy; grey, RGBA, palette
    images of other sizes; and one file of every bad kind."""
    rng = np.random.default_rng(0)
    (root / "a").mkdir(parents=True)
    for i in range(4):
        _noise(rng, 64, 64).save(root / "a" / f"a{i}.png")
    shutil.copy(root / "a" / "a0.png", root / "a" / "a_copy.png")
    Image.open(root / "a" / "a1.png").resize((48, 48)).save(root / "a" / "a_small.png")
    bad_files(root / "b")
    _noise(rng, 28, 28).convert("L").save(root / "b" / "b0.png")
    rgba = _noise(rng, 64, 48).convert("RGBA")
    rgba.putalpha(255)
    rgba.save(root / "b" / "b1.png")
    _noise(rng, 40, 60).quantize(16).save(root / "b" / "b2.png")
    return root


EXPECTED = {
    "kind": "folder",
    "files": 14,
    "images": 9,
    "modes": {"RGB": 6, "L": 1, "P": 1, "RGBA": 1},
    "sizes": {"64x64": 5, "28x28": 1, "40x60": 1, "48x48": 1, "64x48": 1},
    "aspect": {
        "<0.5": 0,
        "0.5-0.8": 1,
        "0.8-0.95": 0,
        "0.95-1.05": 7,
        "1.05-1.25": 0,
        "1.25-2": 1,
        ">2": 0,
    },  # fmt: skip
    "short_side": {"min": 28, "median": 64, "max": 64},
    "crop": {
        "mode": "center",
        "non_square": 2,
        "refused": 0,
        "mean_cut": 0.2917,
        "max_cut": 0.3333,
        "size": 64,
        "downscaled": 0,
        "upscaled": 4,
        "unscaled": 5,
    },  # fmt: skip
    "classes": {"count": 2, "images": {"a": 6, "b": 3}, "balance": 0.5},
}


def test_every_figure_of_a_mixed_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _tree(tmp_path / "tree")
    sheet = tmp_path / "sheet.png"
    assert main(["inspect", str(root), "--json", "--sheet", str(sheet)]) == 0
    got = json.loads(capsys.readouterr().out)
    assert {k: got[k] for k in EXPECTED} == EXPECTED
    assert got["data"] == str(root)
    bad = {Path(b["path"]).name: b["reason"] for b in got["bad"]}
    assert sorted(bad) == ["bomb.png", "empty.png", "notes.jpg", "truncated.jpg", "truncated.png"]
    assert bad["bomb.png"] == "too many pixels: possible decompression bomb"
    assert bad["notes.jpg"] == bad["empty.png"] == "not an image"
    assert all(b["path"].startswith(str(root / "b")) for b in got["bad"])
    a = str(root / "a")
    assert got["duplicates"] == {
        "exact_files": 1, "exact_groups": 1, "near_files": 1, "near_groups": 1, "max_distance": 6,
        "exact": [[f"{a}/a0.png", f"{a}/a_copy.png"]],
        "near": [[f"{a}/a1.png", f"{a}/a_small.png"]],
    }  # fmt: skip
    assert got["choice"] == {
        "channels": 3, "image_size": 64, "colour": round(8 / 9, 4),
        "line": "data: 9 images (RGB, L, P, RGBA), typically 64x64 -> 3 channels, 64 px",
    }  # fmt: skip
    cores, accelerator = machine()
    assert got["preset"]["name"] == ("best" if accelerator else "fast-cpu")
    assert (got["preset"]["cores"], got["preset"]["accelerator"]) == (cores, accelerator)
    # the packed size is what `prepare` then writes, to the byte
    done = prepare(DataSpec(str(root), image_size=64, channels=3), tmp_path / "tree-64.gfd")
    assert got["prepare"]["bytes"] == done.path.stat().st_size
    assert got["prepare"]["workers"] == 1 and got["prepare"]["seconds"] >= 0
    assert got["prepare"]["command"] == (
        f"ganforge prepare {root} --size 64 --channels 3 --out tree-64.gfd"
    )
    # the sheet: all 9 usable images, 8 a row, each decoded as training decodes it
    assert got["sheet"] == str(sheet)
    with Image.open(sheet) as img:
        assert (img.mode, img.size) == ("RGB", (8 * 66 + 2, 2 * 66 + 2))
        tiles = np.asarray(img)
    first = decode_image(root / "a" / "a0.png", 64, 3)  # [3, 64, 64]
    assert np.array_equal(tiles[2:66, 2:66].transpose(2, 0, 1), first)
    last = decode_image(root / "b" / "b2.png", 64, 3)  # the 9th: row 2, column 1
    assert np.array_equal(tiles[68:132, 2:66].transpose(2, 0, 1), last)


def test_console_text_names_what_it_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _tree(tmp_path / "tree")
    assert main(["inspect", str(root), "--no-sheet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{root}: folder, 14 files, 9 usable, 5 bad"
    assert "modes: RGB 6, L 1, P 1, RGBA 1" in lines
    assert f"  {root}/b/bomb.png: too many pixels: possible decompression bomb" in lines
    assert "classes: 2 (a 6, b 3); balance 0.50 (smallest / largest)" in lines
    assert "data: 9 images (RGB, L, P, RGBA), typically 64x64 -> 3 channels, 64 px" in lines
    assert lines[-1].startswith("inspected in ") and "wrote" not in lines[-1]
    assert not (tmp_path / "inspect.png").exists()


def test_flags_change_the_choice_and_the_crop(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    req = InspectRequest(str(root), channels=1, image_size=32, crop="none", sheet="")
    report = inspect(req)
    assert (report.choice["channels"], report.choice["image_size"]) == (1, 32)
    assert report.choice["line"].endswith("-> 1 channel (set), 32 px (set)")
    assert (report.crop["refused"], report.crop["downscaled"], report.crop["upscaled"]) == (2, 8, 1)


def test_parallel_equals_serial(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    write_jpegs(root / "c", 150, 20, 24)  # three chunks of files: both processes get some
    serial = inspect(InspectRequest(str(root), workers=1, sheet="")).to_dict()
    parallel = inspect(InspectRequest(str(root), workers=2, sheet="")).to_dict()
    for report in (serial, parallel):
        report.pop("seconds"), report.pop("prepare")
    assert serial == parallel and serial["images"] == 159


def test_a_prepared_file_and_a_named_dataset(tmp_path: Path) -> None:
    root = _tree(tmp_path / "tree")
    prepare(DataSpec(str(root), image_size=32, channels=3), tmp_path / "p.gfd")
    report = inspect(InspectRequest(str(tmp_path / "p.gfd"), sheet=str(tmp_path / "p.png")))
    assert (report.kind, report.files, report.images, report.bad) == ("prepared", 9, 9, [])
    assert report.modes == {"RGB": 9} and report.sizes == {"32x32": 9}
    assert (report.choice["channels"], report.choice["image_size"]) == (3, 32)  # as stored
    assert report.duplicates["exact_files"] == 1  # the byte copy is also a pixel copy
    assert report.classes == {"count": 2, "images": {"a": 6, "b": 3}, "balance": 0.5}
    sample = inspect(InspectRequest("mnist-sample", sheet=""))
    assert (sample.kind, sample.files, sample.images) == ("dataset", 10_000, 10_000)
    assert sample.modes == {"L": 10_000} and sample.sizes == {"28x28": 10_000}
    assert (sample.choice["channels"], sample.choice["image_size"]) == (1, 28)
    assert sample.classes is not None and sum(sample.classes["images"].values()) == 10_000


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no images found"),
        (lambda p: bad_files(p / "bad") and p / "bad", "none of the 5 image files"),
        (lambda p: (p / "x.txt").write_text("hi") and p / "x.txt", "is a file but not one"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message: str
) -> None:
    target = make(tmp_path)
    assert main(["inspect", str(target), "--no-sheet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganforge: error: ") and message in err[0]
