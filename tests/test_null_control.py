"""The A/A control: the baseline against itself under other seeds, counted, sized and shown."""

from __future__ import annotations

import json
import math
import typing
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import stats as sps

from silicon_sing import generate as G
from silicon_sing.fsutil import file_sha1, read_json
from silicon_sing.metrics.null_control import (
    NullControl,
    binomial_tail,
    control_categories,
    main,
    read_null_control,
    summarise_null_control,
)
from silicon_sing.metrics.stats import DeltaResult
from silicon_sing.params import CATEGORIES, Category, ParamsError, load_params
from silicon_sing.results import null_control_sentence, null_control_stem_glue, null_control_table_html

REPO = Path(__file__).resolve().parents[1]
NAN = math.nan


def delta(artist: str, category: str, metric: str, d: float, ci: tuple[float, float], n_tracks: int = 3) -> DeltaResult:
    """A DeltaResult with only what the control reads."""
    return DeltaResult(artist, category, metric, 6, 1.0, 1.0 + d, d, ci, "baseline", G.RESEEDED, n_tracks, 6)


@pytest.mark.parametrize("k, n, p", [(0, 9, 0.05), (1, 9, 0.05), (3, 9, 0.05), (9, 9, 0.05), (4, 27, 0.05),
                                     (2, 3, 0.5)])
def test_binomial_tail_is_the_survival_function(k: int, n: int, p: float) -> None:
    assert binomial_tail(k, n, p) == pytest.approx(float(sps.binom.sf(k - 1, n, p)), rel=1e-12, abs=1e-15)


def test_false_alarms_are_counted_over_cells_that_have_an_interval() -> None:
    """Below, above, straddling zero, and a cell with one test track (no interval, not counted)."""
    deltas = [delta("A", "instrumental", "kl", -0.02, (-0.03, -0.01)),
              delta("B", "instrumental", "kl", 0.01, (-0.02, 0.04)),
              delta("C", "instrumental", "kl", 0.05, (NAN, NAN), n_tracks=1),
              delta("A", "instrumental", "fad", 3.0, (1.0, 5.0)),
              delta("B", "instrumental", "fad", -1.0, (-4.0, 2.0)),
              delta("C", "instrumental", "fad", 2.0, (NAN, NAN), n_tracks=1)]
    real = [delta("A", "instrumental", "kl", -0.2, (-0.3, -0.1)), delta("A", "acapella", "kl", 9.0, (8.0, 10.0)),
            delta("A", "instrumental", "fad", 10.0, (5.0, 15.0))]
    c = summarise_null_control(deltas, 0.95, real)
    assert c.categories == ["instrumental"]
    assert [len(c.testable(m)) for m in ("kl", "fad")] == [2, 2]
    assert [c.false_alarms(m) for m in ("kl", "fad")] == [1, 1]
    assert c.p_value("kl") == pytest.approx(1 - 0.95**2)
    assert c.median_abs_change("kl") == pytest.approx(0.02)  # median of 0.02, 0.01, 0.05
    assert c.real_median_abs_change == {"kl": pytest.approx(0.2), "fad": pytest.approx(10.0)}  # acapella left out
    back = NullControl.from_dict(json.loads(json.dumps(c.to_dict(), allow_nan=False)))  # strict JSON: NaN -> null
    assert back.false_alarms("kl") == 1 and len(back.testable("fad")) == 2
    assert back.real_median_abs_change == c.real_median_abs_change


def test_the_sentence_reports_counts_chance_and_sizes_and_says_how_to_run_it_when_absent() -> None:
    c = summarise_null_control([delta("A", "acapella", "kl", 0.01, (-0.01, 0.03)),
                                delta("A", "acapella", "fad", -2.0, (-5.0, -1.0))], 0.95,
                               [delta("A", "acapella", "kl", 0.2, (0.1, 0.3))])
    s = null_control_sentence(c)
    assert "0 of 1 KL intervals and 1 of 1 FAD intervals excluded zero" in s
    assert "5\u00a0% are expected" in s and "honest intervals: FAD 0.05" in s and "KL 1.00" not in s
    assert "0.010 KL" in s and "2.0 FAD" in s and "fine-tuning by 0.200 KL" in s
    assert "evaluate.null_control" in null_control_sentence(None)
    half = summarise_null_control([delta("A", "full", "kl", 0.01, (-0.01, 0.03)), delta("A", "full", "fad", 1.0, (NAN, NAN), 1)],
                                  0.95)
    assert "0 of 1 KL intervals and no FAD interval" in null_control_sentence(half)
    lone = summarise_null_control([delta("A", "full", "kl", 0.01, (NAN, NAN), 1), delta("A", "full", "fad", 1.0, (NAN, NAN), 1)],
                                  0.95)
    assert "could not test the intervals" in null_control_sentence(lone) and "0 of 0" not in null_control_sentence(lone)


