"""Shared pytest configuration: the environment every test sees and the expensive shared fixtures.

Helpers tests import (stems, signals, glued values) live in ``tests/stems.py``, importable as
``stems`` because ``pythonpath = ["tests"]`` (pyproject.toml).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("SILICON_SING_ROOT", str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class Rehearsal:
    """``make rehearsal`` into a temporary cache and run dir, started once in the background and waited on."""

    def __init__(self, root: Path) -> None:
        self.cache, self.run_dir, self.log = root / "cache", root / "run", root / "make.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Launch the Makefile target (once), with this interpreter's environment; output goes to ``make.log``.

        The target's ``install`` prerequisite runs first, in the foreground: it re-points the editable install,
        which must not happen while the smoke notebooks' kernels import the package. The rest (``-o install``:
        every other recipe of ``make rehearsal``, as a user's shell runs them) goes to the background."""
        if self._proc is None:
            make = ["make", "-C", str(REPO), f"VENV={sys.prefix}", f"PYTHON={sys.executable}"]
            with self.log.open("wb") as log:
                installed = subprocess.run([*make, "install"], stdout=log, stderr=subprocess.STDOUT).returncode == 0
                # a failed install: the target as a whole, in the background, fails with it (and logs why)
                self._proc = subprocess.Popen([*make, *(["-o", "install"] if installed else []), "rehearsal",
                                               f"REHEARSAL_CACHE={self.cache}", f"RUN_DIR={self.run_dir}"],
                                              stdout=log, stderr=subprocess.STDOUT)

    def wait(self) -> int:
        """Start if need be; block until the target ends; its exit status."""
        self.start()
        assert self._proc is not None
        return self._proc.wait()


@pytest.fixture(scope="session")
def rehearsal_job(tmp_path_factory: pytest.TempPathFactory) -> Rehearsal:
    """The one ``make rehearsal`` of the session (not yet started)."""
    return Rehearsal(tmp_path_factory.mktemp("rehearsal"))


def _uses_rehearsal(session: pytest.Session) -> bool:
    return any("rehearsal_job" in getattr(item, "fixturenames", ()) for item in session.items)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """Execute all notebooks once, in order, into a temporary run directory (the smoke profile).

    When the rehearsal's tests are selected too, ``make rehearsal`` runs beside the notebooks: either one alone
    leaves a core idle much of the time (kernel start-ups, single-threaded stages), and the pair shares the two
    cores. The fixture waits for both, so no other test runs while they do and no timing test sees their load."""
    from silicon_sing.params import load_params
    from silicon_sing.pipeline import run_notebooks

    job: Rehearsal | None = request.getfixturevalue("rehearsal_job") if _uses_rehearsal(request.session) else None
    if job is not None:
        job.start()
    run_dir = tmp_path_factory.mktemp("smoke-run")
    params = load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(run_dir)})
    try:
        timings = run_notebooks(params)
    finally:
        if job is not None:
            job.wait()  # its outcome is the rehearsal tests' to judge
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
