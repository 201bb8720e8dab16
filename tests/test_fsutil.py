"""Tests for silicon_sing.fsutil: atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from silicon_sing.fsutil import atomic_path, atomic_write_json, read_json


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    """A failing write keeps the previous content and leaves no temporary file behind."""
    target = tmp_path / "x.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert read_json(target) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["x.json"]
