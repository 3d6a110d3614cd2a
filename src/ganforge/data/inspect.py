"""``ganforge inspect``: a report on the data ``--data`` names, before any training.

Every file of a folder is decoded once (in parallel, by ``ganforge.data.scan.examine``)
to a small thumbnail: its header gives modes, sizes and aspect ratios; the decode
finds the files training would skip; a BLAKE2b digest of the bytes finds exact
duplicates and a perceptual hash (``ganforge.data.phash``) near ones. Named datasets
and prepared files are read as arrays and go through the same figures. The channels
and size come from :func:`ganforge.data.shape.choose_shape`, as training chooses them;
a contact sheet shows a random sample decoded as the model will see it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ganforge.config import load_preset
from ganforge.cores import usable_cores
from ganforge.data import named, packed, scan
from ganforge.data.decode import BadImage, NotSquare, decode_image, parse_background
from ganforge.data.folder import decode_workers, list_images, process_map
from ganforge.data.images import ImageData, fit, to_channels
from ganforge.data.phash import NEAR, THUMB, near_groups, phash
from ganforge.data.scan import FileFacts, Header, ImageSummary
from ganforge.data.shape import choose_shape
from ganforge.data.source import check_path, data_name
from ganforge.data.spec import DataSpec
from ganforge.errors import DataError

SHEET_IMAGES = 64  # images on the contact sheet (and timed for the prepare estimate)
SIZES_SHOWN = 10  # the most common sizes listed; the rest are counted under "other"
BAD_SHOWN = 10  # bad files named on the console (--json lists all)
# Aspect ratio (width / height) bins: upper bound (exclusive) and name.
ASPECT_BINS = (
    (0.5, "<0.5"), (0.8, "0.5-0.8"), (0.95, "0.8-0.95"), (1.05, "0.95-1.05"),
    (1.25, "1.05-1.25"), (2.0, "1.25-2"), (float("inf"), ">2"),
)  # fmt: skip


@dataclass(frozen=True)
class InspectRequest:
    """What to inspect and how training would read it; 0 channels / size: chosen."""

    data: str
    data_root: str = ""
    channels: int = 0
    image_size: int = 0
    crop: str = "center"
    background: str = "white"
    workers: int = 0  # decoder processes; 0 = one per core for big folders
    sheet: str = "inspect.png"  # the contact sheet's path; "" = none
    seed: int = 0  # which images the contact sheet shows
    progress: bool | None = None  # a bar (None: for big folders, on a terminal)


@dataclass
class _Items:
    """The images inspected: one name and FileFacts each, and how to decode some of them."""

    kind: str  # folder | dataset | prepared
    source: str
    names: list[str]
    facts: list[FileFacts]
    labels: list[int] | None
    class_names: list[str]
    stored: tuple[int, int] | None
    draw: Callable[[list[int], int, int], np.ndarray]  # (indices, size, channels) -> uint8
    workers: int = 1  # processes prepare would decode with


@dataclass
class InspectReport:
    """Everything ``ganforge inspect`` found; :meth:`to_dict` is its ``--json``."""

    data: str
    kind: str
    files: int  # files found (images in a dataset or prepared file)
    images: int  # usable images
    modes: dict[str, int]
    sizes: dict[str, int]  # "WxH" -> images, most common first, the rest under "other"
    aspect: dict[str, int]  # width/height bin -> images
    short_side: dict[str, int]  # min, median, max
    crop: dict[str, Any]
    bad: list[dict[str, str]]  # {"path", "reason"}
    duplicates: dict[str, Any]
    classes: dict[str, Any] | None
    choice: dict[str, Any]
    preset: dict[str, Any]
    prepare: dict[str, Any]
    sheet: str
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-serialisable values."""
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """The report for the console."""
        return _text(self)


# ---- reading the items ---------------------------------------------------------------------


def _folder_items(folder: Path, req: InspectRequest) -> _Items:
    from tqdm import tqdm

    listing = list_images(folder)
    paths = [str(p) for p in listing.files]
    workers = decode_workers(req.workers, len(paths))
    disable = (None if len(paths) >= 2000 else True) if req.progress is None else not req.progress
    facts: list[FileFacts] = []
    with tqdm(total=len(paths), unit="img", desc="inspecting", disable=disable) as bar:
        for chunk in process_map(scan.examine_chunk, paths, workers):
            facts.extend(chunk)
            bar.update(len(chunk))
    background = parse_background(req.background)

    def draw(indices: list[int], size: int, channels: int) -> np.ndarray:
        out = []
        for i in indices:
            try:
                out.append(decode_image(paths[i], size, channels, req.crop, background))
            except (BadImage, NotSquare):  # refused by crop 'none': not what the model sees
                continue
        return np.stack(out) if out else np.zeros((0, channels, size, size), np.uint8)

    return _Items(
        "folder", str(listing.root), paths, facts, listing.labels, listing.class_names, None,
        draw, workers,
    )  # fmt: skip


