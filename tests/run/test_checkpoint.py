"""Checkpoints: atomic writes, rotation, refusal of unsafe or foreign files, RNG round trip."""

from __future__ import annotations

import errno
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from ganforge.errors import CheckpointError
from ganforge.run import checkpoint as ckpt


def _state(value: float) -> dict:
    return {"format": ckpt.FORMAT, "version": ckpt.VERSION, "w": torch.full((4,), value)}


class _Payload:
    def __reduce__(self):  # runs `open(marker, "w")` when unpickled
        return (open, (str(Path.cwd() / "payload-ran"), "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT, "version": 1, "x": _Payload()}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        ckpt.load(path)
    assert not (tmp_path / "payload-ran").exists()
    plain = tmp_path / "plain.pkl"  # a bare pickle file, not a torch zip
    plain.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(CheckpointError):
        ckpt.load(plain)
    assert not (tmp_path / "payload-ran").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"is damaged \(it is empty"),
        (b"hello, I am text", "not a ganforge checkpoint"),
    ],
)
def test_damaged_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        ckpt.load(path)


def test_foreign_and_too_new_checkpoints(tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a ganforge checkpoint"):
        ckpt.load(tmp_path / "other.pt")
    torch.save({**_state(0), "version": ckpt.VERSION + 1}, tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="newer than this ganforge reads"):
        ckpt.load(tmp_path / "new.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        ckpt.load(tmp_path / "missing.pt")


def test_full_disk_during_save_keeps_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    ckpt.save_atomic(_state(1.0), path)

    def full_disk(obj: object, fh, *args: object, **kwargs: object) -> None:
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        ckpt.save_atomic(_state(2.0), path)
    monkeypatch.undo()
    assert torch.equal(ckpt.load(path)["w"], torch.full((4,), 1.0))
    assert list(path.parent.iterdir()) == [path]  # the temp file is gone too


def test_rotation_keeps_last_n_and_last_pt(tmp_path: Path) -> None:
    for step in range(1, 6):
        ckpt.save_rotating(_state(step), tmp_path, step, keep_last=2)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == [
        "last.pt", "step0000004.pt", "step0000005.pt",
    ]  # fmt: skip
    assert torch.equal(ckpt.load(tmp_path / "last.pt")["w"], torch.full((4,), 5.0))


def test_rng_state_round_trip() -> None:
    state = ckpt.rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    ckpt.set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_a_changed_value_or_a_missing_checksum_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    ckpt.save_atomic(_state(1.0), path)
    raw = torch.load(path, weights_only=True)
    assert raw["checksum"] == ckpt.checksum({k: v for k, v in raw.items() if k != "checksum"})
    torch.save({**raw, "w": torch.full((4,), 1.5)}, path)  # a value changed, checksum kept
    with pytest.raises(ckpt.DamagedCheckpoint, match="do not match their checksum"):
        ckpt.load(path)
    torch.save({k: v for k, v in raw.items() if k != "checksum"}, path)
    with pytest.raises(ckpt.DamagedCheckpoint, match="it has no checksum"):
        ckpt.load(path)


def test_version_1_is_migrated_and_needs_no_checksum(tmp_path: Path) -> None:
    torch.save({**_state(2.0), "version": 1}, tmp_path / "v1.pt")
    state = ckpt.load(tmp_path / "v1.pt")
    assert state["version"] == ckpt.VERSION
    assert (state["device"], state["world_size"], state["data"]) == ("", 0, None)
    assert torch.equal(state["w"], torch.full((4,), 2.0))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_a_torchscript_file_is_named_and_never_run(tmp_path: Path) -> None:
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(tmp_path / "ts.pt"))
    with pytest.raises(CheckpointError, match="is a TorchScript file"):
        ckpt.load(tmp_path / "ts.pt")


def test_optimiser_state_keeps_this_device_s_implementation_and_layout() -> None:
    saved_conv = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    saved_opt = torch.optim.Adam(saved_conv.parameters(), fused=True)
    saved_conv(torch.randn(2, 3, 8, 8)).sum().backward()
    saved_opt.step()
    state = saved_opt.state_dict()
    state["param_groups"][0]["capturable"] = True  # as with CUDA graphs on a GPU
    conv = torch.nn.Conv2d(3, 4, 3)  # contiguous here
    opt = torch.optim.Adam(conv.parameters(), foreach=False)
    ckpt.load_optimizer(opt, state)
    group = opt.param_groups[0]
    assert (group["fused"], group["foreach"], group["capturable"]) == (None, False, False)
    moments = opt.state[conv.weight]
    assert moments["exp_avg"].stride() == conv.weight.stride()
    assert torch.equal(moments["exp_avg"], state["state"][0]["exp_avg"])
    conv(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()  # trains on
