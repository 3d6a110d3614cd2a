"""Animations: GIFs from frames, and a run's progress animation from its saved grids."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganforge.animation import MAX_PROGRESS_FRAMES, progress_gif, write_animation
from ganforge.errors import UserError


def _grid(folder: Path, step: int, value: int) -> None:
    Image.fromarray(np.full((10, 20), value, dtype=np.uint8)).save(folder / f"step{step:07d}.png")


def _frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        out = []
        for i in range(gif.n_frames):
            gif.seek(i)
            out.append(np.asarray(gif.convert("L")))
        return out


def test_progress_gif_shows_the_grids_in_step_order_with_captions(tmp_path: Path) -> None:
    for step, value in ((1000, 30), (200, 10), (30, 5)):
        _grid(tmp_path, step, value)
    path = progress_gif(tmp_path)
    assert path == tmp_path / "progress.gif"
    frames = _frames(path)
    assert [int(f[0, 0]) for f in frames] == [5, 10, 30]  # step 30, 200, 1000
    assert frames[0].shape == (10 + 14, 20)  # a caption band below each grid
    assert frames[0][10:].max() > 200  # the caption is drawn in white on black


def test_long_runs_are_thinned_keeping_the_last_grid(tmp_path: Path) -> None:
    for step in range(MAX_PROGRESS_FRAMES + 30):
        _grid(tmp_path, step, step % 200)
    path = progress_gif(tmp_path, tmp_path / "p.gif")
    assert path is not None
    frames = _frames(path)
    assert len(frames) == MAX_PROGRESS_FRAMES
    assert int(frames[-1][0, 0]) == (MAX_PROGRESS_FRAMES + 29) % 200


def test_no_grids_no_animation(tmp_path: Path) -> None:
    assert progress_gif(tmp_path) is None
    assert progress_gif(tmp_path / "absent") is None


def test_training_ends_by_writing_the_progress_animation(tiny_run: Path) -> None:
    assert len(_frames(tiny_run / "samples" / "progress.gif")) == 3  # grids at steps 2, 4, 6


def test_write_animation_keeps_frames_and_refuses_other_formats(tmp_path: Path) -> None:
    frames = [np.full((4, 6, 3), v, dtype=np.uint8) for v in (0, 128, 255)]
    path = write_animation(frames, tmp_path / "a.gif", frame_ms=50)
    assert [int(f[0, 0]) for f in _frames(path)] == [0, 128, 255]
    with pytest.raises(UserError, match=r"\.gif or \.mp4"):
        write_animation(frames, tmp_path / "a.avi")


@pytest.mark.skipif(importlib.util.find_spec("imageio") is not None, reason="imageio present")
def test_mp4_without_a_writer_says_what_to_install(tmp_path: Path) -> None:
    frames = [np.zeros((4, 4), dtype=np.uint8)] * 2
    with pytest.raises(UserError, match="imageio"):
        write_animation(frames, tmp_path / "a.mp4")


def test_mp4_frames_are_enlarged_and_padded_for_video_codecs(tmp_path: Path) -> None:
    iio = pytest.importorskip("imageio.v3")
    pytest.importorskip("imageio_ffmpeg")
    frames = [np.full((28, 28), v, dtype=np.uint8) for v in (0, 255, 0)]
    video = iio.imread(write_animation(frames, tmp_path / "a.mp4"))
    assert video.shape == (3, 144, 144, 3)  # 28 x 5 = 140, padded to 9 x 16
    assert video[1, :140, :140].mean() > 200 and video[1, 140:].max() < 40
