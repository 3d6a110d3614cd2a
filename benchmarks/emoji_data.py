"""Real RGB data for the benchmarks: Twemoji 64x64 RGBA PNGs sorted into category folders.

npm's ``emoji-datasource-twitter@16.0.0`` (3,786 Twemoji by Twitter/X, CC-BY 4.0) holds the
images under ``package/img/twitter/64/`` and each image's category in ``package/emoji.json``.
This script arranges them as an image folder with one sub-folder per category (the labels a
feature network learns), holding out a fixed 10% of every category for the memorisation
measure:

    npm pack emoji-datasource-twitter@16.0.0 && tar xzf emoji-datasource-twitter-16.0.0.tgz
    python benchmarks/emoji_data.py package --out emoji     # -> emoji/train, emoji/holdout

Benchmarks only: no test needs this data.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

HOLDOUT = 0.1
SKIP = {"Component"}  # the skin-tone swatches: five flat squares, not a category of pictures


def _categories(package: Path) -> dict[str, str]:
    """Image file name -> category, skin-tone variants under their emoji's category."""
    out: dict[str, str] = {}
    for emoji in json.loads((package / "emoji.json").read_text()):
        if emoji["category"] in SKIP:
            continue
        out[emoji["image"]] = emoji["category"]
        for variant in (emoji.get("skin_variations") or {}).values():
            out[variant["image"]] = emoji["category"]
    return out


def arrange(package: Path, out: Path, seed: int = 0) -> dict[str, int]:
    """Copy the 64-pixel images into ``out/{train,holdout}/CATEGORY/``; counts per split."""
    images = package / "img" / "twitter" / "64"
    by_cat: dict[str, list[str]] = {}
    for name, cat in sorted(_categories(package).items()):
        if (images / name).is_file():
            by_cat.setdefault(cat, []).append(name)
    rng = random.Random(seed)
    counts = {"train": 0, "holdout": 0}
    for cat, names in sorted(by_cat.items()):
        rng.shuffle(names)
        n_hold = round(len(names) * HOLDOUT)
        folder = cat.replace(" & ", "-and-").replace(" ", "-").lower()
        for i, name in enumerate(names):
            split = "holdout" if i < n_hold else "train"
            dest = out / split / folder
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(images / name, dest / name)
            counts[split] += 1
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("package", type=Path, help="the unpacked npm package folder")
    p.add_argument("--out", type=Path, default=Path("emoji"))
    args = p.parse_args()
    counts = arrange(args.package, args.out)
    print(f"wrote {counts['train']} training and {counts['holdout']} held-out images to {args.out}")


if __name__ == "__main__":
    main()
