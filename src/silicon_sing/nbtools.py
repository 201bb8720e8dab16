"""Notebook helpers: glue values, safe HTML; hygiene: strip outputs from source notebooks, check parameters cells.

``python -m silicon_sing.nbtools strip notebooks/*.ipynb`` (``make strip``) removes outputs and
execution counts; ``check`` fails if a source notebook has outputs or no ``parameters`` cell.

Notebooks: every chapter (``glue_all``); ``make strip`` for the sources.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat

from .fsutil import atomic_write_text


def _cells_without_id(path: Path) -> list[int]:
    """Indices of the cells of ``path`` that have no ``id`` on disk (nbformat adds one silently when it reads)."""
    return [i for i, c in enumerate(json.loads(path.read_text(encoding="utf-8")).get("cells", [])) if not c.get("id")]


def strip_notebook(path: Path) -> bool:
    """Remove outputs and execution counts from ``path`` in place, and give every cell an id; return whether it
    changed."""
    changed = bool(_cells_without_id(path))  # nbformat.read below assigns the ids; writing keeps them
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            cell.outputs, cell.execution_count = [], None
            changed = True
        for key in ("execution", "papermill"):
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
    if "papermill" in nb.metadata:
        del nb.metadata["papermill"]
        changed = True
    if changed:
        atomic_write_text(path, nbformat.writes(nb) + "\n")  # as Jupyter saves it
    return changed


def check_notebook(path: Path) -> list[str]:
    """Problems that would make a committed source notebook wrong."""
    nb = nbformat.read(path, as_version=4)
    problems = [f"{path}: cell {i} has no id (nbformat 4.5 requires one: run `make strip`)"
                for i in _cells_without_id(path)]
    code = [c for c in nb.cells if c.cell_type == "code"]
    if any(c.get("outputs") for c in code):
        problems.append(f"{path}: has outputs (run `make strip`)")
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    if len(tagged) != 1:
        problems.append(f"{path}: needs exactly one cell tagged 'parameters', found {len(tagged)}")
    elif "params_file" not in tagged[0].source or "overrides" not in tagged[0].source:
        problems.append(f"{path}: the parameters cell must define params_file and overrides")
    return problems


def escaped_style(df: Any) -> Any:
    """``df.style`` with every cell, index and column label HTML-escaped (user names and captions reach the book).

    pandas escapes a plain DataFrame's HTML, but a Styler does not unless told to.
    """
    styler = df.style.format(escape="html")
    for axis in (0, 1):
        styler = styler.format_index(escape="html", axis=axis, level=list(range(df.axes[axis].nlevels)))
    return styler


def glue_all(values: Mapping[str, object], display: bool = False) -> None:
    """``myst_nb.glue`` every ``name: value`` of ``values`` (the one way notebooks glue a batch of values).

    With ``display=False`` (the default) values only become available to ``{glue:text}`` roles and
    ``{glue:figure}`` directives; ``display=True`` also shows each one in the cell's output.
    """
    from myst_nb import glue  # lazy: myst_nb pulls in Sphinx; only notebooks glue

    for name, value in values.items():
        glue(name, value, display=display)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m silicon_sing.nbtools")
    ap.add_argument("command", choices=["strip", "check"])
    ap.add_argument("paths", nargs="+", type=Path)
    args = ap.parse_args(argv)
    if args.command == "strip":
        for p in args.paths:
            if strip_notebook(p):
                print(f"stripped {p}")
        return 0
    problems = [msg for p in args.paths for msg in check_notebook(p)]
    print("\n".join(problems) or "notebooks ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
