"""Quality benchmark (issue 6): how good are the images each preset buys on this machine?

Trains, one after another, on Fashion-MNIST (the Debian package's files):
``seed-simple`` for its full 50 epochs, ``seed-dcgan`` and ``fast-cpu`` for 10
minutes each; then draws 10,000 samples from each (the EMA generator where the
run has one) and scores them with the fashion-net features: FID, KID,
precision/recall and the KL divergence of the predicted class histogram from
uniform. Then trains class-conditional ``fast-cpu`` for 10 minutes on MNIST and
on Fashion-MNIST and reports how often a sample asked for class k is classified
as k. Writes OUT/results.json, OUT/results.md (the table for
docs/BENCHMARKS.md), a grid PNG per run and the run folders.

    PYTHONPATH=src python benchmarks/quality.py --out bench-quality
    PYTHONPATH=src python benchmarks/quality.py --out q --only fast-cpu --minutes 2  # a try-out

Colour rows (issue 13): with ``--rgb DIR`` (train/ and holdout/ of a labelled colour
folder, from benchmarks/emoji_data.py) and ``--rgb-features NET.pt`` (``ganforge
featurenet train --data DIR/train``), the tutorial's CelebA recipe for its 5 epochs,
``fast-cpu`` as called before it had a colour recipe, ``fast-cpu`` with no flag, and
``best`` at 64 px, scored with 5,000 samples (``--samples 5000``) in that net's space,
with the class KL against the folder's own histogram and the memorisation ratios:

    PYTHONPATH=src python benchmarks/quality.py --out q-rgb --samples 5000 --rgb emoji \
        --rgb-features emoji-net.pt --only rgb-fast-cpu-before rgb-fast-cpu rgb-best rgb-seed-dcgan

Issue 6's goals for ``fast-cpu`` in 10 minutes: FID at most a quarter of
``seed-simple``'s after its 50 epochs, recall at least 0.6, class KL at most
0.05, conditional class accuracy at least 0.9.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganforge.config import TrainConfig, from_dict, load_preset
from ganforge.data import DataSpec, ImageData, load_data
from ganforge.run import checkpoint as ckpt
from ganforge.run.folder import find_checkpoint
from ganforge.sampling import Generator, load_generator, save_grid
from ganforge.training.loop import train

FEATURES = {"fashion-mnist": "fashion-net", "mnist": "mnist-net", "mnist-sample": "mnist-net"}


@dataclass
class Entry:
    """One benchmarked run: a preset, its data, and what changes from the preset."""

    name: str
    preset: str
    data: str = "fashion-mnist"
    changes: dict[str, Any] = field(default_factory=dict)
    timed: bool = True  # trains for --minutes; False: the preset's own full schedule
    holdout: str = ""  # a colour folder's held-out images: scored with the folder's own net


# what `fast-cpu --channels 3 --image-size 64` trained before fast-cpu had a colour recipe
# (preset "" keeps today's recipe from replacing these values)
OLD_RGB: dict[str, Any] = {
    "preset": "", "model": "dcgan", "channels": 3, "image_size": 64, "z_dim": 64,
    "g_features": 16, "d_features": 32, "bn_init": "paper", "loss": "bce", "lr_g": 2e-4,
    "lr_d": 2e-4, "beta1": 0.5, "beta2": 0.999, "batch_size": 64, "ema_decay": 0.999,
    "ema_rampup": 10.0, "augment": "", "r1_gamma": 0.0,
}  # fmt: skip


def entries(mnist: str, rgb: Path | None = None) -> list[Entry]:
    """The runs of the benchmark; with ``rgb`` (a folder holding train/ and holdout/,
    from benchmarks/emoji_data.py) also the colour runs."""
    cond = {"conditional": True}
    runs = [
        Entry("seed-simple", "seed-simple", timed=False),
        Entry("seed-dcgan", "seed-dcgan"),
        Entry("fast-cpu", "fast-cpu"),
        Entry("fast-cpu-cond-fashion", "fast-cpu", changes=cond),
        Entry("fast-cpu-cond-mnist", "fast-cpu", data=mnist, changes=cond),
    ]
    if rgb is not None:
        data, held = str(rgb / "train"), str(rgb / "holdout")
        runs += [
            # the tutorial's CelebA recipe: CHANNELS_IMG = 3, its 5 epochs of batch 128
            Entry("rgb-seed-dcgan", "seed-dcgan", data, {"channels": 3}, False, held),
            Entry("rgb-fast-cpu-before", "fast-cpu", data, OLD_RGB, holdout=held),
            Entry("rgb-fast-cpu", "fast-cpu", data, holdout=held),  # the newcomer's command
            Entry("rgb-best", "best", data, {"image_size": 64}, holdout=held),
        ]
    return runs


# ---- the metrics interface: the only place that knows ganforge.metrics' API ----------


def score(fake: Tensor, real: ImageData, data: str) -> dict[str, float]:
    """FID, KID, precision/recall and class KL of uint8 ``fake`` against the real images."""
    from ganforge.metrics import RealImages, evaluate

    scores = evaluate(
        fake, RealImages(real.images, data, "train"), ("fid", "kid", "pr", "classes"),
        features=FEATURES[data], n=len(fake), progress=True,
    )  # fmt: skip
    return dict(scores.values)


def score_rgb(
    fake: Tensor, real: ImageData, features: str, memorised: str = ""
) -> dict[str, float]:
    """FID, KID, precision/recall of uint8 ``fake`` in a feature network trained on the
    folder's classes (NET.pt), and the KL of the fakes' predicted class histogram from
    the real images' (the folder's classes are far from balanced). With ``memorised`` (a
    folder of held-out images) also the memorisation ratios, in pixels and features."""
    from ganforge.metrics import RealImages, evaluate, get_extractor
    from ganforge.metrics.class_coverage import class_histogram, class_kl

    scores = evaluate(
        fake, RealImages(real.images, real.source, "train"), ("fid", "kid", "pr"),
        features=features, n=len(fake), progress=False,
    )  # fmt: skip
    net = get_extractor(features)
    fake_logits = torch.cat([net.logits(b) for b in fake.split(1000)]).numpy()
    real_logits = torch.cat([net.logits(b) for b in torch.from_numpy(real.images).split(1000)])
    reference = class_histogram(real_logits.numpy())
    values = {**scores.values, "class_kl": class_kl(fake_logits, reference)}
    if memorised:
        from ganforge.metrics.memorisation import memorisation_report

        shape = real.images.shape[1:]
        held, _ = load_data(DataSpec(memorised, image_size=shape[-1], channels=shape[0]))
        report = memorisation_report(real.images, held.images, fake.numpy(), net)
        values["memo_pixels"] = report["pixels"].ratio
        values["memo_features"] = report[net.name].ratio
    return values


def class_accuracy(fake: Tensor, labels: Tensor, data: str) -> float:
    """How often the feature net classifies a sample asked for class k as k."""
    from ganforge.metrics import get_extractor

    net = get_extractor(FEATURES[data])
    predicted = torch.cat([net.logits(b).argmax(1) for b in fake.split(500)])
    return float((predicted == labels.cpu()).float().mean())


# ---- sampling --------------------------------------------------------------------------


def ema_generator(run: Path) -> Generator:
    """The run's generator, with the EMA weights when the checkpoint has them."""
    G = load_generator(run)
    state = ckpt.load(find_checkpoint(run))
    if "G_ema" in state:
        G.net.load_state_dict(state["G_ema"])
    return G


