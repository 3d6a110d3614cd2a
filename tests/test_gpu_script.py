"""benchmarks/gpu.sh: its dry run takes every path of the GPU benchmark on the CPU."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "benchmarks" / "gpu.py")
assert _spec is not None and _spec.loader is not None
gpu = importlib.util.module_from_spec(_spec)  # benchmarks/gpu.py: the script's driver
sys.modules["gpu_bench"] = gpu  # its dataclasses look their module up
_spec.loader.exec_module(gpu)


def test_the_peak_table_knows_the_lent_chips() -> None:
    assert gpu.bf16_peak("NVIDIA H200") == 989.0
    assert gpu.bf16_peak("NVIDIA H100 80GB HBM3") == 989.0
    assert gpu.bf16_peak("NVIDIA H100 PCIe") == 756.0
    assert gpu.bf16_peak("NVIDIA A100-SXM4-80GB") == 312.0
    assert gpu.bf16_peak("Intel(R) Xeon(R) Processor, 1 cores") is None


def test_dry_run_exits_0_and_names_every_configuration(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--dry-run", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for group in gpu.plan():
        assert f"== config: {group.name}" in out, group.name
    for check in ("seed-dcgan on the MNIST sample", "fast-cpu on colour shapes, 64 px"):
        assert f"== config: training check, {check}" in out
    # the paths taken: the reference loop beside seed-dcgan, CUDA graphs' CPU fallback,
    # a compiled step, and fp32 losses compared with the CPU's
    assert "ratio ganforge / reference:" in out
    assert "--cuda-graphs: CUDA graphs need a CUDA GPU" in proc.stderr
    assert "compile + cuda-graphs" in out
    assert "cpu fp32 vs cpu fp32, first 3 steps: largest loss difference" in out
    assert "== summary:" in out and "0 failed group(s); losses agree: True" in out
    assert (tmp_path / "colour-shapes").is_dir()