def test_the_table_escapes_artists_and_marks_false_alarms() -> None:
    c = summarise_null_control([delta("<script>x</script>", "full", "kl", 0.02, (0.01, 0.03)),
                                delta("<script>x</script>", "full", "fad", 1.0, (-1.0, 3.0))], 0.95)
    html = null_control_table_html(c, [], "caption")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.count("⚠") == 1 and "reseeded − baseline" in html and "fine-tuned − baseline" in html


def test_each_stem_types_changes_are_set_beside_what_reseeding_alone_changes_there() -> None:
    """The analysis page quotes, per stem type, the control's median change beside fine-tuning's (or says none ran)."""
    control = summarise_null_control([delta("A", "acapella", "kl", -0.02, (-0.05, 0.01)),
                                      delta("B", "acapella", "kl", 0.06, (-0.01, 0.12)),
                                      delta("C", "acapella", "kl", 0.10, (0.0, 0.2)),
                                      delta("A", "acapella", "fad", -160.0, (-300.0, 10.0)),
                                      delta("B", "acapella", "fad", 40.0, (-90.0, 170.0)),
                                      delta("A", "instrumental", "kl", 5.0, (-9.0, 9.0))], 0.95)
    real = [delta("A", "acapella", "kl", 0.03, (-0.1, 0.1)), delta("B", "acapella", "kl", -0.09, (-0.2, 0.0)),
            delta("A", "acapella", "fad", -20.0, (-50.0, 10.0)), delta("B", "acapella", "fad", 60.0, (0.0, 90.0)),
            delta("A", "full", "kl", 0.5, (0.1, 0.9))]
    glue = null_control_stem_glue(control, real)
    assert set(glue) == {"instrumental_null_control", "acapella_null_control", "full_null_control"}
    # acapella: reseeding's medians |KL| 0.06, |FAD| 100; fine-tuning's 0.06 and 40 (0.4x); other stems never mixed in
    assert glue["acapella_null_control"] == (
        "sampled again under other seeds, the unchanged baseline moved an artist's cell by a median of 0.060 KL "
        "and 100.0 FAD, fine-tuning by 0.060 KL (1.0\u00d7 that) and 40.0 FAD (0.4\u00d7 that)")
    assert "fine-tuning by" not in glue["instrumental_null_control"]  # no fine-tuned deltas of that stem type
    assert glue["full_null_control"].startswith("no A/A control was run for full mixes")
    assert "evaluate.null_control" in glue["full_null_control"]
    assert all(v.startswith("no A/A control was run") for v in null_control_stem_glue(None, real).values())


def test_categories_come_from_the_parameter_file_and_are_checked() -> None:
    assert set(typing.get_args(Category)) == set(CATEGORIES)  # the parameter's type spells the stem types again
    params = load_params(REPO / "params" / "paper.yaml")
    assert control_categories(params) == ["instrumental", "acapella", "full"]
    smoke = load_params(REPO / "params" / "smoke.yaml")
    # the book a reader renders controls every stem type too: each fine-tune's change has its reseeding beside it
    assert control_categories(smoke) == ["instrumental", "acapella", "full"]
    assert control_categories(smoke, ["full", "instrumental"]) == ["instrumental", "full"]
    with pytest.raises(ValueError, match="vocals"):
        control_categories(smoke, ["vocals"])
    with pytest.raises(ParamsError, match=r"evaluate\.null_control\[0\]"):
        load_params(REPO / "params" / "smoke.yaml", {"evaluate.null_control": ["vocals"]})


