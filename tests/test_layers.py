"""The direction of imports inside ganforge (docs/ARCHITECTURE.md), read from the source.

Every ``import``/``from ... import`` of a ganforge module, at module level or inside a
function, must point to the importing module's own part (its top-level package or
module) or to a lower layer. Parts in one layer do not import each other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tomllib

import ganforge
from ganforge.version import __version__

PACKAGE = Path(ganforge.__file__).parent
ROOT = PACKAGE.parents[1]

# bottom first; a part is a top-level module or package of ganforge
LAYERS: list[set[str]] = [
    {"errors", "version", "seeds", "cores"},
    {"console", "grids", "animation", "models", "losses", "augment"},
    {"config", "presets"},
    {"data", "metrics"},
    {"run"},  # run files: checkpoints, run folders, the device
    {"sampling"},
    {"training", "export"},
    {"scoring", "bench"},
    {"cli", "__init__"},  # the command line, and the API (the package itself)
    {"__main__"},  # python -m ganforge
]
LAYER = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def part_of(module: str) -> str:
    """``ganforge.training.loop`` -> ``training``; ``ganforge`` -> ``__init__``."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else "__init__"


def module_name(path: Path, package: Path) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imported(tree: ast.AST, here: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, module) of every ganforge module that ``tree`` imports."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = here.split(".")[: len(here.split(".")) - node.level + is_package]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            # `from ganforge import x` may name a submodule x
            for alias in node.names:
                full = f"{name}.{alias.name}" if name == "ganforge" else name
                found.append((node.lineno, full))
    return [(line, m) for line, m in found if m == "ganforge" or m.startswith("ganforge.")]


def violations(package: Path) -> list[str]:
    """Every import that points up a layer or sideways to another part of the same layer."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        here = module_name(path, package)
        src = part_of(here) if here != "ganforge" else "__init__"
        if path.name == "__main__.py" and path.parent == package:
            src = "__main__"
        tree = ast.parse(path.read_text(), str(path))
        for line, target in imported(tree, here, path.name == "__init__.py"):
            dst = part_of(target)
            if dst not in LAYER:  # `from ganforge import __version__`, a name, not a part
                dst = "__init__"
            if src == dst:
                continue
            if src not in LAYER:
                bad.append(f"{path.relative_to(package)}: part '{src}' has no layer")
            elif LAYER[dst] >= LAYER[src]:
                bad.append(f"{path.relative_to(package)}:{line} ({src}) imports {target} ({dst})")
    return bad


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    parts = {p for p in parts if not p.startswith((".", "_")) or p in ("__init__", "__main__")}
    parts -= {"py", "typed"}
    known = set(LAYER)
    assert {p for p in parts if (PACKAGE / p).is_dir() or (PACKAGE / f"{p}.py").is_file()} <= known


def test_imports_point_down_the_layers() -> None:
    assert violations(PACKAGE) == []


def test_the_check_finds_an_upward_import(tmp_path: Path) -> None:
    # a copy of two parts, one of which imports up: the check must name it
    pkg = tmp_path / "ganforge"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("from ganforge.training.loop import Trainer\n")
    (pkg / "training").mkdir()
    (pkg / "training" / "__init__.py").write_text("def f():\n    from ..sampling import x\n")
    (pkg / "sampling.py").write_text("from ganforge import training\n")
    found = violations(pkg)
    assert any("models/__init__.py:1 (models) imports ganforge.training.loop" in v for v in found)
    assert any("sampling.py:1 (sampling) imports ganforge.training" in v for v in found)
    assert not any(v.startswith("training") for v in found)  # training may import sampling


def test_sample_loads_no_training_code(tiny_run: Path, tmp_path: Path) -> None:
    # a real `ganforge sample` in a fresh process: which ganforge modules did it load?
    code = (
        "import sys; from ganforge.cli import main; rc = main(sys.argv[1:]); "
        "print(sorted(m for m in sys.modules if m.startswith('ganforge.')))"
    )
    out = tmp_path / "grid.png"
    proc = subprocess.run(
        [sys.executable, "-c", code, "sample", str(tiny_run), "--n", "4", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    loaded = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    assert "ganforge.sampling" in loaded and "ganforge.run.folder" in loaded
    assert [m for m in loaded if m.startswith(("ganforge.training", "ganforge.metrics"))] == []


def test_the_version_is_the_one_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"] == ganforge.__version__


def test_the_repository_speaks_of_its_own_docs() -> None:
    # the tutorial's programs are described in docs/how-training-works.md; no file may
    # point users to a planning note they never see
    note = "SEED" + ".md"
    files = [ROOT / "README.md", *(ROOT / d for d in ("src", "tests", "docs", "benchmarks"))]
    paths = [p for f in files for p in ([f] if f.is_file() else f.rglob("*"))]
    texts = [p for p in paths if p.is_file() and p.suffix in {".py", ".md", ".toml", ".sh"}]
    assert len(texts) > 50
    assert [str(p.relative_to(ROOT)) for p in texts if note in p.read_text()] == []
