"""The linters pass: ruff (rules in pyproject.toml) on the code and tests, mypy on the package.

Both run as subprocesses with the interpreter running the tests, so the pinned versions
(requirements.txt) are the ones that judge; a failure shows their full output.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINTED = ["src", "tests", "scripts", "benchmarks"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <args>`` in the repository root, capturing its output."""
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=900)


def test_ruff_finds_nothing() -> None:
    proc = _run("ruff", "check", "--output-format", "concise", *LINTED)
    assert proc.returncode == 0, f"ruff check {' '.join(LINTED)} failed:\n{proc.stdout}{proc.stderr}"


def test_mypy_passes_on_the_package() -> None:
    proc = _run("mypy")  # files and settings: [tool.mypy] in pyproject.toml
    assert proc.returncode == 0, f"mypy failed:\n{proc.stdout}{proc.stderr}"
