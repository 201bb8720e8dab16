"""The package's dependency graph points down: foundations <- stages in pipeline order <- presentation.

CONTRIBUTING.md ("Package map") explains the layers. Every ``from . import`` / ``from .x import``
in ``src/silicon_sing`` — at module level or inside a function (a lazy import is still a
dependency) — must name a module at the same position or below in :data:`ORDER`. A new module goes
into :data:`ORDER` where it belongs; a test that fails here names the importing file, the line and
both modules.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "silicon_sing"

# bottom to top; a module may import only from its own entry or entries to its left
ORDER: list[tuple[str, ...]] = [
    ("machine", "fsutil", "names"),  # foundations with no sibling imports
    ("params",),
    ("model_names",),  # which model a run names, without audiocraft
    ("audio", "music"),
    ("synth",),  # stage 00: the smoke profile's input generator
    ("curate",),  # 01
    ("data",),  # records crossing 01/02 -> 03/04, the run UUID
    ("caption",),  # 02
    ("optim", "losses", "models", "interop"),  # 03 foundations
    ("tokens", "memory"),
    ("torchrun",),
    ("train",),  # 03
    ("pretrain",),  # the nano model's pre-training (uses 00-03)
    ("generate",),  # 04
    ("metrics",),  # 04
    ("results",),  # 04 analysis
    ("listen",),  # 05
    ("rehearsal", "provenance", "preflight"),  # whole-pipeline tools
    ("plots", "nbtools"),  # presentation
    ("pipeline",),  # runs the notebooks
]
RANK = {name: i for i, names in enumerate(ORDER) for name in names}


def _top(module: str) -> str:
    """``train.trainer`` -> ``train``: the entry of :data:`ORDER` a module belongs to."""
    return module.split(".", 1)[0]


@functools.cache  # one parse of the package serves every test here
def _edges() -> tuple[tuple[str, int, str, str], ...]:
    """(file, line, importing entry, imported entry) for every intra-package import across entries."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel == Path("__init__.py"):
            continue  # the package's own __init__ only re-exports load_export
        parts = list(rel.with_suffix("").parts)
        pkg = parts[:-1]  # the package a relative import starts from (for __init__ too)
        here = _top(".".join(parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            base = pkg[: len(pkg) - node.level + 1]  # each dot past the first climbs one package
            targets = [".".join([*base, node.module])] if node.module else [".".join([*base, a.name]) for a in node.names]
            for target in targets:
                if not target:
                    continue
                there = _top(target)
                if there != here:
                    out.append((str(rel), node.lineno, here, there))
    return tuple(out)


def test_every_module_has_a_layer() -> None:
    tops = {_top(".".join(p.relative_to(PACKAGE).with_suffix("").parts)) for p in PACKAGE.rglob("*.py")}
    missing = sorted(tops - set(RANK) - {"__init__"})
    assert not missing, f"add {missing} to tests/test_layers.py ORDER (and CONTRIBUTING.md's Package map)"


def test_imports_only_point_down() -> None:
    upward = [f"{f}:{line}: {a} imports {b}, which sits above it" for f, line, a, b in _edges()
              if b in RANK and a in RANK and RANK[b] > RANK[a]]
    assert not upward, "\n".join(upward)


# issue 12's examples of dependencies that pointed the wrong way, each now gone for a reason:
# augmentation and the run UUID live in data (audiocraft keeps them in data/music_dataset.py);
# evaluation does not depend on the smoke data generator; export paths come from RunPaths
FORBIDDEN = [("train", "caption"), ("results", "synth"), ("metrics", "synth"), ("generate", "train"),
             ("pretrain", "train"), ("listen", "plots")]


@pytest.mark.parametrize("importer, imported", FORBIDDEN)
def test_the_named_inversions_stay_gone(importer: str, imported: str) -> None:
    hits = [f"{f}:{line}" for f, line, a, b in _edges() if (a, b) == (importer, imported)]
    assert not hits, f"{importer} imports {imported} again: {hits}"


MAX_LINES = 500


def test_no_module_is_long_without_a_written_reason() -> None:
    """Issue 12: a module over ~500 lines says at its top why it stays one module ("Kept as one module …")."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > MAX_LINES and "Kept as one module" not in doc:
            long.append(f"{path.relative_to(PACKAGE)} ({text.count(chr(10))} lines)")
    assert not long, f"split these or write 'Kept as one module of ~N lines: <why>' in their docstring: {long}"


# the files and folders a run dir holds, spelled once in params.RunPaths ("run-dir paths from RunPaths only")
RUN_DIR_NAMES = {"raw", "curated", "captions", "tokens", "checkpoints", "generations", "metrics", "notebooks",
                 "manifests", "tracks", "segments", "state", "tracks.jsonl", "segments.jsonl", "report.json",
                 "split.json", "run_uuid.json", "captions.jsonl", "descriptors", "descriptors.jsonl", "export",
                 "log.jsonl", ".lock", "done.json", "torchrun", "torchrun.stderr", "cache", "metrics.json",
                 "timings.json", ".lock-notebooks", "null_control.json", "null_control_metrics.json"}
# modules that write outside a run dir under some of the same names (the nano assets, the book, caches)
NOT_RUN_DIRS = {"params.py", "pipeline.py", "pretrain", "rehearsal.py", "interop.py", "preflight.py", "synth",
                "models", "metrics/weights.py", "caption/essentia_models.py", "caption/decisions.py"}


def _path_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants used as the right operand of ``/`` (a path component), with their line."""
    return [(n.lineno, n.right.value) for n in ast.walk(tree)
            if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)
            and isinstance(n.right, ast.Constant) and isinstance(n.right.value, str)]


def test_run_dir_paths_are_spelled_only_in_run_paths() -> None:
    """A stage joins no run-dir file or folder name itself; it asks ``params.run`` (RunPaths) for the path."""
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if any(rel == x or rel.startswith(x + "/") for x in NOT_RUN_DIRS):
            continue
        for line, value in _path_literals(ast.parse(path.read_text(encoding="utf-8"))):
            if value in RUN_DIR_NAMES:
                spelled.append(f"{rel}:{line}: / {value!r}")
    assert not spelled, "add a RunPaths property or method for these and use it:\n" + "\n".join(spelled)