def draw(G: Generator, n: int, seed: int = 0) -> tuple[Tensor, Tensor | None]:
    """``n`` uint8 samples and, for a conditional G, the balanced labels asked for."""
    k = G.cfg.num_classes if G.cfg.conditional else 0
    labels = torch.arange(n) % k if k else None
    images = [
        G.sample(len(chunk), seed=seed + i, labels=None if labels is None else chunk)
        for i, chunk in enumerate((labels if labels is not None else torch.arange(n)).split(500))
    ]
    return torch.cat(images), labels


# ---- the benchmark ---------------------------------------------------------------------


def run_entry(
    entry: Entry, out: Path, minutes: float, n: int, train_it: bool, features: str = ""
) -> dict[str, Any]:
    """Train (unless ``train_it`` is False and the run exists), sample, score one entry."""
    run = out / entry.name
    cfg = load_preset(entry.preset)
    budget = {"minutes": minutes, "epochs": 0, "steps": 0} if entry.timed else {}
    cfg = dataclasses.replace(cfg, data=entry.data, progress=False, **budget, **entry.changes)
    if train_it and not (run / "checkpoints" / "last.pt").exists():  # a finished run is kept
        train(cfg, out=run)
    state = ckpt.load(find_checkpoint(run))
    position = state["position"]
    cfg = from_dict(state["config"])  # as trained: the data's shape, the preset's recipe
    G = ema_generator(run)
    fake, labels = draw(G, n)
    grid = fake[:100] if labels is not None else fake[:64]
    save_grid(grid, out / f"{entry.name}.png", nrow=10 if labels is not None else 8)
    real, _ = load_data(DataSpec(entry.data, image_size=cfg.image_size, channels=cfg.channels))
    scores = (
        score_rgb(fake, real, features, memorised=entry.holdout)
        if entry.holdout
        else score(fake, real, entry.data)
    )
    result: dict[str, Any] = {
        "name": entry.name, "preset": entry.preset, "data": entry.data,
        "changes": entry.changes, "train_seconds": round(position["elapsed"], 1),
        "steps": position["step"], "epochs": round(position["step"] / _batches(cfg, real), 2),
        "ema": "G_ema" in state, "channels": cfg.channels, "image_size": cfg.image_size,
        **scores,
    }  # fmt: skip
    if labels is not None:
        result["class_accuracy"] = class_accuracy(fake, labels, entry.data)
    return result


