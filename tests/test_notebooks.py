"""The committed source notebooks: no outputs, one parameters cell."""

from __future__ import annotations

from pathlib import Path

import pytest

from silicon_sing.nbtools import check_notebook

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("nb", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_source_notebooks_are_clean_and_parameterised(nb: Path) -> None:
    """Committed notebooks carry no outputs and exactly one parameters cell."""
    assert check_notebook(nb) == []
