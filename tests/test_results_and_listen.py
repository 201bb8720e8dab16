"""The listening room, result formatting and provenance: the functions notebooks 04–06 call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from silicon_sing.generate import Generation
from silicon_sing.listen import COLUMNS, listening_examples, listening_panel, listening_room_html
from silicon_sing.metrics.stats import CellResult, DeltaResult
from silicon_sing.params import load_params
from silicon_sing.provenance import hardware, package_versions, pinned_requirements, stage_timings
from silicon_sing.results import delta_summary, direction_sentence, glue_values, table1_display, voicing_table

REPO = Path(__file__).resolve().parents[1]
SR = 32000


def tone(f0: float | None, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone (pitched) or noise (f0=None)."""
    t = np.arange(int(seconds * SR)) / SR
    if f0 is None:
        return 0.1 * np.random.default_rng(seed).standard_normal(t.size).astype(np.float32)
    return (0.2 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))).astype(np.float32)


@pytest.fixture
def generations(tmp_path: Path) -> list[Generation]:
    """Originals are pitched voices; the baseline continues with noise, the fine-tune with a voice."""
    gens = []
    for artist, f0 in (("Ana", 220.0), ("Bo", 150.0)):
        for i in range(3):
            orig = tmp_path / f"{artist}{i}-orig.wav"
            sf.write(str(orig), tone(f0), SR)
            for system, gen in (("baseline", tone(None, seed=i)), ("fine-tuned", tone(f0 * 1.02))):
                path = tmp_path / f"{artist}{i}-{system}.wav"
                sf.write(str(path), np.concatenate([tone(f0)[:SR], gen[SR:]]), SR)
                gens.append(Generation(f"{artist}/t/acapella/{i:03d}", artist, "acapella", system, str(orig), str(path),
                                       1.0, 3.0, "uuid a caption", 7, "nano", "fp", {}, 0.1))
    return gens


def test_listening_room_pairs_systems_and_cuts_the_prompt(generations) -> None:
    """Each example has four clips; continuations start after the prompt; the HTML has every player."""
    params = load_params(REPO / "params" / "smoke.yaml")
    exs = listening_examples(params, per_cell=2, generations=generations)
    assert len(exs) == 4 and {e.artist for e in exs} == {"Ana", "Bo"}
    for e in exs:
        assert list(e.clips) == list(COLUMNS)
        assert len(e.clips["prompt"]) == SR and all(len(e.clips[c]) == 2 * SR for c in COLUMNS[1:])
    html = listening_room_html(exs)
    assert html.count("<audio") == 16 and html.count("data:image/png;base64,") == 4
    assert "uuid a caption" in html and "<details" in html
    assert listening_room_html(exs, "full").startswith("<p><em>No continuations")
    panel = listening_panel(exs)
    assert "<audio" in panel.children[1].value
    lone = [g for g in generations if g.system == "baseline"]
    assert listening_examples(params, generations=lone) == []


def test_voicing_separates_a_voice_from_noise(generations) -> None:
    """The pitch proxy sees voices in the originals and the fine-tune, not in the noisy baseline."""
    v = voicing_table(generations).set_index(["artist", "source"])
    for artist, f0 in (("Ana", 220.0), ("Bo", 150.0)):
        assert v.loc[(artist, "original"), "voiced"] > 0.8
        assert v.loc[(artist, "fine-tuned"), "voiced"] > 0.8
        assert v.loc[(artist, "baseline"), "voiced"] < 0.3
        assert abs(v.loc[(artist, "original"), "f0_median"] - f0) < 5


def cells_and_deltas() -> tuple[list[CellResult], list[DeltaResult]]:
    """Two artists' acapella cells and their deltas, one clearly improved, one unclear."""
    cells = [CellResult("A", "acapella", s, 4, kl, (kl - .1, kl + .1), fad, (fad - 5, fad + 5), fad)
             for s, kl, fad in (("baseline", 0.9, 50.0), ("fine-tuned", 0.3, 40.0))]
    cells += [CellResult("B", "acapella", s, 5, 0.5, (0.2, 0.8), 30.0, (20, 40), 30.0) for s in ("baseline", "fine-tuned")]
    deltas = [DeltaResult("A", "acapella", "kl", 4, 0.9, 0.3, -0.6, (-0.8, -0.4)),
              DeltaResult("B", "acapella", "kl", 5, 0.5, 0.45, -0.05, (-0.3, 0.2)),
              DeltaResult("A", "acapella", "fad", 4, 50, 40, -10, (-15, 2)),
              DeltaResult("B", "acapella", "fad", 5, 30, 33, 3, (1, 6))]
    return cells, deltas


def test_delta_sentences_count_directions_and_intervals() -> None:
    """The prose counts are computed from the deltas, including which intervals exclude zero."""
    cells, deltas = cells_and_deltas()
    s = delta_summary(deltas)
    assert s["acapella_kl"] == {"cells": 2, "lower": 2, "sig_lower": 1, "sig_higher": 0, "mean_delta": pytest.approx(-0.325)}
    assert direction_sentence(s["acapella_kl"], "KL") == "KL fell for 2 of 2 artists (for 1 the whole interval is below zero)"
    assert direction_sentence(s["acapella_fad"], "FAD") == "FAD fell for 1 of 2 artists (for 1 it rose, the whole interval above zero)"
    g = glue_values(cells, deltas)
    assert g["n_min"] == "4" and g["n_max"] == "5" and g["acapella_kl_mean_delta"] == "-0.325"
    assert g["full_kl_direction"] == "no KL comparison was possible"


def test_table1_display_merges_values_intervals_and_published() -> None:
    """Cells read 'value [low, high]'; missing values are dashes; the paper's figures sit beside."""
    from silicon_sing import metrics as M

    cells, _ = cells_and_deltas()
    shown = table1_display(M.table1(cells, ci=True))
    assert shown.loc[("acapella", "A"), ("baseline", "KL")] == "0.900 [0.800, 1.000]"
    assert shown.loc[("acapella", "A"), ("fine-tuned", "n")] == "4"
    assert shown.loc[("acapella", "Kanye"), ("baseline", "KL (paper)")] == "0.23"
    assert shown.loc[("acapella", "Kanye"), ("baseline", "KL")] == "—"


def test_provenance_reports_this_machine_and_the_pins(tmp_path: Path) -> None:
    """Hardware, versions and pins are read, not typed; missing timings give an empty table."""
    hw = hardware()
    assert hw["cpu_cores"] >= 1 and hw["gpus"] >= 0
    assert package_versions(("torch", "no-such-package")) ["no-such-package"] == "not installed"
    pins = pinned_requirements(REPO)
    assert "torch==2.9.1" in pins and "audiocraft==1.3.0" in pins
    params = load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(tmp_path)})
    assert isinstance(stage_timings(params), pd.DataFrame) and stage_timings(params).empty
