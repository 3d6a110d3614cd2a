"""Search for the RGB `fast-cpu` recipe: quality per CPU-minute on a real colour folder.

Trains each candidate (changes on top of the 64-pixel colour DCGAN that `fast-cpu`
gave before it had an RGB recipe, quality.OLD_RGB: its preset name is cleared, so the
colour recipe the search chose does not replace the candidates' values) for the same
wall-clock minutes on ONE thread (pin the process to a core that nothing else uses,
e.g. ``taskset -c 0``), then scores
5,000 EMA samples against the training folder in a feature network trained on the
folder's classes (``ganforge featurenet train``): FID, precision/recall, and the KL
divergence of the predicted class histogram from the data's own.

    python benchmarks/emoji_data.py package --out emoji
    ganforge featurenet train --data emoji/train --out emoji-net.pt
    PYTHONPATH=src:benchmarks taskset -c 0 python benchmarks/rgb_search.py \\
        --data emoji/train --features emoji-net.pt --minutes 3 --out rgb-search

One thread for a fixed time measures quality per CPU-minute; a 2-core run of the
same recipe gets roughly 1.6-1.8x its steps in the same minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from quality import OLD_RGB, draw, ema_generator, score_rgb

from ganforge.config import load_preset
from ganforge.data import DataSpec, load_data
from ganforge.run import checkpoint as ckpt
from ganforge.run.folder import find_checkpoint
from ganforge.sampling import save_grid
from ganforge.training.loop import train

# round 1: one change at a time, 3 minutes each
ROUND1: dict[str, dict[str, Any]] = {
    "base (fast-cpu at 64 px, 3 channels)": {},
    "batch 32": {"batch_size": 32},
    "lr_d 1e-4": {"lr_d": 1e-4},
    "G 32 wide": {"g_features": 32},
    "G 8 / D 16": {"g_features": 8, "d_features": 16},
    "DiffAugment t,c,cutout, adaptive 0.6": {
        "augment": "translation,color,cutout",
        "augment_p": 0.0,
        "augment_target": 0.6,
    },  # fmt: skip
    "R1 0.05 every 16": {"r1_gamma": 0.05, "r1_every": 16},
    "lr 5e-4 G / 2e-4 D": {"lr_g": 5e-4},
}
# round 2: round 1's winners together (narrow nets, batch 32, a faster G), and what may pay
# only over longer runs on a few thousand images (R1, augmentation); 7 minutes each
NARROW_FAST = {"g_features": 8, "d_features": 16, "batch_size": 32, "lr_g": 5e-4}
ROUND2: dict[str, dict[str, Any]] = {
    "G 8 / D 16, batch 32, lr_g 5e-4": NARROW_FAST,
    "  + R1 0.05 every 16": {**NARROW_FAST, "r1_gamma": 0.05, "r1_every": 16},
    "  + DiffAugment t,c,cutout, adaptive 0.6": {
        **NARROW_FAST,
        "augment": "translation,color,cutout",
        "augment_p": 0.0,
        "augment_target": 0.6,
    },  # fmt: skip
}
# round 3: on top of the colour recipe round 2 chose (COLOUR), what costs little or no speed
# (G's width, Adam's betas, faster learning rates, the loss, R1's weight, EMA, z) and what
# may pay over a 2-core run's longer horizon; 8 minutes each, one thread, two candidates
# at a time on the two cores
COLOUR = {**NARROW_FAST, "r1_gamma": 0.05, "r1_every": 16}
ROUND3: dict[str, dict[str, Any]] = {
    "colour recipe": COLOUR,
    "G 16": {**COLOUR, "g_features": 16},
    "G 12": {**COLOUR, "g_features": 12},
    "betas 0, 0.99": {**COLOUR, "beta1": 0.0, "beta2": 0.99},
    "lr 1e-3 G / 4e-4 D": {**COLOUR, "lr_g": 1e-3, "lr_d": 4e-4},
    "hinge": {**COLOUR, "loss": "hinge"},
    "R1 0.2": {**COLOUR, "r1_gamma": 0.2},
    "EMA 0.9995": {**COLOUR, "ema_decay": 0.9995},
    "z 128": {**COLOUR, "z_dim": 128},
    "batch 16": {**COLOUR, "batch_size": 16},
}
# round 4: round 3's winners (twice the learning rates; R1 0.2) together and pushed
# further; 8 minutes each, one thread, two at a time
FAST_LR = {**COLOUR, "lr_g": 1e-3, "lr_d": 4e-4, "r1_gamma": 0.2}
ROUND4: dict[str, dict[str, Any]] = {
    "lr 1e-3 / 4e-4, R1 0.2": FAST_LR,
    "lr 2e-3 / 8e-4, R1 0.2": {**FAST_LR, "lr_g": 2e-3, "lr_d": 8e-4},
    "lr 1e-3 / 2e-4, R1 0.2": {**FAST_LR, "lr_d": 2e-4},
    "lr 1e-3 / 4e-4, R1 0.2, bf16": {**FAST_LR, "precision": "bf16"},
    "lr 1e-3 / 4e-4, R1 0.2, batch 16": {**FAST_LR, "batch_size": 16},
}
# round 5: the architecture, on top of the shipped colour recipe (SHIPPED: round 4's with
# R1 1.0 and precision auto); 8 minutes each, one thread, two at a time. Also tried by
# patching the model in a scratch script, not kept as options: G's last two ConvTs as
# nearest upsampling + 3x3 conv (no checkerboard, 0.9x the speed) and D's width capped
# at 64 channels
SHIPPED = {**FAST_LR, "r1_gamma": 1.0, "precision": "auto"}
ROUND5: dict[str, dict[str, Any]] = {
    "shipped colour recipe": SHIPPED,
    "minibatch-std 4 in D": {**SHIPPED, "minibatch_std": 4},
    "minibatch-std 4, G 12": {**SHIPPED, "minibatch_std": 4, "g_features": 12},
    "minibatch-std 4, R1 0.2": {**SHIPPED, "minibatch_std": 4, "r1_gamma": 0.2},
    "shipped, seed 1": {**SHIPPED, "seed": 1},
    "minibatch-std 4, seed 1": {**SHIPPED, "minibatch_std": 4, "seed": 1},
    "shipped, seed 2": {**SHIPPED, "seed": 2},
    "minibatch-std 4, seed 2": {**SHIPPED, "minibatch_std": 4, "seed": 2},
    "D 24": {**SHIPPED, "d_features": 24},
    "D 24, seed 1": {**SHIPPED, "d_features": 24, "seed": 1},
    "conditional": {**SHIPPED, "conditional": True},
    "conditional, seed 1": {**SHIPPED, "conditional": True, "seed": 1},
}
# round 6: adaptive DiffAugment on the shipped recipe, now that bf16 and two cores give
# 20,000 steps in 10 minutes (190 epochs of 3,400 images, where D's loss falls to 0.02);
# 8 minutes each, one thread, two at a time, beside round 5's shipped runs at seeds 0 and 1
AUGMENTED = {**SHIPPED, "augment": "translation,color,cutout", "augment_p": 0.0}
ROUND6: dict[str, dict[str, Any]] = {
    "DiffAugment adaptive 0.6, seed 0": {**AUGMENTED, "augment_target": 0.6},
    "DiffAugment adaptive 0.6, seed 1": {**AUGMENTED, "augment_target": 0.6, "seed": 1},
}
# round 7: with the EMA's own BatchNorm statistics (EMA.calibrate), a longer EMA horizon
# no longer normalises with statistics further from the average's; 8 minutes, one thread
ROUND7: dict[str, dict[str, Any]] = {
    "EMA 0.9995, seed 0": {**SHIPPED, "ema_decay": 0.9995},
    "EMA 0.9995, seed 1": {**SHIPPED, "ema_decay": 0.9995, "seed": 1},
}
# round 8: a 32x32 colour folder (the same emoji, resized by the data layer): does the
# recipe chosen at 64 px hold, or do wider nets pay at 32 px as they do for 28-px grey?
ROUND8: dict[str, dict[str, Any]] = {
    "32 px, shipped, seed 0": {**SHIPPED, "image_size": 32},
    "32 px, G 16 / D 32, seed 0": {**SHIPPED, "image_size": 32, "g_features": 16, "d_features": 32},
    "32 px, shipped, seed 1": {**SHIPPED, "image_size": 32, "seed": 1},
    "32 px, G 16 / D 32, seed 1": {
        **SHIPPED, "image_size": 32, "g_features": 16, "d_features": 32, "seed": 1,
    },
}  # fmt: skip
# round 9: around the 32-px choice (G 16 / D 32): the grey recipe's learning rates and R1,
# and wider still
WIDE32 = {**SHIPPED, "image_size": 32, "g_features": 16, "d_features": 32}
ROUND9: dict[str, dict[str, Any]] = {
    "32 px, G 16 / D 32, grey's lr 5e-4 / 2e-4 and R1 0.05": {
        **WIDE32, "lr_g": 5e-4, "lr_d": 2e-4, "r1_gamma": 0.05,
    },
    "32 px, G 24 / D 48": {**WIDE32, "g_features": 24, "d_features": 48},
    "32 px, G 24 / D 48, seed 1": {**WIDE32, "g_features": 24, "d_features": 48, "seed": 1},
    "32 px, G 24 / D 48, seed 2": {**WIDE32, "g_features": 24, "d_features": 48, "seed": 2},
    "32 px, G 32 / D 64, seed 0": {**WIDE32, "g_features": 32, "d_features": 64},
    "32 px, G 32 / D 64, seed 1": {**WIDE32, "g_features": 32, "d_features": 64, "seed": 1},
}  # fmt: skip
# round 10: top-k training (Sinha et al. 2020): G learns only from the fakes D rates most
# real, the kept fraction decaying by 0.99 per epoch down to a half; beside the shipped
# 64-px recipe at the same seeds, 8 minutes, one thread, two at a time
ROUND10: dict[str, dict[str, Any]] = {
    "64 px shipped, seed 0": SHIPPED,
    "64 px top-k 0.5, seed 0": {**SHIPPED, "top_k": 0.5},
    "64 px shipped, seed 1": {**SHIPPED, "seed": 1},
    "64 px top-k 0.5, seed 1": {**SHIPPED, "top_k": 0.5, "seed": 1},
}
# round 11: a stronger R1 (4.0 every 16 D steps against the shipped 1.0), beside round 10's
# shipped runs at the same seeds; 8 minutes, one thread, two at a time
ROUND11: dict[str, dict[str, Any]] = {
    "64 px R1 4.0, seed 0": {**SHIPPED, "r1_gamma": 4.0},
    "64 px R1 4.0, seed 1": {**SHIPPED, "r1_gamma": 4.0, "seed": 1},
}
ROUNDS = {
    1: ROUND1, 2: ROUND2, 3: ROUND3, 4: ROUND4, 5: ROUND5, 6: ROUND6, 7: ROUND7, 8: ROUND8,
    9: ROUND9, 10: ROUND10, 11: ROUND11,
}  # fmt: skip


def run_candidate(
    name: str, changes: dict[str, Any], data: str, features: str, minutes: float, out: Path,
    n: int,
) -> dict[str, Any]:  # fmt: skip
    """Train one candidate for ``minutes`` on one thread; score ``n`` EMA samples."""
    slug = "".join(c if c.isalnum() else "-" for c in name.strip()).strip("-")[:40]
    run = out / slug
    cfg = dataclasses.replace(
        load_preset("fast-cpu"), data=data, progress=False, minutes=minutes, steps=0,
        epochs=0, threads=1, **{**OLD_RGB, **changes},
    )  # fmt: skip
    if not (run / "checkpoints" / "last.pt").exists():
        train(cfg, out=run)
    position = ckpt.load(find_checkpoint(run))["position"]
    real, _ = load_data(DataSpec(data, image_size=cfg.image_size, channels=3))
    if cfg.conditional:  # classes in the folder's proportions, as an unconditional G draws
        G, counts = ema_generator(run), torch.bincount(torch.as_tensor(real.labels))
        labels = torch.multinomial(
            counts.float(), n, True, generator=torch.Generator().manual_seed(0)
        )
        fake = torch.cat([G.sample(len(c), i, c) for i, c in enumerate(labels.split(500))])
    else:
        fake, _ = draw(ema_generator(run), n)
    save_grid(fake[:64], out / f"{slug}.png", nrow=8)
    return {
        "name": name, "changes": changes, "steps": position["step"],
        "img_s": round(position["step"] * cfg.batch_size / position["elapsed"], 1),
        **score_rgb(fake, real, features),
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="the colour image folder (class sub-folders)")
    p.add_argument("--features", required=True, help="feature network file (NET.pt)")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--out", type=Path, default=Path("rgb-search"))
    p.add_argument("--round", type=int, choices=sorted(ROUNDS), default=1)
    p.add_argument("--only", nargs="*", help="substrings of candidate names to run")
    args = p.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    head = "| candidate | steps | img/s | FID | precision | recall | class KL |"
    print(head + "\n" + "| --- " * 7 + "|")
    for name, changes in ROUNDS[args.round].items():
        if args.only and not any(o in name for o in args.only):
            continue
        r = run_candidate(
            name, changes, args.data, args.features, args.minutes, args.out, args.samples
        )
        with open(args.out / "results.jsonl", "a") as fh:
            fh.write(json.dumps(r) + "\n")
        print(
            f"| {name.strip()} | {r['steps']:,} | {r['img_s']:.0f} | {r['fid']:.2f} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['class_kl']:.4f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
