"""The ``ganforge`` command line: argument parsing only, over the Python API."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ganforge import config as cfgmod
from ganforge.errors import UserError

# the commands with their line in `ganforge --help`; each command's options are added
# only when it runs (build_parser), so it loads only the registries it lists
_SUMMARY = {
    "train": "train a GAN",
    "sample": "draw images from a trained generator",
    "export": "write the generator alone in another file format (--format)",
    "prepare": "pack an image folder or dataset into one file for fast training",
    "inspect": "report on data before training: counts, sizes, bad files, duplicates, choices",
    "datasets": "list the named datasets and where each is found",
    "bench": "training throughput, beside the reference loop",
    "eval": "score a run, checkpoint, image folder or .npz: FID, KID, precision/recall, ...",
    "featurenet": "train ganforge's own feature networks",
}


def _listed(names: Iterable[str]) -> str:
    """Registry names for a help text: ``a, b or c``."""
    *rest, last = names
    return f"{', '.join(rest)} or {last}" if rest else last


def _device_help(default: str = "") -> str:
    """The device names resolve_device takes."""
    from ganforge.run.device import DEVICE_NAMES

    said = f" (default {default})" if default else ""
    return f"{_listed(DEVICE_NAMES)}; auto: CUDA, then MPS, then the CPU{said}"


def _add_train(sub: Any) -> None:
    from ganforge.data.named import names as dataset_names
    from ganforge.losses import LOSSES
    from ganforge.models import MODELS

    p = sub.add_parser(
        "train",
        help=_SUMMARY["train"],
        description="Train a GAN. Settings resolve as: preset < --config file < flags < --set; "
        "a budget given (--epochs, --steps, --minutes) replaces the preset's whole budget.",
    )
    p.add_argument(
        "--preset",
        help=f"start from a preset: {_listed(cfgmod.preset_names())} (default "
        f"{cfgmod.DEFAULT_PRESET} when no --config names one)",
    )
    p.add_argument("--config", metavar="FILE.toml", help="a TOML file of config keys")
    p.add_argument(
        "--data",
        help=f"dataset name ({_listed(dataset_names())}), image folder, or `ganforge prepare` file",
    )
    p.add_argument("--data-root", help="named datasets' root ($GANFORGE_DATA or ./data)")
    p.add_argument("--no-download", action="store_true", help="never download a missing dataset")
    p.add_argument("--model", help=f"network pair: {_listed(MODELS)}")
    p.add_argument("--loss", help=f"GAN objective: {_listed(LOSSES)}")
    p.add_argument("--epochs", type=int, help="train for this many epochs in all")
    p.add_argument("--steps", type=int, help="train up to this global step")
    p.add_argument("--minutes", type=float, help="train for this many minutes in all")
    p.add_argument(
        "--batch-size", type=int, help="images per step; under torchrun, the global batch"
    )
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across GPUs (torchrun)")
    p.add_argument(
        "--image-size", type=int, help="square side of the images (default: from the data)"
    )
    p.add_argument("--channels", type=int, help="1 (grey) or 3 (RGB) (default: from the data)")
    p.add_argument(
        "--crop", help=f"{_listed(cfgmod.choices('crop'))}: crop non-square images or refuse them"
    )
    p.add_argument(
        "--on-bad-image",
        help=f"{_listed(cfgmod.choices('on_bad_image'))}: count and name bad files, or stop",
    )
    p.add_argument("--device", help=_device_help())
    p.add_argument(
        "--precision", help=f"{_listed(cfgmod.choices('precision'))} (autocast; default fp32)"
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<preset>-<time>)")
    p.add_argument("--resume", metavar="RUN_OR_CKPT", help="continue a run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_speed_flags(p)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set any config key"
    )
    _add_train_eval_flags(p)
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
    if args.sync_bn:
        values["sync_bn"] = True
    values.update(_speed_flags(args))
    values.update(_train_eval_overrides(args))
    values.update(cfgmod.parse_set(args.set))
    return {k: cfgmod.coerce(k, v, "command line") for k, v in values.items()}


def _cmd_train(args: argparse.Namespace) -> int:
    from ganforge.training import train

    overrides = _train_overrides(args)
    if args.resume:
        if args.preset or args.config or args.out:
            raise UserError("--resume continues a run as it was; drop --preset, --config and --out")
        run = train(resume=args.resume, overrides=overrides)
    else:
        cfg = cfgmod.start_config(args.preset, args.config)
        run = train(cfg, out=args.out, overrides=overrides)
    print(f"wrote {run} (checkpoint {run / 'checkpoints' / 'last.pt'}, grids in {run / 'samples'})")
    return 0


def _seeds(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"want integers separated by commas: '{text}'") from None


def _add_sample(sub: Any) -> None:
    p = sub.add_parser(
        "sample",
        help=_SUMMARY["sample"],
        description="Draw images from a run or checkpoint: a grid PNG (the default), one PNG "
        "per image, an .npz array, a latent interpolation, the run's progress animation.",
    )
    p.add_argument("run", metavar="RUN_OR_CKPT", help="a run folder, checkpoint or .safetensors")
    p.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--seed", type=int, default=0, help="latent seed (same seed, same images)")
    p.add_argument("--grid", "--out", dest="grid", metavar="PNG", help="grid PNG to write")
    p.add_argument("--nrow", type=int, default=8, help="images per grid row (default 8)")
    p.add_argument("--padding", type=int, default=2, help="pixels between grid images")
    p.add_argument("--dir", metavar="FOLDER", help="write one PNG per image into this folder")
    p.add_argument("--npz", metavar="FILE", help="write uint8 images [N, H, W, C] (and labels)")
    p.add_argument("--class", dest="cls", type=int, metavar="K", help="class of every image")
    p.add_argument(
        "--truncation", type=float, metavar="T",
        help="redraw latent entries with |z| > T (BigGAN's truncation trick; smaller T: "
        "less variety, cleaner images)",
    )  # fmt: skip
    p.add_argument("--no-ema", action="store_true", help="use G's weights, not its EMA")
    p.add_argument(
        "--batch-stats", action="store_true",
        help="BatchNorm with each batch's statistics (train mode) instead of the running ones",
    )  # fmt: skip
    p.add_argument("--interpolate", metavar="GIF", help="latent interpolation (.gif or .mp4)")
    p.add_argument("--seeds", type=_seeds, default=[0, 1], help="seeds to pass through (0,1)")
    p.add_argument("--frames", type=int, default=16, help="frames between two seeds (16)")
    p.add_argument("--frame-ms", type=int, default=100, help="milliseconds per frame (100)")
    p.add_argument(
        "--progress-gif", nargs="?", const="", metavar="GIF",
        help="animate the run's fixed-noise grids (default RUN/samples/progress.gif)",
    )  # fmt: skip
    p.add_argument("--device", default="cpu", help=_device_help("cpu"))
    p.set_defaults(func=_cmd_sample)


def _cmd_sample(args: argparse.Namespace) -> int:
    from ganforge import sampling
    from ganforge.animation import check_animation_path
    from ganforge.run.device import resolve_device

    if args.n <= 0:
        raise UserError(f"--n must be positive, got {args.n}")
    if args.frames <= 0 or args.frame_ms <= 0:
        raise UserError("--frames and --frame-ms must be positive")
    wants_images = args.grid or args.dir or args.npz
    if not (wants_images or args.interpolate or args.progress_gif is not None):
        args.grid = "samples.png"
    for path in (args.grid, args.npz, args.interpolate, args.progress_gif):
        if path:
            sampling.check_output_path(path)
    if args.interpolate:
        check_animation_path(args.interpolate)
        sampling.check_output_path(sampling.strip_path(args.interpolate))
    if args.progress_gif is not None:
        _progress_gif(args.run, args.progress_gif)
    if not (args.grid or args.dir or args.npz or args.interpolate):
        return 0

    G = sampling.load_generator(args.run, resolve_device(args.device), ema=not args.no_ema)
    about = f"seed {args.seed}, {'EMA' if G.weights == 'ema' else 'G'} weights"
    if args.truncation is not None:
        about += f", truncation {args.truncation}"
    if args.grid or args.dir or args.npz:
        labels = G.labels_for(args.n, args.cls)
        images = G.sample(args.n, args.seed, labels, truncation=args.truncation,
                          batch_stats=args.batch_stats)  # fmt: skip
        if args.grid:
            path = sampling.save_grid(images, args.grid, nrow=args.nrow, padding=args.padding)
            print(f"wrote {path} ({args.n} images, {about})")
        if args.dir:
            folder = sampling.save_pngs(images, args.dir)
            print(f"wrote {args.n} PNGs to {folder} ({about})")
        if args.npz:
            path = sampling.save_npz(images, args.npz, labels)
            print(f"wrote {path} ({args.n} images, {about})")
    if args.interpolate:
        frames = G.interpolate(args.seeds, args.frames, args.cls, args.truncation)
        gif, strip = sampling.save_interpolation(
            frames, args.interpolate, args.frames, args.frame_ms
        )
        seeds = ",".join(map(str, args.seeds))
        print(f"wrote {gif} and {strip} ({frames.shape[0]} frames through seeds {seeds})")
    return 0


def _add_prepare(sub: Any) -> None:
    p = sub.add_parser(
        "prepare",
        help=_SUMMARY["prepare"],
        description="Decode SOURCE once (in parallel) into a uint8 array file that "
        "`ganforge train --data FILE` reads by memory map.",
    )
    p.add_argument("source", metavar="SOURCE", help="image folder, dataset name, or .gfd file")
    p.add_argument("--out", required=True, metavar="FILE.gfd", help="file to write")
    p.add_argument("--size", type=int, default=64, help="square side in pixels (default 64)")
    p.add_argument("--channels", type=int, default=3, choices=(1, 3), help="1 grey, 3 RGB")
    p.add_argument("--crop", default="center", choices=cfgmod.choices("crop"))
    p.add_argument("--on-bad-image", default="skip", choices=cfgmod.choices("on_bad_image"))
    p.add_argument("--background", default="white", help="for transparency: white, black, R,G,B")
    p.add_argument("--workers", type=int, default=0, help="decoder processes (0: one per core)")
    p.add_argument("--data-root", default="", help="where named datasets live")
    p.add_argument("--split", default="train", choices=("train", "test"))
    p.add_argument("--no-download", action="store_true", help="never download a missing dataset")
    p.set_defaults(func=_cmd_prepare)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from ganforge.data import DataSpec, prepare  # no torch: preparing starts at once

    if args.size <= 0 or args.workers < 0:
        raise UserError("--size must be positive and --workers not negative")
    spec = DataSpec(
        args.source, args.data_root, args.size, args.channels, not args.no_download, args.crop,
        args.on_bad_image, args.split, args.background, args.workers,
    )  # fmt: skip
    done = prepare(spec, args.out)
    if done.report is not None and done.report.bad:
        print(done.report.summary(), file=sys.stderr)
    mb = done.path.stat().st_size / 2**20
    print(f"wrote {done.path}: {done.header.describe()}, {mb:.1f} MB, in {done.seconds:.1f} s")
    return 0


def _add_inspect(sub: Any) -> None:
    p = sub.add_parser(
        "inspect",
        help=_SUMMARY["inspect"],
        description="Look at every image of DATA (a folder, dataset name or .gfd file): modes, "
        "sizes, aspect ratios, what cropping does, bad files, exact and near duplicates, "
        "classes, the channels, size and preset training would choose, the prepare time and "
        "file size; and write a contact sheet of a random sample as the model sees it.",
    )
    p.add_argument("data", metavar="DATA", help="image folder, dataset name, or .gfd file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--sheet", default="inspect.png", metavar="PNG", help="contact sheet to write")
    p.add_argument("--no-sheet", action="store_true", help="write no contact sheet")
    p.add_argument("--channels", type=int, default=0, choices=(0, 1, 3), help="0: from the data")
    p.add_argument("--image-size", type=int, default=0, help="0: from the data")
    p.add_argument("--crop", default="center", choices=cfgmod.choices("crop"))
    p.add_argument("--background", default="white", help="for transparency: white, black, R,G,B")
    p.add_argument("--workers", type=int, default=0, help="decoder processes (0: one per core)")
    p.add_argument("--data-root", default="", help="where named datasets live")
    p.add_argument("--seed", type=int, default=0, help="which images the contact sheet shows")
    p.set_defaults(func=_cmd_inspect)


def _cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from ganforge.data.inspect import InspectRequest, inspect

    if args.image_size < 0 or args.workers < 0:
        raise UserError("--image-size and --workers must not be negative")
    report = inspect(
        InspectRequest(
            args.data,
            args.data_root,
            args.channels,
            args.image_size,
            args.crop,
            args.background,
            args.workers,
            "" if args.no_sheet else args.sheet,
            args.seed,
        )  # fmt: skip
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else "\n".join(report.lines()))
    return 0


def _add_datasets(sub: Any) -> None:
    p = sub.add_parser("datasets", help=_SUMMARY["datasets"])
    p.add_argument("--data-root", default="", help="where named datasets live")
    p.set_defaults(func=_cmd_datasets)


def _cmd_datasets(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ganforge.data import default_root, survey

    root = Path(args.data_root) if args.data_root else default_root()
    print(f"data root: {root.resolve()} (change it with --data-root or $GANFORGE_DATA)")
    print(f"{'name':<14}{'here':<6}{'images':>10}{'size':>11}  where")
    for s in survey(root):
        if s.folder is None:
            looked = ", ".join(str(f) for f in s.looked)
            print(f"{s.name:<14}{'no':<6}{'-':>10}{'-':>11}  not in {looked}")
        else:
            size = f"{s.bytes / 2**20:.1f} MB"
            print(f"{s.name:<14}{'yes':<6}{s.images:>10,}{size:>11}  {s.folder}")
    print("`ganforge train --data NAME` downloads a missing one where it can (not mnist-sample,")
    print("which ships with ganforge); each error names how to get it offline.")
    return 0


def _progress_gif(run_or_ckpt: str, out: str) -> None:
    from pathlib import Path

    from ganforge.animation import progress_gif
    from ganforge.run.folder import find_checkpoint, run_of

    run = Path(run_or_ckpt)
    if not run.is_dir():
        run = run_of(find_checkpoint(run))
    path = progress_gif(run / "samples", out or None)
    if path is None:
        raise UserError(f"{run / 'samples'} holds no grid PNGs (stepNNNNNNN.png) to animate")
    print(f"wrote {path}")


def _add_export(sub: Any) -> None:
    from ganforge.export import FORMATS

    p = sub.add_parser(
        "export",
        help=_SUMMARY["export"],
        description="Write the generator alone, with a JSON sidecar (FILE.json) naming its "
        "input and output sizes; then check that the file gives the same images.",
    )
    p.add_argument("run", metavar="RUN_OR_CKPT", help="a run folder or checkpoint file")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="file format")
    p.add_argument("--out", metavar="FILE", help="file to write (default generator.<ext>)")
    p.add_argument("--no-ema", action="store_true", help="export G's weights, not its EMA")
    p.add_argument("--no-check", action="store_true", help="skip running the exported file")
    p.set_defaults(func=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    from ganforge import export
    from ganforge.sampling import check_output_path, load_generator

    out = check_output_path(args.out or export.default_out(args.format))
    G = load_generator(args.run, ema=not args.no_ema)
    path = export.export_generator(G, args.format, out)
    weights = "EMA" if G.weights == "ema" else "G"
    print(f"wrote {path} and {export.sidecar_path(path)} ({args.format}, {weights} weights)")
    if args.no_check:
        return 0
    if args.format == "onnx" and not export.onnx_runtime_available():
        print("not checked: onnxruntime is not installed (pip install onnxruntime)")
        return 0
    diff = export.check_export(path, G, args.format)
    if diff > 1e-4:
        print(f"ganforge: warning: {path} differs from the checkpoint by up to {diff:.2g}",
              file=sys.stderr)  # fmt: skip
        return 1
    print(f"checked: {path} gives the checkpoint's images (largest difference {diff:.1g})")
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
        help=_SUMMARY["bench"],
        description="Time ganforge's training step (img/s, step time, FLOPs, peak memory) on "
        "the bundled MNIST sample; with --vs-reference, beside the tutorial's training loop, "
        "in alternating windows of one run.",
    )
    p.add_argument(
        "--preset",
        default="seed-dcgan",
        help=f"preset to time: {_listed(cfgmod.preset_names())} (default seed-dcgan)",
    )
    p.add_argument("--vs-reference", action="store_true", help="also time the reference loop")
    p.add_argument("--steps", type=int, default=20, help="timed steps per loop (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--windows", type=int, default=5, help="alternating windows (default 5)")
    p.add_argument("--device", help=_device_help())
    p.add_argument("--batch-size", type=int)
    _add_speed_flags(p)
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="set any config key"
    )
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from ganforge.bench.timing import bench
    from ganforge.console import info

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


# --- `ganforge eval`, `ganforge featurenet train`, evaluation during training ---------------


def _metrics_help(default: str) -> str:
    """The metrics, each with its line of help, from the registry."""
    from ganforge.metrics.registry import METRICS

    listed = "; ".join(f"{m.name}: {m.help}" for m in METRICS.values())
    return f"comma-separated (default {default}), of: {listed}"


def _features_help(files: bool) -> str:
    """The feature extractors, from the registry; ``files``: a NET.pt is taken too."""
    from ganforge.metrics.extractors import NAMES

    return _listed(NAMES) + (", or a feature network file NET.pt" if files else "")


def _add_train_eval_flags(p: Any) -> None:
    p.add_argument("--eval-every", type=int, help="score G every N steps (FID; best.pt kept by it)")
    p.add_argument("--eval-samples", type=int, help="images scored at each evaluation")
    p.add_argument("--eval-metrics", help=_metrics_help("fid"))
    p.add_argument("--eval-features", help=_features_help(files=True))


def _train_eval_overrides(args: argparse.Namespace) -> dict[str, Any]:
    flags = {
        "eval_every": args.eval_every, "eval_samples": args.eval_samples,
        "eval_metrics": args.eval_metrics, "eval_features": args.eval_features,
    }  # fmt: skip
    return {k: v for k, v in flags.items() if v is not None}


def _add_eval(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help=_SUMMARY["eval"],
        description="Score generated images against real data; print a table, write JSON.",
    )
    p.add_argument(
        "source", metavar="RUN_OR_CKPT", nargs="?",
        help="run folder, checkpoint, image folder or .npz",
    )  # fmt: skip
    p.add_argument(
        "--compare", nargs=2, metavar=("A.json", "B.json"),
        help="compare two score files; refused when their cards differ in what changes the number",
    )  # fmt: skip
    p.add_argument("--metrics", default="fid,kid,pr,dc", help=_metrics_help("fid,kid,pr,dc"))
    p.add_argument("--samples", type=int, default=10_000, help="fake images to score")
    p.add_argument("--data", help="real data: dataset name or image folder (default: the run's)")
    p.add_argument(
        "--data-root", help="where named datasets live (default $GANFORGE_DATA or ./data)"
    )
    p.add_argument("--split", default="train", choices=("train", "test"), help="real split")
    p.add_argument("--features", default="auto", help=_features_help(files=False))
    p.add_argument("--inception-weights", metavar="PATH", help="torch-fidelity Inception weights")
    p.add_argument("--no-download", action="store_true", help="never download data or weights")
    p.add_argument(
        "--batch-size", type=int, default=0, help="images per batch (default: the extractor's)"
    )
    p.add_argument("--seed", type=int, default=0, help="latent and subset seed")
    p.add_argument("--truncation", type=float, help="truncate a generator's latents to |z| <= T")
    p.add_argument("--no-ema", action="store_true", help="a generator's trained weights, not EMA")
    p.add_argument("--device", default="cpu", help=_device_help("cpu"))
    p.add_argument(
        "--out", metavar="FILE.json", help="JSON results (default RUN/eval.json or ./eval.json)"
    )
    p.add_argument("--json", action="store_true", help="print the JSON report, not the table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from ganforge.scoring import EvalRequest, compare_scores, evaluate_source, format_table

    if args.compare:
        if args.source:
            raise UserError("give either RUN_OR_CKPT to score or --compare A.json B.json")
        print(compare_scores(*args.compare))
        return 0
    if not args.source:
        raise UserError("give RUN_OR_CKPT to score, or --compare A.json B.json")
    request = EvalRequest(
        source=args.source, metrics=args.metrics, samples=args.samples, data=args.data,
        data_root=args.data_root or "", split=args.split, features=args.features,
        inception_weights=args.inception_weights, download=not args.no_download,
        batch_size=args.batch_size, seed=args.seed, device=args.device,
        progress=not args.no_progress, truncation=args.truncation, ema=not args.no_ema,
    )  # fmt: skip
    report, path = evaluate_source(request, args.out)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        print(f"wrote {path}", file=sys.stderr)
    else:
        print(format_table(report))
        print(f"wrote {path}")
    return 0


def _add_featurenet(sub: Any) -> None:
    p = sub.add_parser("featurenet", help=_SUMMARY["featurenet"])
    actions = p.add_subparsers(dest="action", required=True)
    t = actions.add_parser(
        "train",
        help="train mnist-net, fashion-net, or a net for a labelled image folder",
        description="Train the small CNN whose features score generated images: on MNIST-like "
        "data, or on any image folder with one sub-folder per class (its own scale of scores).",
    )
    t.add_argument(
        "--data",
        required=True,
        help="fashion-mnist (-> fashion-net), mnist-sample or mnist, or a labelled image folder",
    )
    t.add_argument(
        "--channels", type=int, default=3, choices=(1, 3), help="image folder: 3 or 1 channels"
    )
    t.add_argument(
        "--image-size", type=int, default=32, help="image folder: the net's input size (32)"
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
    from ganforge.scoring import train_feature_net

    trained, path = train_feature_net(
        args.data, args.data_root or "", args.epochs, args.out, args.seed,
        not args.no_download, not args.no_progress, args.channels, args.image_size,
    )  # fmt: skip
    print(
        f"wrote {path} ({trained.name}: test accuracy {trained.test_accuracy:.2%}; "
        f"{trained.trained_on}; {trained.seconds:.0f} s)"
    )
    return 0


COMMANDS: dict[str, Callable[[Any], None]] = {
    "train": _add_train, "sample": _add_sample, "export": _add_export, "prepare": _add_prepare,
    "inspect": _add_inspect, "datasets": _add_datasets, "bench": _add_bench, "eval": _add_eval,
    "featurenet": _add_featurenet,
}  # fmt: skip


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every command with its options, or with ``command`` that one
    with its options and the others by name (so ``ganforge prepare`` imports no torch and
    ``ganforge sample`` no metrics for the help texts of other commands' registries)."""
    parser = argparse.ArgumentParser(
        prog="ganforge", description="Train, watch, evaluate and sample GANs."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, add in COMMANDS.items():
        if command is None or command == name:
            add(sub)
        else:
            sub.add_parser(name, help=_SUMMARY[name])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in COMMANDS else ""  # "": list the commands only
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"ganforge: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ganforge: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The console script and ``python -m ganforge``: :func:`main`, then exit with its code.
    A Ctrl-C while the interpreter shuts down leaves at once with 130: its exit handlers
    would otherwise swallow the KeyboardInterrupt and exit 0."""
    code = main()
    with contextlib.suppress(ValueError):  # not the main thread: nothing to install
        signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))
    sys.exit(code)
