"""The ``ganforge`` command line: argument parsing only, over the Python API."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ganforge import config as cfgmod
from ganforge.errors import UserError

_BUDGET = ("epochs", "steps", "minutes")


def _add_train(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a GAN",
        description="Train a GAN. Settings resolve as: preset < --config file < flags < --set.",
    )
    p.add_argument("--preset", help=f"start from a preset ({', '.join(cfgmod.preset_names())})")
    p.add_argument("--config", metavar="FILE.toml", help="a TOML file of config keys")
    p.add_argument("--data", help="dataset name (mnist, mnist-sample, fashion-mnist) or image folder")
    p.add_argument("--data-root", help="where named datasets live (default $GANFORGE_DATA or ./data)")
    p.add_argument("--no-download", action="store_true", help="never download a missing dataset")
    p.add_argument("--model", help="network pair: mlp or dcgan")
    p.add_argument("--loss", help="GAN objective (bce)")
    p.add_argument("--epochs", type=int, help="train for this many epochs in all")
    p.add_argument("--steps", type=int, help="train up to this global step")
    p.add_argument("--minutes", type=float, help="train for this many minutes in all")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--image-size", type=int, help="square side of the training images")
    p.add_argument("--channels", type=int, help="1 (grey) or 3 (RGB)")
    p.add_argument("--crop", help="center (crop non-square images) or none (refuse them)")
    p.add_argument("--on-bad-image", help="skip (count and name them) or error")
    p.add_argument("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    p.add_argument("--precision", help="fp32, bf16 or fp16 (autocast)")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<preset>-<time>)")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue a run from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_speed_flags(p)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set any config key"
    )
    p.set_defaults(func=_cmd_train)


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    flags = {
        "data": args.data, "data_root": args.data_root, "model": args.model, "loss": args.loss,
        "epochs": args.epochs, "steps": args.steps, "minutes": args.minutes,
        "batch_size": args.batch_size, "image_size": args.image_size, "channels": args.channels,
        "crop": args.crop, "on_bad_image": args.on_bad_image, "device": args.device,
        "precision": args.precision, "seed": args.seed,
    }  # fmt: skip
    values: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if args.no_download:
        values["download"] = False
    if args.no_progress:
        values["progress"] = False
    values.update(_speed_flags(args))
    values.update(cfgmod.parse_set(args.set))
    if any(k in values for k in _BUDGET):  # a budget on the command line replaces the preset's
        values = {**{k: 0 for k in _BUDGET}, **values}
    return {k: cfgmod.coerce(k, v, "command line") for k, v in values.items()}


def _cmd_train(args: argparse.Namespace) -> int:
    from ganforge.training import train

    overrides = _train_overrides(args)
    if args.resume:
        if args.preset or args.config or args.out:
            raise UserError("--resume continues a run as it was; drop --preset, --config and --out")
        run = train(resume=args.resume, overrides=overrides)
    else:
        if args.config:
            base = cfgmod.load_preset(args.preset) if args.preset else None
            cfg = cfgmod.load_file(args.config, base)
        else:
            cfg = cfgmod.load_preset(args.preset or "quick")
        run = train(cfg, out=args.out, overrides=overrides)
    print(f"wrote {run} (checkpoint {run / 'checkpoints' / 'last.pt'}, grids in {run / 'samples'})")
    return 0


def _add_sample(sub: Any) -> None:
    p = sub.add_parser("sample", help="draw images from a trained generator")
    p.add_argument("run", metavar="RUN_OR_CKPT", help="a run folder or a checkpoint file")
    p.add_argument("--n", type=int, default=64, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="latent seed (same seed, same images)")
    p.add_argument("--out", default="samples.png", help="grid PNG to write")
    p.add_argument("--nrow", type=int, default=8, help="images per grid row")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_sample)


def _cmd_sample(args: argparse.Namespace) -> int:
    from ganforge.sampling import load_generator, save_grid
    from ganforge.training.device import resolve_device

    G = load_generator(args.run, resolve_device(args.device))
    path = save_grid(G.sample(args.n, seed=args.seed), args.out, nrow=args.nrow)
    print(f"wrote {path} ({args.n} images, seed {args.seed})")
    return 0


def _add_speed_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the D and G steps (slow to start)"
    )
    p.add_argument(
        "--cuda-graphs", action="store_true", help="CUDA: capture the whole step as a CUDA graph"
    )


def _speed_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {k: True for k in ("compile", "cuda_graphs") if getattr(args, k)}


def _add_bench(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="training throughput, beside the reference loop",
        description="Time ganforge's training step (img/s, step time, FLOPs, peak memory) on "
        "the bundled MNIST sample; with --vs-reference, beside SEED.md's training loop, "
        "in alternating windows of one run.",
    )
    p.add_argument("--preset", default="seed-dcgan", help="preset to time (default seed-dcgan)")
    p.add_argument("--vs-reference", action="store_true", help="also time the reference loop")
    p.add_argument("--steps", type=int, default=20, help="timed steps per loop (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--windows", type=int, default=5, help="alternating windows (default 5)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--batch-size", type=int)
    _add_speed_flags(p)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set any config key"
    )
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from ganforge.bench import bench
    from ganforge.logging import info

    values: dict[str, Any] = {"device": args.device, "batch_size": args.batch_size}
    values = {k: v for k, v in values.items() if v is not None}
    values.update(_speed_flags(args))
    values.update(cfgmod.parse_set(args.set))
    cfg = cfgmod.apply(cfgmod.load_preset(args.preset), values, "command line")
    result = bench(
        cfgmod.validate(cfg), args.steps, args.warmup, args.windows, args.vs_reference, info
    )
    print("\n".join(result.lines()))
    return 0


COMMANDS: list[Callable[[Any], None]] = [_add_train, _add_sample, _add_bench]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser."""
    parser = argparse.ArgumentParser(
        prog="ganforge", description="Train, watch, evaluate and sample GANs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"ganforge: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ganforge: interrupted", file=sys.stderr)
        return 130
