"""Every image mode, format and orientation decodes to the right pixels."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.data.decode import BadImage, NotSquare, decode_image, parse_background
from tests.data.fakes import bomb_png

WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def _decode(img: Image.Image, path: Path, channels: int = 3, bg=WHITE, **save) -> np.ndarray:
    img.save(path, **save)
    return decode_image(path, 8, channels, "center", bg)


def test_grey_and_rgb(tmp_path: Path) -> None:
    grey = _decode(Image.new("L", (8, 8), 77), tmp_path / "l.png")
    assert grey.shape == (3, 8, 8) and (grey == 77).all()
    rgb = Image.new("RGB", (8, 8), (10, 20, 30))
    assert (_decode(rgb, tmp_path / "rgb.png", 1) == 18).all()  # ITU-R 601-2 luma of (10, 20, 30)
    assert _decode(rgb, tmp_path / "rgb.png").reshape(3, -1)[:, 0].tolist() == [10, 20, 30]


@pytest.mark.parametrize(
    ("background", "expected"),
    [(WHITE, [255, 255, 255]), (BLACK, [0, 0, 0]), ((10, 20, 30), [10, 20, 30])],
)
def test_rgba_transparent_pixels_take_the_background(tmp_path, background, expected) -> None:
    arr = np.zeros((8, 8, 4), np.uint8)
    arr[..., 0] = 200  # red everywhere; alpha 0 in the top half, 255 in the bottom half
    arr[4:, :, 3] = 255
    out = _decode(Image.fromarray(arr, "RGBA"), tmp_path / "a.png", bg=background)
    assert out[:, 0, 0].tolist() == expected
    assert out[:, 7, 0].tolist() == [200, 0, 0]


def test_half_alpha_blends_with_the_background(tmp_path: Path) -> None:
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    out = _decode(img, tmp_path / "half.png", bg=WHITE)
    assert abs(int(out[0, 0, 0]) - 127) <= 1  # 0 * 128/255 + 255 * 127/255


def test_la_on_white_and_black(tmp_path: Path) -> None:
    img = Image.new("LA", (8, 8), (100, 0))
    assert (_decode(img, tmp_path / "la.png", 1, WHITE) == 255).all()
    assert (_decode(img, tmp_path / "la.png", 1, BLACK) == 0).all()
    assert (_decode(Image.new("LA", (8, 8), (100, 255)), tmp_path / "la2.png", 1) == 100).all()


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (8, 8), 1)
    img.putpalette([0, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * (3 * 253))
    img.paste(2, (0, 4, 8, 8))  # bottom half green, top half blue
    out = _decode(img, tmp_path / "p.png")
    assert out[:, 0, 0].tolist() == [0, 0, 255] and out[:, 7, 0].tolist() == [0, 255, 0]
    out = _decode(img, tmp_path / "pt.png", bg=BLACK, transparency=1)  # blue is see-through
    assert out[:, 0, 0].tolist() == [0, 0, 0] and out[:, 7, 0].tolist() == [0, 255, 0]


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
def test_16_bit_grey_scales_65535_to_255(tmp_path: Path, suffix: str) -> None:
    arr = np.zeros((8, 8), np.uint16)
    arr[:, 2:4], arr[:, 4:] = 32768, 65535
    img = Image.fromarray(arr)
    assert img.mode == "I;16"
    out = _decode(img, tmp_path / f"g16{suffix}", 1)[0]
    assert out[0, :2].tolist() == [0, 0]
    assert out[0, 2:4].tolist() == [128, 128]
    assert out[0, 4:].tolist() == [255] * 4


def test_cmyk_to_rgb(tmp_path: Path) -> None:
    img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # no cyan, full magenta + yellow: red
    assert _decode(img, tmp_path / "c.tiff")[:, 0, 0].tolist() == [255, 0, 0]
    jpeg = _decode(img, tmp_path / "c.jpg", quality=95)[:, 0, 0].astype(int)
    assert jpeg[0] > 230 and jpeg[1] < 25 and jpeg[2] < 25


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    arr = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 high: left half red, right half blue
    arr[:, :20, 0] = 255
    arr[:, 20:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: 20 wide, 40 high
    path = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(path, quality=95, exif=exif)
    out = decode_image(path, 16, 3).astype(int)
    # upright: red on top, blue below (without EXIF: red left, blue right)
    assert out[0, 0, 0] > 200 and out[2, 0, 0] < 50
    assert out[2, 15, 0] > 200 and out[0, 15, 0] < 50
    assert out[0, 0, 15] > 200  # top right is red too


def test_center_crop_keeps_the_middle(tmp_path: Path) -> None:
    arr = np.zeros((10, 30), np.uint8)  # 30 wide: columns 0-9 black, 10-19 grey, 20-29 white
    arr[:, 10:20], arr[:, 20:] = 128, 255
    Image.fromarray(arr).save(tmp_path / "wide.png")
    assert (decode_image(tmp_path / "wide.png", 10, 1) == 128).all()
    with pytest.raises(NotSquare):
        decode_image(tmp_path / "wide.png", 10, 1, crop="none")


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"])
def test_lossless_formats_round_trip(tmp_path: Path, suffix: str) -> None:
    arr = np.zeros((8, 8, 3), np.uint8)
    arr[:4, :, 0], arr[4:, :, 1] = 255, 255  # red over green: exact even in a GIF's palette
    save = {"lossless": True} if suffix == ".webp" else {}
    out = _decode(Image.fromarray(arr), tmp_path / f"x{suffix}", **save)
    assert np.array_equal(out, arr.transpose(2, 0, 1))


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg"])
def test_jpeg_decodes_close(tmp_path: Path, suffix: str) -> None:
    img = Image.new("RGB", (8, 8), (180, 90, 30))
    out = _decode(img, tmp_path / f"x{suffix}", quality=95).astype(int)
    assert np.abs(out - np.array([180, 90, 30])[:, None, None]).max() <= 3


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    with Image.open(path) as check:
        assert check.n_frames == 3
    assert decode_image(path, 8, 3)[:, 0, 0].tolist() == [255, 0, 0]


def test_resize_to_the_asked_size(tmp_path: Path) -> None:
    Image.new("RGB", (178, 218), (1, 2, 3)).save(tmp_path / "big.png")
    out = decode_image(tmp_path / "big.png", 64, 3)
    assert out.shape == (3, 64, 64) and out[:, 10, 10].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("empty.png", b"", "not an image"),
        ("text.jpg", b"hello", "not an image"),
        ("bomb.png", bomb_png(30_000, 30_000), "decompression bomb"),
        ("warn-bomb.png", bomb_png(10_000, 10_000), "decompression bomb"),  # the warning band
    ],
)
def test_unusable_files_raise_bad_image(tmp_path: Path, name: str, content: bytes, why: str):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(BadImage, match=why):
        decode_image(tmp_path / name, 8, 3)


def test_truncated_file_is_bad(tmp_path: Path) -> None:
    Image.fromarray(np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)).save(
        tmp_path / "full.png"
    )
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImage):
        decode_image(tmp_path / "cut.png", 8, 1)


def test_parse_background() -> None:
    assert parse_background("white") == (255, 255, 255)
    assert parse_background(" Black ") == (0, 0, 0)
    assert parse_background("10, 20,30") == (10, 20, 30)
    for bad in ("purple", "1,2", "0,0,256", "a,b,c"):
        with pytest.raises(ValueError, match="background must be"):
            parse_background(bad)


def test_decoder_module_does_not_import_torch() -> None:
    """Decoder processes import ganforge.data.decode alone: it must not pull torch in."""
    code = "import sys, ganforge.data.decode; print(sorted(m for m in sys.modules if 'torch' in m))"
    src = str(Path(__file__).parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": src}
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
