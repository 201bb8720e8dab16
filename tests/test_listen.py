"""The listening room of notebook 05 (silicon_sing.listen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fake_generations import SR, make_generations
from silicon_sing.generate import Generation
from silicon_sing.listen import (
    CODEC_COLUMNS,
    COLUMNS,
    codec_examples,
    codec_room_html,
    lines_label,
    listening_examples,
    listening_panel,
    listening_room_html,
    spectrogram_png,
)
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
    assert html.count("lines/frame</span>") == 16  # each label counts its clip's harmonic lines
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


def test_codec_section_plays_each_category_through_the_codec_alone(generations) -> None:
    """One example per category: its original continuation and the same span after the round trip."""
    params = load_params(REPO / "params" / "smoke.yaml")
    exs = listening_examples(params, per_cell=2, generations=generations)
    calls = []

    def half_and_delay(y, sr):  # a codec that halves the level and delays by 10 samples, at the clip's length
        calls.append(len(y))
        return np.concatenate([np.zeros(10, np.float32), 0.5 * y[:-10]])

    rows = codec_examples(exs, half_and_delay)
    by_cat = {}
    for e in exs:
        by_cat.setdefault(e.category, e)
    assert [r.example_id for r in rows] == [e.example_id for e in by_cat.values()]
    for r in rows:
        ex = by_cat[r.category]
        assert list(r.clips) == list(CODEC_COLUMNS)
        assert np.array_equal(r.clips["original"], ex.clips["original"])
        # prompt and continuation went through together: the cut comes after the round trip
        whole = np.concatenate([ex.clips["prompt"], ex.clips["original"]])
        assert np.allclose(r.clips[CODEC_COLUMNS[1]], 0.5 * whole[len(ex.clips["prompt"]) - 10:-10])
    assert calls == [len(by_cat[r.category].clips["prompt"]) + len(by_cat[r.category].clips["original"]) for r in rows]
    html = codec_room_html(rows)
    assert html.count("<audio") == 2 * len(rows) and html.count('<div class="listen-grid">') == len(rows)
    assert "<figcaption>codec round trip <span" in html
    assert codec_room_html([]).startswith("<p><em>No continuations")
    identity = codec_examples(exs, lambda y, sr: y, per_category=2)
    counts = {c: sum(e.category == c for e in exs) for c in by_cat}
    assert len(identity) == sum(min(2, n) for n in counts.values()) > len(rows)
    assert all(np.array_equal(r.clips["original"], r.clips[CODEC_COLUMNS[1]]) for r in identity)


def test_each_clip_label_counts_its_harmonic_lines() -> None:
    """A melody of sine notes draws one line per frame, noise none; a clip too short to measure gets no count."""
    t = np.arange(SR) / SR
    notes = np.concatenate([0.1 * np.sin(2 * np.pi * f * t) for f in (1500.0, 1800.0, 1600.0)]).astype(np.float32)
    assert lines_label(notes, SR) == "1.0 lines/frame"
    assert lines_label((0.1 * np.random.default_rng(0).standard_normal(3 * SR)).astype(np.float32), SR) == "0.0 lines/frame"
    assert lines_label(np.zeros(0, np.float32), SR) == "" == lines_label(np.zeros(100, np.float32), SR)


def _row_profile(png: bytes) -> np.ndarray:
    """Mean brightness of each image row (top = highest band) of a spectrogram PNG."""
    import io

    import matplotlib.image as mpimg

    rgb = mpimg.imread(io.BytesIO(png))[..., :3]
    return rgb.mean(axis=(1, 2))


def test_room_spectrograms_resolve_the_lines_the_label_counts() -> None:
    """Two partials 250 Hz apart near 2 kHz (a voice's or a chord's harmonics) show as two bright rows with a
    dark row between, as in the bands that count the lines; a 48-band strip drew them as one smear."""
    t = np.arange(2 * SR) / SR
    x = (0.1 * np.sin(2 * np.pi * 2000.0 * t) + 0.1 * np.sin(2 * np.pi * 2250.0 * t)).astype(np.float32)
    rows = _row_profile(spectrogram_png(x, SR))
    peaks = [i for i in range(1, len(rows) - 1) if rows[i] > rows[i - 1] and rows[i] >= rows[i + 1]
             and rows[i] > rows.max() - 0.25]
    assert len(peaks) == 2, (peaks, rows.round(2))
    assert rows[peaks[0]:peaks[1] + 1].min() < rows.max() - 0.2  # a dark gap between the lines, not a smear
    assert len(rows) == 128  # one row per band of the harmonic-line count (music.LINE_BANDS)
    noise = (0.1 * np.random.default_rng(0).standard_normal(4 * SR)).astype(np.float32)
    png = spectrogram_png(noise, SR)  # the worst case for compression: 128 x 200 pixels of noise
    assert len(png) < 128 * 200, len(png)  # under a byte a pixel: the room inlines ~100 of these
