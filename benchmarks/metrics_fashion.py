"""Fashion-MNIST metrics with fashion-net: train vs test, a trained run vs test, and the time taken.

    PYTHONPATH=src python benchmarks/metrics_fashion.py [RUN_DIR ...]

Each row is one `ganforge eval` process scoring 10,000 images against the 10,000
test images (fid,kid,pr,dc), timed end to end (start-up, sampling, features,
metrics) with an empty real-feature cache ("cold") and again with it ("warm").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ganforge.data import default_root
from ganforge.data.named import load_named

N = 10_000


def _eval(source: str, cache: Path, out: Path) -> tuple[dict, float]:
    env = {**os.environ, "GANFORGE_CACHE": str(cache)}
    cmd = [
        sys.executable, "-m", "ganforge", "eval", source, "--data", "fashion-mnist",
        "--split", "test", "--features", "fashion-net", "--samples", str(N),
        "--metrics", "fid,kid,pr,dc", "--no-progress", "--out", str(out),
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text()), time.perf_counter() - start


def main(runs: list[str]) -> None:
    """Print one Markdown table row per scored source."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train = load_named("fashion-mnist", default_root(), "train").images
        pick = np.random.default_rng(0).choice(len(train), N, replace=False)
        np.savez(work / "train10k.npz", images=train[pick])
        print("| fakes | FID | KID | precision | recall | density | coverage | cold s | warm s |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for label, source in [("train split (10k)", str(work / "train10k.npz"))] + [
            (f"run {r}", r) for r in runs
        ]:
            cache = work / f"cache-{abs(hash(source))}"
            report, cold = _eval(source, cache, work / "out.json")
            _, warm = _eval(source, cache, work / "out.json")
            m = report["metrics"]
            print(
                f"| {label} | {m['fid']:.3f} | {m['kid']:.5f} | {m['precision']:.3f} | "
                f"{m['recall']:.3f} | {m['density']:.3f} | {m['coverage']:.3f} | "
                f"{cold:.1f} | {warm:.1f} |",
                flush=True,
            )
        print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main(sys.argv[1:])
