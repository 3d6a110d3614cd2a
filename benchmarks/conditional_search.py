"""How a class-conditional ``fast-cpu`` should take its labels: the search behind the
conditional DCGAN's design (docs/BENCHMARKS.md, "Conditioning").

Each variant trains conditional ``fast-cpu`` for a fixed number of steps (steps, not
minutes, so a busy machine changes the time but not the result), then 5,000 EMA
samples are scored: class accuracy by the feature net, FID, precision and recall.
Variants replace G's and D's conditioning only; everything else is the preset.

G: ``concat`` (a learned class embedding concatenated to z), ``cbn`` (conditional
BatchNorm: a gain and bias per class, z the only input), ``cbn+concat`` (both).
D: ``proj`` (projection term only), ``input`` (one-hot label planes concatenated to
the image, no projection), ``input+proj`` (both). ``ganforge`` is the shipped model
(conditional BatchNorm in G and a learned per-class map added to each of G's feature
maps after its BatchNorm; a per-class bias on D's first feature map, which is what
label planes become inside a convolution, plus the projection);
``ganforge+mismatch`` adds ``mismatch = true`` (real images under a wrong label count
as fakes for D).

    PYTHONPATH=src python benchmarks/conditional_search.py --out cond-search
    PYTHONPATH=src python benchmarks/conditional_search.py --only ganforge --steps 500
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from quality import Entry, run_entry
from torch import Tensor, nn

from ganforge import models
from ganforge.config import TrainConfig
from ganforge.models.dcgan import DCGANDiscriminator, _base, _upsamplings
from ganforge.models.layers import ConditionalBatchNorm2d, check_labels

VARIANTS = {  # name: (G conditioning, D conditioning)
    "concat/proj": ("concat", "proj"),
    "cbn/proj": ("cbn", "proj"),
    "cbn/input": ("cbn", "input"),
    "concat/input+proj": ("concat", "input+proj"),
    "cbn/input+proj": ("cbn", "input+proj"),
    "cbn+concat/input": ("cbn+concat", "input"),
    "ganforge": ("", ""),
    "ganforge+mismatch": ("", ""),  # and D learns real images under wrong labels as fake
}


class VariantGenerator(nn.Module):
    """DCGAN G conditioned by a concatenated embedding, conditional BatchNorm, or both."""

    def __init__(self, cfg: TrainConfig, concat: bool, cbn: bool) -> None:
        super().__init__()
        k, self.concat = cfg.num_classes, concat
        self.z_dim, self.image_size, self.channels, self.num_classes = (
            cfg.z_dim, cfg.image_size, cfg.channels, k,
        )  # fmt: skip
        if concat:
            self.embed = nn.Embedding(k, cfg.z_dim)
        base, n_up = _base(cfg.image_size), _upsamplings(cfg.image_size)
        width = cfg.g_features * 2**n_up
        c_in = cfg.z_dim * (2 if concat else 1)
        self.convs = nn.ModuleList([nn.ConvTranspose2d(c_in, width, base, 1, 0, bias=False)])
        self.norms = nn.ModuleList([ConditionalBatchNorm2d(width, k if cbn else 0)])
        for _ in range(n_up - 1):
            self.convs.append(nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False))
            self.norms.append(ConditionalBatchNorm2d(width // 2, k if cbn else 0))
            width //= 2
        self.out = nn.ConvTranspose2d(width, cfg.channels, 4, 2, 1)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        labels = check_labels(labels, self.num_classes)
        if self.concat:
            z = torch.cat([z, self.embed(labels)], 1)
        h = z.view(z.shape[0], -1, 1, 1)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = torch.relu(norm(conv(h), labels))
        return torch.tanh(self.out(h))


class VariantDiscriminator(nn.Module):
    """DCGAN D with one-hot label planes on its input, a projection term, or both."""

    def __init__(self, cfg: TrainConfig, planes: bool, projection: bool) -> None:
        super().__init__()
        k, self.planes, self.projection = cfg.num_classes, planes, projection
        self.num_classes, self.image_size = k, cfg.image_size
        channels = cfg.channels + (k if planes else 0)
        self.d = DCGANDiscriminator(
            cfg.d_features, cfg.image_size, channels, cfg.leaky_slope, k if projection else 0
        )
        if projection:  # the plain projection D: its first layer's class bias stays 0
            self.d.class_bias.weight.requires_grad_(False)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        labels = check_labels(labels, self.num_classes)
        if self.planes:
            onehot = F.one_hot(labels, self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, onehot.expand(-1, -1, *x.shape[2:])], 1)
        return self.d(x, labels) if self.projection else self.d(x)


def install(variant: str) -> None:
    """Make ``dcgan`` build the variant's networks (training and sampling both build them)."""
    g_kind, d_kind = VARIANTS[variant]
    if not g_kind:
        models.MODELS["dcgan"] = _shipped
        return

    def build(cfg: TrainConfig) -> tuple[nn.Module, nn.Module]:
        g = VariantGenerator(cfg, "concat" in g_kind, "cbn" in g_kind)
        d = VariantDiscriminator(cfg, "input" in d_kind, "proj" in d_kind)
        return g, d

    models.MODELS["dcgan"] = build


_shipped = models.MODELS["dcgan"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("cond-search"))
    parser.add_argument("--data", default="mnist-sample")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--only", nargs="*", choices=list(VARIANTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in args.only or VARIANTS:
        install(variant)
        name = variant.replace("/", "_").replace("+", "-")
        changes = {"conditional": True, "minutes": 0, "steps": args.steps}
        changes["mismatch"] = variant.endswith("+mismatch")
        entry = Entry(name, "fast-cpu", data=args.data, timed=False, changes=changes)
        started = time.perf_counter()
        r = run_entry(entry, args.out, 0, args.samples, True)
        row = {"variant": variant, "wall_s": round(time.perf_counter() - started)}
        row |= {k: r[k] for k in ("steps", "fid", "precision", "recall", "class_accuracy")}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