def _batches(cfg: TrainConfig, data: ImageData) -> int:
    full, rest = divmod(len(data), cfg.batch_size)
    return full + (rest > 0 and not cfg.drop_last)


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    head = "| run | data | budget | steps | epochs | FID | KID | precision | recall | class KL "
    head += "| class acc. | memorisation (pixels / features) |\n|" + " --- |" * 12
    rows = []
    for r in results:
        acc = f"{r['class_accuracy']:.3f}" if "class_accuracy" in r else ""
        memo = f"{r['memo_pixels']:.2f} / {r['memo_features']:.2f}" if "memo_pixels" in r else ""
        rows.append(
            f"| {r['name']} | {Path(r['data']).name} | {r['train_seconds'] / 60:.1f} min "
            f"| {r['steps']:,} | {r['epochs']} | {r['fid']:.2f} | {r['kid']:.4f} "
            f"| {r['precision']:.3f} | {r['recall']:.3f} | {r['class_kl']:.4f} | {acc} | {memo} |"
        )
    return "\n".join([head, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-quality"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument(
        "--mnist",
        default="mnist-sample",
        help="MNIST data for the conditional run (mnist if on disk)",
    )
    parser.add_argument(
        "--rgb", type=Path, help="a colour folder with train/ and holdout/ (emoji_data.py)"
    )
    parser.add_argument("--rgb-features", default="", help="its feature network (NET.pt)")
    parser.add_argument("--only", nargs="*", help="names of the runs to do (default: all)")
    parser.add_argument("--no-train", action="store_true", help="score the runs already in OUT")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    if args.rgb and not args.rgb_features:
        parser.error("--rgb needs --rgb-features NET.pt (ganforge featurenet train --data DIR)")
    chosen = entries(args.mnist, args.rgb)
    if args.only:  # in the order asked for
        chosen = sorted(
            (e for e in chosen if e.name in args.only), key=lambda e: args.only.index(e.name)
        )
    for entry in chosen:
        print(f"== {entry.name}", flush=True)
        results.append(
            run_entry(
                entry, args.out, args.minutes, args.samples, not args.no_train, args.rgb_features
            )
        )
        print(json.dumps(results[-1]), flush=True)
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    (args.out / "results.json").write_text(json.dumps({"machine": machine, "runs": results}))
    (args.out / "results.md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
