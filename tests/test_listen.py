"""The listening room of notebook 05 (silicon_sing.listen)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_generations import SR, make_generations
from silicon_sing.generate import Generation
from silicon_sing.listen import COLUMNS, listening_examples, listening_panel, listening_room_html
from silicon_sing.params import load_params

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def generations(tmp_path: Path) -> list[Generation]:
    """Pitched originals, a noisy baseline, a fine-tune that keeps the voice (two artists, three examples each)."""
    return make_generations(tmp_path)


def test_listening_room_pairs_systems_and_cuts_the_prompt(generations) -> None:
    """Each example has four clips; continuations start after the prompt; the HTML has every player."""
    params = load_params(REPO / "params" / "smoke.yaml")
    exs = listening_examples(params, per_cell=2, generations=generations)
    assert len(exs) == 4 and {e.artist for e in exs} == {"Ana", "Bo"}
    for e in exs:
        assert list(e.clips) == list(COLUMNS)
        assert len(e.clips["prompt"]) == SR and all(len(e.clips[c]) == 2 * SR for c in COLUMNS[1:])
    html = listening_room_html(exs)
    assert html.count("<audio") == 16 and html.count("data:image/png;base64,") == 16  # a spectrogram per clip
    assert html.count('<div class="listen-grid">') == 4 and "<table" not in html  # a grid, not a fixed-width table
    assert "uuid a caption" in html and "<details" in html
    assert listening_room_html(exs, "full").startswith("<p><em>No continuations")
    panel = listening_panel(exs)
    assert "<audio" in panel.children[1].value
    lone = [g for g in generations if g.system == "baseline"]
    assert listening_examples(params, generations=lone) == []


def test_listening_room_spans_tracks_before_repeating_one(generations) -> None:
    """With two examples per cell and several test tracks, the room shows two songs, not two cuts of one."""
    import dataclasses

    params = load_params(REPO / "params" / "smoke.yaml")
    # Ana's three examples: track t0 segments 000 and 001, track t1 segment 000
    ids = {"Ana/t/acapella/000": "Ana/t0/acapella/000", "Ana/t/acapella/001": "Ana/t0/acapella/001",
           "Ana/t/acapella/002": "Ana/t1/acapella/000"}
    gens = [dataclasses.replace(g, example_id=ids.get(g.example_id, g.example_id)) for g in generations]
    ana = [e.example_id for e in listening_examples(params, per_cell=2, generations=gens) if e.artist == "Ana"]
    assert ana == ["Ana/t0/acapella/000", "Ana/t1/acapella/000"]