def _array_facts(images: np.ndarray, chunk: int = 4096) -> list[FileFacts]:
    """FileFacts of in-memory uint8 images ``[N, C, S, S]``."""
    n, c, s, _ = images.shape
    header = Header("L" if c == 1 else "RGB", s, s, "array")
    facts: list[FileFacts] = []
    for start in range(0, n, chunk):
        part = np.ascontiguousarray(images[start : start + chunk])  # [K, C, S, S]
        grey = to_channels(part, 1)[:, 0]  # [K, S, S]
        thumbs = np.stack(
            [np.asarray(Image.fromarray(g).resize((THUMB, THUMB), Image.Resampling.BILINEAR))
             for g in grey]
        )  # fmt: skip
        hashes = phash(thumbs).tolist()
        colours = scan.colour_images(part).tolist() if c == 3 else [False] * len(part)
        for row, h, colour in zip(part, hashes, colours, strict=True):
            digest = hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest()
            facts.append(FileFacts(header, digest, int(h), bool(colour)))
    return facts


def _array_items(data: ImageData, kind: str, stored: tuple[int, int] | None) -> _Items:
    def draw(indices: list[int], size: int, channels: int) -> np.ndarray:
        picked = ImageData(np.asarray(data.images[indices]))
        return fit(picked, size, channels).images

    labels = None if data.labels is None else [int(v) for v in data.labels]
    names = [f"#{i}" for i in range(len(data))]
    return _Items(
        kind, data.source, names, _array_facts(data.images), labels, list(data.class_names),
        stored, draw,
    )  # fmt: skip


def _items(req: InspectRequest) -> _Items:
    spec = DataSpec(req.data, req.data_root, download=False)
    name = data_name(spec)
    if name in named.NAMED:
        dataset = named.NAMED[name]
        if dataset.read is None:  # an image folder by name (celeba)
            return _folder_items(named.find_named(name, spec.root_path), req)
        return _array_items(named.load_named(name, spec.root_path), "dataset", None)
    path = Path(name).expanduser()
    if path.is_dir():
        return _folder_items(path, req)
    header = packed.read_header(check_path(name))
    return _array_items(packed.read_packed(path), "prepared", (header.channels, header.size))


# ---- the figures ---------------------------------------------------------------------------


def _aspect_bin(header: Header) -> str:
    ratio = header.width / header.height
    return next(name for bound, name in ASPECT_BINS if ratio < bound)


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    """Most common first, ties by name."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _sizes(headers: list[Header]) -> dict[str, int]:
    counts = _ranked(Counter(f"{h.width}x{h.height}" for h in headers))
    shown = dict(counts[:SIZES_SHOWN])
    rest = sum(n for _, n in counts[SIZES_SHOWN:])
    return {**shown, "other": rest} if rest else shown


def _crop(headers: list[Header], size: int, crop: str) -> dict[str, Any]:
    """What centre-cropping and resizing to ``size`` do to these images."""
    cuts = [1 - h.short_side / max(h.width, h.height) for h in headers if h.width != h.height]
    return {
        "mode": crop,
        "non_square": len(cuts),
        "refused": len(cuts) if crop == "none" else 0,
        "mean_cut": round(statistics.fmean(cuts), 4) if cuts else 0.0,  # share of area cut off
        "max_cut": round(max(cuts), 4) if cuts else 0.0,
        "size": size,
        "downscaled": sum(h.short_side > size for h in headers),
        "upscaled": sum(h.short_side < size for h in headers),
        "unscaled": sum(h.short_side == size for h in headers),
    }


def _duplicates(items: _Items, usable: list[int]) -> dict[str, Any]:
    """Exact copies (same bytes) and near ones (perceptual hashes at most NEAR bits apart)."""
    by_digest: dict[str, list[int]] = defaultdict(list)
    for i in usable:
        by_digest[items.facts[i].digest].append(i)
    exact = [[items.names[i] for i in g] for g in by_digest.values() if len(g) > 1]
    distinct = [g[0] for g in by_digest.values()]  # one of each content, in order
    hashes = np.array([items.facts[i].phash for i in distinct], dtype=np.uint64)
    near = [[items.names[distinct[k]] for k in g] for g in near_groups(hashes, NEAR)]
    return {
        "exact_files": sum(len(g) - 1 for g in exact),  # files that copy an earlier one
        "exact_groups": len(exact),
        "near_files": sum(len(g) - 1 for g in near),  # distinct contents close to another
        "near_groups": len(near),
        "max_distance": NEAR,
        "exact": sorted(exact),
        "near": sorted(near),
    }


def _classes(items: _Items, usable: list[int]) -> dict[str, Any] | None:
    if items.labels is None or not items.class_names:
        return None
    counts = Counter(items.labels[i] for i in usable)
    per_class = {name: counts.get(k, 0) for k, name in enumerate(items.class_names)}
    top = max(per_class.values())
    return {
        "count": len(per_class),
        "images": per_class,
        "balance": round(min(per_class.values()) / top, 4) if top else 0.0,  # smallest / largest
    }


def machine() -> tuple[int, str]:
    """This machine's usable CPU cores and its accelerator ("" when none)."""
    import torch

    cores = usable_cores()
    if torch.cuda.is_available():
        return cores, torch.cuda.get_device_name(0)
    if torch.backends.mps.is_available():
        return cores, "Apple MPS"
    return cores, ""