def test_the_reseeded_system_is_the_baseline_model_under_other_seeds() -> None:
    params = load_params(REPO / "params" / "smoke.yaml")
    assert G.model_for(params, G.RESEEDED, "acapella") == G.model_for(params, G.BASELINE, "acapella")
    with pytest.raises(ValueError, match="unknown system"):
        G.model_for(params, "finetuned", "acapella")
    s = G.GenerationSettings.from_params(params)
    from silicon_sing.data import HeldOutExample

    batch = [HeldOutExample("A/t0/acapella/0", "A", "acapella", "A/t0", 0, "x.wav", "caption", 4.0)]
    assert G.batch_seed(s, batch, G.FINETUNED) == G.batch_seed(s, batch, G.BASELINE)
    assert G.batch_seed(s, batch, G.RESEEDED) != G.batch_seed(s, batch, G.BASELINE)


def test_null_control_on_the_smoke_run(smoke_run, capsys) -> None:
    """Notebook 04 ran the control on every smoke stem type (params/smoke.yaml); `make null-control` makes only
    what is missing (here: the acapella copies, lost): a reseeded baseline, evaluated against the baseline as a
    fine-tune would be, with the study's own generations and metrics left as they were and the rest reused."""
    params, _ = smoke_run
    assert params.evaluate.null_control == ["instrumental", "acapella", "full"]
    assert read_null_control(params).categories == ["instrumental", "acapella", "full"]  # type: ignore[union-attr]
    overrides = json.dumps({"run_dir": str(params.run_dir)})
    before = {p: file_sha1(p) for p in sorted((params.run.generations / G.BASELINE).rglob("*.wav"))}
    made = {g.generated: Path(g.generated).stat().st_mtime_ns for g in G.load_generations(params.run_dir, [G.RESEEDED])}
    assert len(made) == len(before)  # every test prompt of every stem type, sampled again
    lost = [p for p in made if "/acapella/" in str(p)]
    for p in lost:
        Path(p).unlink()
        Path(p).with_suffix(".json").unlink()
    done = {p: t for p, t in made.items() if p not in lost}
    metrics_before = file_sha1(params.run.metrics_json)

    # other sampling settings than the run's: the control would sample another baseline, so it refuses
    hotter = json.dumps({"run_dir": str(params.run_dir), "evaluate.temperature": 0.9})
    with pytest.raises(ValueError, match="other sampling settings or another model"):
        main(["--params", str(REPO / "params" / "smoke.yaml"), "--overrides", hotter, "--categories", "acapella"])
    assert {p: file_sha1(p) for p in sorted((params.run.generations / G.BASELINE).rglob("*.wav"))} == before

    assert main(["--params", str(REPO / "params" / "smoke.yaml"), "--overrides", overrides,
                 "--categories", "acapella", "instrumental"]) == 0
    out = capsys.readouterr().out
    assert "KL: " in out and "FAD: " in out and str(params.run.null_control) in out

    assert {p: file_sha1(p) for p in sorted((params.run.generations / G.BASELINE).rglob("*.wav"))} == before
    assert file_sha1(params.run.metrics_json) == metrics_before
    assert {p: Path(p).stat().st_mtime_ns for p in done} == done  # the notebook's other copies were reused
    reseeded = G.load_generations(params.run_dir, [G.RESEEDED])
    assert sorted(g.generated for g in reseeded) == sorted(made) and all(Path(p).exists() for p in lost)
    baseline = {g.example_id: g for g in G.load_generations(params.run_dir, [G.BASELINE])}
    differ = 0
    for g in reseeded:
        b = baseline[g.example_id]
        assert (g.model, g.caption, g.original) == (b.model, b.caption, b.original) and g.seed != b.seed
        x, sr = sf.read(g.generated)
        y, _ = sf.read(b.generated)
        cut = int(g.prompt_seconds * sr)
        differ += not np.allclose(x[cut:], y[cut:], atol=1e-3)
    assert differ == len(reseeded)  # every continuation was sampled anew

    control = read_null_control(params)
    assert control is not None and control.categories == ["instrumental", "acapella"]
    assert [len(control.testable(m)) for m in ("kl", "fad")] == [6, 6]  # 3 artists × 2 stems, 3 test tracks each
    assert set(control.real_median_abs_change) == {"kl", "fad"}
    assert read_json(params.run.null_control_metrics)["meta"]["finetuned"] == G.RESEEDED
    assert "of 6 KL intervals" in null_control_sentence(control)
