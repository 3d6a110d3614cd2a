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
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set any config key"
    )
    _add_train_eval_flags(p)  # metrics
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
    values.update(_train_eval_overrides(args))  # metrics
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


# --- metrics: `ganforge eval`, `ganforge featurenet train`, evaluation during training ------


def _add_train_eval_flags(p: Any) -> None:
    p.add_argument("--eval-every", type=int, help="score G every N steps (FID; best.pt kept by it)")
    p.add_argument("--eval-samples", type=int, help="images scored at each evaluation")
    p.add_argument("--eval-metrics", help="comma-separated: fid,kid,pr,dc,classes")
    p.add_argument("--eval-features", help="auto, inception, mnist-net or fashion-net")


def _train_eval_overrides(args: argparse.Namespace) -> dict[str, Any]:
    flags = {
        "eval_every": args.eval_every, "eval_samples": args.eval_samples,
        "eval_metrics": args.eval_metrics, "eval_features": args.eval_features,
    }  # fmt: skip
    return {k: v for k, v in flags.items() if v is not None}


def _add_eval(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="score a run, checkpoint, image folder or .npz: FID, KID, precision/recall, ...",
        description="Score generated images against real data; print a table, write JSON.",
    )
    p.add_argument(
        "source", metavar="RUN_OR_CKPT", help="run folder, checkpoint, image folder or .npz"
    )
    p.add_argument(
        "--metrics", default="fid,kid,pr,dc", help="comma-separated: fid,kid,pr,dc,classes"
    )
    p.add_argument("--samples", type=int, default=10_000, help="fake images to score")
    p.add_argument("--data", help="real data: dataset name or image folder (default: the run's)")
    p.add_argument(
        "--data-root", help="where named datasets live (default $GANFORGE_DATA or ./data)"
    )
    p.add_argument("--split", default="train", choices=("train", "test"), help="real split")
    p.add_argument("--features", default="auto", help="auto, inception, mnist-net or fashion-net")
    p.add_argument("--inception-weights", metavar="PATH", help="torch-fidelity Inception weights")
    p.add_argument("--no-download", action="store_true", help="never download data or weights")
    p.add_argument(
        "--batch-size", type=int, default=0, help="images per batch (default: the extractor's)"
    )
    p.add_argument("--seed", type=int, default=0, help="latent and subset seed")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto")
    p.add_argument(
        "--out", metavar="FILE.json", help="JSON results (default RUN/eval.json or ./eval.json)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from ganforge.evaluation import EvalRequest, evaluate_source, format_table

    request = EvalRequest(
        source=args.source, metrics=args.metrics, samples=args.samples, data=args.data,
        data_root=args.data_root or "", split=args.split, features=args.features,
        inception_weights=args.inception_weights, download=not args.no_download,
        batch_size=args.batch_size, seed=args.seed, device=args.device,
        progress=not args.no_progress,
    )  # fmt: skip
    report, path = evaluate_source(request, args.out)
    print(format_table(report))
    print(f"wrote {path}")
    return 0


def _add_featurenet(sub: Any) -> None:
    p = sub.add_parser("featurenet", help="train ganforge's own feature networks")
    actions = p.add_subparsers(dest="action", required=True)
    t = actions.add_parser(
        "train",
        help="train mnist-net or fashion-net",
        description="Train the small CNN whose features score MNIST-like data.",
    )
    t.add_argument(
        "--data", required=True, help="fashion-mnist (-> fashion-net), mnist-sample or mnist"
    )
    t.add_argument(
        "--data-root", help="where named datasets live (default $GANFORGE_DATA or ./data)"
    )
    t.add_argument("--epochs", type=int, default=0, help="epochs (default: the recipe's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", metavar="FILE.pt", help="weights file (default ./NAME.pt)")
    t.add_argument("--no-download", action="store_true", help="never download a missing dataset")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_featurenet_train)


def _cmd_featurenet_train(args: argparse.Namespace) -> int:
    from ganforge.evaluation import train_feature_net

    trained, path = train_feature_net(
        args.data, args.data_root or "", args.epochs, args.out, args.seed,
        not args.no_download, not args.no_progress,
    )  # fmt: skip
    print(
        f"wrote {path} ({trained.name}: test accuracy {trained.test_accuracy:.2%}; "
        f"{trained.trained_on}; {trained.seconds:.0f} s)"
    )
    return 0


COMMANDS: list[Callable[[Any], None]] = [_add_train, _add_sample]
COMMANDS += [_add_eval, _add_featurenet]  # metrics


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
