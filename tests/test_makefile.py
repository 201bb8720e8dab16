"""The Makefile's own logic, run for real against a stand-in interpreter that records what it is asked.

``make paper`` must swap the ``essentia`` wheel for ``essentia-tensorflow`` (the same module; never
both), and a later reinstall must not bring ``essentia`` back beside it. The stand-in ``python``
logs every call and answers ``pip show`` from a little state directory, so the recipes run
exactly as written without installing anything.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIM = r"""#!/usr/bin/env bash
echo "$*" >> "$SHIM_LOG"
if [ "$1 $2 $3" = "-m pip show" ]; then [ -f "$SHIM_STATE/$4" ]; exit; fi
if [ "$1 $2 $3" = "-m pip install" ]; then
  for a in "$@"; do case "$a" in *==*) touch "$SHIM_STATE/${a%%==*}";; esac; done
  if [ "$4" = "-r" ]; then grep -q '^essentia==' "$5" && touch "$SHIM_STATE/essentia"; fi
fi
if [ "$1 $2 $3 $4" = "-m pip uninstall -y" ]; then rm -f "$SHIM_STATE/$5"; fi
exit 0
"""


@pytest.fixture()
def fake_venv(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(SHIM)
    (venv / "bin" / "python").chmod(0o755)
    (tmp_path / "state").mkdir()
    env = {**os.environ, "SHIM_LOG": str(tmp_path / "log"), "SHIM_STATE": str(tmp_path / "state")}
    return venv, env


def _make(target: str, venv: Path, env: dict[str, str]) -> list[str]:
    log = Path(env["SHIM_LOG"])
    log.write_text("")
    proc = subprocess.run(["make", "-C", str(REPO), target, f"VENV={venv}", f"PYTHON={venv / 'bin' / 'python'}"],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return log.read_text().splitlines()


def test_make_paper_swaps_essentia_for_essentia_tensorflow_once(fake_venv: tuple[Path, dict[str, str]]) -> None:
    venv, env = fake_venv
    version = re.search(r"^essentia==(\S+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)
    calls = _make("paper", venv, env)
    state = Path(env["SHIM_STATE"])
    assert "-m pip install -r requirements.txt" in calls  # a fresh venv gets the pinned stack first
    swap = [calls.index("-m pip uninstall -y essentia"), calls.index(f"-m pip install essentia-tensorflow=={version}")]
    book = calls.index("-m silicon_sing.pipeline book --params params/paper.yaml")
    assert swap[0] < swap[1] < book
    assert (state / "essentia-tensorflow").exists() and not (state / "essentia").exists()

    again = _make("paper", venv, env)  # already swapped: no reinstall, no second swap
    assert not any("uninstall" in c or c.startswith("-m pip install essentia-tensorflow") for c in again)

    for stamp in venv.glob(".installed-*"):
        stamp.unlink()  # as when requirements.txt changes
    reinstall = _make("install", venv, env)
    assert "-m pip install -r requirements.txt" not in reinstall
    filtered = venv / "requirements-essentia-tf.txt"
    assert f"-m pip install -r {filtered}" in reinstall and "essentia==" not in filtered.read_text()
    assert not (state / "essentia").exists()  # never both


def test_make_book_keeps_plain_essentia(fake_venv: tuple[Path, dict[str, str]]) -> None:
    venv, env = fake_venv
    calls = _make("book", venv, env)
    assert not any(c.startswith("-m pip install essentia-tensorflow") or "uninstall" in c for c in calls)
    assert "-m silicon_sing.pipeline book --params params/smoke.yaml" in calls
