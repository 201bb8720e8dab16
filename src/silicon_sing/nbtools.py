"""Notebook hygiene: strip outputs from source notebooks and check their parameters cell; safe HTML.

``python -m silicon_sing.nbtools strip notebooks/*.ipynb`` (``make strip``) removes outputs and
execution counts; ``check`` fails if a source notebook has outputs or no ``parameters`` cell.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import nbformat


def strip_notebook(path: Path) -> bool:
    """Remove outputs and execution counts from ``path`` in place; return whether it changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
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
        from .fsutil import atomic_write_text

        atomic_write_text(path, nbformat.writes(nb))
    return changed


def check_notebook(path: Path) -> list[str]:
    """Problems that would make a committed source notebook wrong."""
    nb = nbformat.read(path, as_version=4)
    problems = []
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