def suggest_preset(images: int, cores: int, accelerator: str) -> dict[str, Any]:
    """The preset to train this data with on this machine, and why."""
    if accelerator:
        name, why = "best", f"{accelerator}: the strongest recipe (ResNet, hinge, DiffAugment)"
    else:
        name = "fast-cpu"
        why = f"{cores} CPU core(s) and no GPU: the best images a few CPU minutes buy"
        if images < 2000:
            why += "; few images: consider --set augment=translation,cutout"
    return {"name": name, "why": why, "cores": cores, "accelerator": accelerator}


def contact_sheet(images: np.ndarray, path: str | Path, nrow: int = 8, pad: int = 2) -> Path:
    """Tile uint8 ``[N, C, S, S]`` images into one PNG, ``nrow`` a row, on mid grey."""
    n, c, s, _ = images.shape
    rows = -(-n // nrow)
    sheet = np.full((rows * (s + pad) + pad, nrow * (s + pad) + pad, c), 128, np.uint8)
    for k, img in enumerate(images):
        y, x = pad + (k // nrow) * (s + pad), pad + (k % nrow) * (s + pad)
        sheet[y : y + s, x : x + s] = img.transpose(1, 2, 0)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sheet[..., 0] if c == 1 else sheet).save(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot write the contact sheet {path}: {exc}") from None
    return path


def inspect(req: InspectRequest) -> InspectReport:
    """Inspect the data ``req`` names; write its contact sheet unless ``req.sheet`` is ""."""
    start = time.perf_counter()
    parse_background(req.background)  # a bad colour fails before any decoding
    items = _items(req)
    usable = [i for i, f in enumerate(items.facts) if f.header is not None]
    bad = [{"path": items.names[i], "reason": f.error} for i, f in enumerate(items.facts)
           if f.error]  # fmt: skip
    if not usable:
        raise DataError(
            f"none of the {len(items.names)} image files in {items.source} could be read "
            f"(first: {bad[0]['path']}: {bad[0]['reason']}); point inspect at a folder of images"
        )
    headers = [h for i in usable if (h := items.facts[i].header) is not None]
    summary = _summary(items, usable, headers)
    cores, accelerator = machine()
    preset = suggest_preset(len(usable), cores, accelerator)
    base = dataclasses.replace(
        load_preset(preset["name"]), data=req.data, channels=req.channels,
        image_size=req.image_size,
    )  # fmt: skip
    cfg, line = choose_shape(base, summary)
    size, channels = cfg.image_size, cfg.channels
    sample = scan.sample_files(usable, SHEET_IMAGES, req.seed)
    t0 = time.perf_counter()
    shown = items.draw(sample, size, channels)
    per_image = (time.perf_counter() - t0) / max(len(sample), 1)
    sheet = str(contact_sheet(shown, req.sheet)) if req.sheet and len(shown) else ""
    shorts = sorted(h.short_side for h in headers)
    stem = Path(items.source).name or "data"
    return InspectReport(
        data=req.data or data_name(DataSpec(req.data, req.data_root)),
        kind=items.kind,
        files=len(items.names),
        images=len(usable),
        modes=dict(_ranked(Counter(h.mode for h in headers))),
        sizes=_sizes(headers),
        aspect={name: sum(_aspect_bin(h) == name for h in headers) for _, name in ASPECT_BINS},
        short_side={
            "min": shorts[0],
            "median": int(statistics.median_low(shorts)),
            "max": shorts[-1],
        },
        crop=_crop(headers, size, req.crop),
        bad=bad,
        duplicates=_duplicates(items, usable),
        classes=_classes(items, usable),
        choice={
            "channels": channels,
            "image_size": size,
            "colour": round(summary.colour, 4),
            "line": line,
        },
        preset=preset,
        prepare={
            "seconds": round(per_image * len(usable) / items.workers, 1),
            "workers": items.workers,
            "bytes": packed.file_bytes(
                len(usable),
                size,
                channels,
                items.source,
                items.class_names,
                items.labels is not None,
                capacity=len(items.names),
            ),
            "command": f"ganforge prepare {req.data or stem} --size {size} --channels "
            f"{channels} --out {stem}-{size}.gfd",
        },
        sheet=sheet,
        seconds=round(time.perf_counter() - start, 2),
    )


def _summary(items: _Items, usable: list[int], headers: list[Header]) -> ImageSummary:
    """The summary :func:`choose_shape` takes, from every usable image."""
    facts = [items.facts[i] for i in usable]
    grey = scan.GREY_MODES
    colours = [f.colour for f, h in zip(facts, headers, strict=True) if h.mode not in grey]
    summary = scan.summarise(items.source, len(usable), headers, colours)
    return dataclasses.replace(summary, stored=items.stored)


# ---- the console text ----------------------------------------------------------------------


def _counts(values: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in values.items() if v)


def _text(r: InspectReport) -> list[str]:
    bad = len(r.bad)
    out = [
        f"{r.data}: {r.kind}, {r.files:,} {'files' if r.kind == 'folder' else 'images'}, "
        f"{r.images:,} usable, {bad:,} bad",
        f"modes: {_counts(r.modes)}",
        f"sizes: {_counts(r.sizes)}",
        f"aspect (width/height): {_counts(r.aspect)}",
        f"short side: min {r.short_side['min']}, median {r.short_side['median']}, "
        f"max {r.short_side['max']}",
    ]
    c = r.crop
    if c["mode"] == "none":
        crop = f"crop none: {c['refused']:,} non-square image(s) would be refused"
    elif c["non_square"]:
        crop = (
            f"crop center: {c['non_square']:,} non-square image(s) lose {c['mean_cut']:.0%} "
            f"of their area on average (at most {c['max_cut']:.0%})"
        )
    else:
        crop = "crop center: every image is square, nothing is cut"
    out.append(
        f"{crop}; to {c['size']} px: {c['downscaled']:,} downscaled, {c['upscaled']:,} upscaled, "
        f"{c['unscaled']:,} as they are"
    )
    if bad:
        out.append(f"bad files ({bad:,}, skipped in training):")
        out += [f"  {b['path']}: {b['reason']}" for b in r.bad[:BAD_SHOWN]]
        if bad > BAD_SHOWN:
            out.append(f"  and {bad - BAD_SHOWN:,} more (--json lists them all)")
    d = r.duplicates
    out.append(
        f"duplicates: {d['exact_files']:,} exact copies in {d['exact_groups']:,} group(s), "
        f"{d['near_files']:,} near duplicates in {d['near_groups']:,} group(s) "
        f"(perceptual hash within {d['max_distance']} bits)"
    )
    for group in (d["exact"] + d["near"])[:3]:
        out.append("  " + " = ".join(group[:4]) + (" ..." if len(group) > 4 else ""))
    if r.classes is not None:
        k = r.classes
        out.append(
            f"classes: {k['count']} ({_counts(k['images'])}); balance {k['balance']:.2f} "
            "(smallest / largest)"
        )
    else:
        out.append("classes: none (no class sub-folders or labels)")
    out.append(r.choice["line"])
    p = r.preset
    out.append(f"preset: {p['name']} ({p['why']})")
    q = r.prepare
    out.append(
        f"prepare: about {q['seconds']:.1f} s with {q['workers']} process(es), "
        f"{q['bytes'] / 2**20:.1f} MB: {q['command']}"
    )
    sheet = f"; wrote {r.sheet} (a random sample as the model sees it)" if r.sheet else ""
    out.append(f"inspected in {r.seconds:.1f} s{sheet}")
    return out
