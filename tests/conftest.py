"""Shared pytest configuration."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # tests/stems.py helpers
os.environ.setdefault("SILICON_SING_ROOT", str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


import nbformat  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory):
    """Execute all notebooks once, in order, into a temporary run directory (the smoke profile)."""
    from silicon_sing.params import load_params
    from silicon_sing.pipeline import run_notebooks

    run_dir = tmp_path_factory.mktemp("smoke-run")
    params = load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(run_dir)})
    timings = run_notebooks(params)
    return params, timings


@pytest.fixture(scope="session")
def smoke_book(smoke_run, tmp_path_factory: pytest.TempPathFactory):
    """The book built (strictly) from the smoke run's executed notebooks, away from the repo."""
    from silicon_sing.pipeline import build_book, publish_notebooks, stage_book_sources

    params, _ = smoke_run
    src = stage_book_sources(REPO, tmp_path_factory.mktemp("book-src"))
    publish_notebooks(params, REPO, book_root=src)
    out = tmp_path_factory.mktemp("book-out")
    seconds = build_book(src, strict=True, path_output=out)
    return out / "_build" / "html", seconds, params


def glued(nb_path: Path) -> dict[str, str]:
    """Names and plain-text values glued by an executed notebook."""
    nb = nbformat.read(nb_path, as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook", {})
            if meta.get("name"):
                data = o.get("data", {})
                out[meta["name"]] = data.get(meta.get("mime_prefix", "") + "text/plain", data.get("text/plain", ""))
    return out
