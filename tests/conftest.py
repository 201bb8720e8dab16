"""Shared pytest configuration: the environment every test sees and the expensive shared fixtures.

Helpers tests import (stems, signals, glued values) live in ``tests/stems.py``, importable as
``stems`` because ``pythonpath = ["tests"]`` (pyproject.toml).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("SILICON_SING_ROOT", str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


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



@pytest.fixture(scope="module")
def passt():
    """PaSST with random-init weights (no download), 0.5 s windows, on CPU."""
    from silicon_sing.metrics.passt import PasstBackend

    return PasstBackend(pretrained=False, seed=0, window_seconds=0.5, device="cpu")


@pytest.fixture(scope="module")
def vggish():
    """VGGish with random-init weights (no download), on CPU."""
    from silicon_sing.metrics.vggish import VggishBackend

    return VggishBackend(pretrained=False, seed=0, device="cpu")
