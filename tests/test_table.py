"""Tests for silicon_sing.metrics.table: Table 1 and the published figures."""

from __future__ import annotations

from pathlib import Path

from silicon_sing.metrics.table import PUBLISHED_TABLE1, load_published_table1


def test_published_table1_asset():
    pub = load_published_table1()
    assert len(pub) == 18 and set(pub["category"]) == {"instrumental", "acapella", "full"}
    assert set(pub["model"]) == {"baseline", "fine-tuned"}
    shared = Path(__file__).resolve().parents[2] / "shared" / "reference" / "table1_published.csv"
    if shared.exists():
        assert PUBLISHED_TABLE1.read_text() == shared.read_text()
