"""Tests for silicon_sing.metrics.evaluation: pairs → cells, deltas, metrics JSON, reruns."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from silicon_sing.audio import save_audio
from silicon_sing.metrics.backends import MelStatsEmbedding, SpectralClassesBackend
from silicon_sing.metrics.evaluation import EvalPair, evaluate, read_metrics, write_metrics
from silicon_sing.metrics.stats import bootstrap_mean_ci
from silicon_sing.metrics.table import cells_frame, delta_table, table1
from stems import noise, tone

SR = 32000


def make_pairs(root: Path) -> list[EvalPair]:
    """2 artists × 1 category × 2 systems × 4 examples; fine-tuned = original + a little noise."""
    pairs = []
    rng = np.random.default_rng(10)
    for artist, f0 in (("juice_wrld", 220.0), ("Synth Singer", 330.0)):
        for i in range(4):
            orig = tone(f0 * (1 + 0.05 * i), seconds=1.0) + noise(1.0, seed=i, amp=0.01)
            o = save_audio(root / artist / f"orig{i}.wav", orig, SR)
            ft = save_audio(root / artist / f"ft{i}.wav", orig + noise(1.0, seed=100 + i, amp=0.01), SR)
            base = save_audio(root / artist / f"base{i}.wav", noise(1.0, seed=200 + i, amp=0.1)
                              + tone(rng.uniform(1000, 3000), 1.0, amp=0.1), SR)
            pairs.append(EvalPair(str(o), str(base), artist, "instrumental", "baseline", f"ex{i}"))
            pairs.append(EvalPair(str(o), str(ft), artist, "instrumental", "fine-tuned", f"ex{i}"))
    return pairs


def test_evaluate_cells_deltas_json_and_table1(tmp_path):
    pairs = make_pairs(tmp_path / "audio")
    report = evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=200, seed=0)
    assert len(report.cells) == 4 and len(report.deltas) == 4
    for c in report.cells:
        assert c.n == 4 and c.kl_ci[0] <= c.kl <= c.kl_ci[1] and c.fad_ci[0] <= c.fad_ci[1]
        assert c.n_frames_original == c.n_frames_generated == 4 * 32 and math.isfinite(c.fad_inf)
        assert c.example_ids == ["ex0", "ex1", "ex2", "ex3"] and len(c.kl_values) == 4
    by = {(c.artist, c.system): c for c in report.cells}
    for artist in ("juice_wrld", "Synth Singer"):
        assert by[(artist, "fine-tuned")].kl < by[(artist, "baseline")].kl
        assert by[(artist, "fine-tuned")].fad < by[(artist, "baseline")].fad
    for d in report.deltas:
        assert d.n == 4 and d.delta < 0 and d.ci[0] <= d.ci[1] and d.delta == pytest.approx(d.finetuned - d.baseline)
    # a second run reads the cache and reproduces the numbers exactly
    again = evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=200, seed=0)
    assert [c.fad_ci for c in again.cells] == [c.fad_ci for c in report.cells]

    cell = {(c.artist, c.system): c for c in report.cells}
    d_fad = next(d for d in report.deltas if d.artist == "juice_wrld" and d.metric == "fad")
    assert d_fad.baseline == cell[("juice_wrld", "baseline")].fad  # same examples: the cells' FADs
    bad = pairs[:-1] + [EvalPair(pairs[0].original, *[getattr(pairs[-1], k) for k in
                                                      ("generated", "artist", "category", "system", "example_id")])]
    with pytest.raises(ValueError, match="two originals"):
        evaluate(bad, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=10)

    path = write_metrics(tmp_path / "metrics" / "metrics.json", report)
    back = read_metrics(path)
    assert back.cells == report.cells and back.deltas == report.deltas
    assert back.meta["kl_backend"] == "spectral-classes" and back.meta["n_boot"] == 200
    assert "NaN" not in path.read_text()

    t = table1(report.cells, ci=True)
    assert ("baseline", "KL", "published") in t.columns and ("fine-tuned", "FAD", "ci_high") in t.columns
    assert list(t.index.get_level_values("category").unique()) == ["instrumental", "acapella", "full"]
    row = t.loc[("instrumental", "Juice WRLD")]  # our juice_wrld matched to the published artist
    assert row[("baseline", "KL", "published")] == 0.75 and row[("baseline", "n", "ours")] == 4
    assert row[("fine-tuned", "KL", "ours")] == pytest.approx(by[("juice_wrld", "fine-tuned")].kl)
    assert math.isnan(t.loc[("instrumental", "Synth Singer"), ("baseline", "KL", "published")])
    assert math.isnan(t.loc[("acapella", "Kanye"), ("baseline", "KL", "ours")])
    assert str(t[("baseline", "n", "ours")].dtype) == "Int64"
    matched = table1(report.cells, published_rows="matched")
    assert len(matched) == 2
    assert table1(report.cells, published_csv=None).columns.get_level_values("source").unique().tolist() == ["ours"]
    assert len(delta_table(report.deltas)) == 2
    assert set(cells_frame(report.cells)["metric"]) == {"KL", "FAD", "FAD-inf"}


def test_metrics_cells_report_tracks_and_resample_them(tmp_path):
    """Segment ids name their track; cells and deltas carry n_tracks/n_segments and track-bootstrap intervals."""
    from silicon_sing.metrics.evaluation import _seed, as_pairs, pair_track, track_of

    assert track_of("kanye/02-song/acapella/003") == "kanye/02-song" and track_of("ex0") == "ex0"
    pairs = []
    for t in range(3):  # 3 tracks × 2 segments; the tracks differ much more than their segments
        for i in range(2):
            orig = tone(220.0 * (1 + 0.4 * t) * (1 + 0.01 * i), 1.0) + noise(1.0, seed=10 * t + i, amp=0.01)
            o = save_audio(tmp_path / f"o{t}{i}.wav", orig, SR)
            b = save_audio(tmp_path / f"b{t}{i}.wav", noise(1.0, seed=50 + t, amp=0.05 * (t + 1)), SR)
            f = save_audio(tmp_path / f"f{t}{i}.wav", orig + noise(1.0, seed=80 + t, amp=0.02 * (t + 1)), SR)
            ex = f"artist/{t:02d}-song/full/{i:03d}"
            pairs += [EvalPair(str(o), str(b), "artist", "full", "baseline", ex),
                      EvalPair(str(o), str(f), "artist", "full", "fine-tuned", ex)]
    report = evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=300, seed=4)
    assert report.meta["resampling_unit"] == "track"
    assert "Student's t" in report.meta["ci_note"] and "95 %" in report.meta["ci_note"]  # what the intervals are
    for c in report.cells + report.deltas:
        assert (c.n_tracks, c.n_segments, c.n) == (3, 6, 6)
    cell = report.cells[0]
    assert cell.track_ids == [pair_track(p) for p in pairs[::2]]
    groups = cell.track_ids
    assert cell.kl_ci == bootstrap_mean_ci(cell.kl_values, 300, 0.95, _seed(4, "artist", "full", "baseline"),
                                           groups=groups)
    assert cell.kl_ci != bootstrap_mean_ci(cell.kl_values, 300, 0.95, _seed(4, "artist", "full", "baseline"))
    # the JSON carries the counts; an explicit track_id wins over the one in the example id
    back = read_metrics(write_metrics(tmp_path / "m.json", report))
    assert back.cells[0].n_tracks == 3 and back.deltas[0].n_segments == 6
    explicit, = as_pairs([dict(original="o", generated="g", artist="a", category="full", system="baseline",
                               example_id="ex9", track_id="a/t1")])
    assert pair_track(explicit) == "a/t1"


def test_evaluate_with_out_skips_unchanged_reruns(tmp_path, monkeypatch):
    import silicon_sing.metrics.evaluation as ev

    pairs = make_pairs(tmp_path / "audio")[:4]
    out = tmp_path / "metrics" / "metrics.json"
    first = evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=50, out=out)
    assert out.exists() and first.meta["inputs_fingerprint"]

    def boom(*a, **k):
        raise AssertionError("recomputed although nothing changed")

    monkeypatch.setattr(ev, "analyse_features", boom)
    again = evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=50, out=out)
    assert again.cells == first.cells
    with pytest.raises(AssertionError, match="recomputed"):  # a changed setting recomputes
        evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=60, out=out)
    save_audio(pairs[0].generated, noise(1.0, seed=99), SR)  # changed audio recomputes
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=50, out=out)




def test_pairs_from_records_and_prompt_exclusion(tmp_path):
    from dataclasses import dataclass

    from silicon_sing.metrics.evaluation import as_pairs, compute_features

    @dataclass
    class Record:  # the fields of silicon_sing.generate.Generation that matter here
        example_id: str
        artist: str
        category: str
        system: str
        original: str
        generated: str
        prompt_seconds: float

    prompt = noise(0.5, seed=1)
    orig = save_audio(tmp_path / "o.wav", np.concatenate([prompt, tone(440, 1.0)]), SR)
    gen = save_audio(tmp_path / "g.wav", np.concatenate([prompt, noise(1.0, seed=2)]), SR)
    rec = Record("ex0", "a", "full", "baseline", str(orig), str(gen), 0.5)
    whole, = as_pairs([rec])
    cont, = as_pairs([rec], exclude_prompt=True)
    assert (whole.skip_seconds, cont.skip_seconds) == (0.0, 0.5)
    assert as_pairs([dict(vars(rec))])[0] == whole
    assert as_pairs([(str(orig), str(gen), "a", "full", "baseline", "ex0", 0.5)])[0] == cont
    with pytest.raises(ValueError, match="lacks"):
        as_pairs([{"original": str(orig)}])
    kl_b, emb_b = SpectralClassesBackend(), MelStatsEmbedding()
    f_whole, f_cont = compute_features([whole, cont], kl_b, emb_b, tmp_path / "cache")
    # scoring only the continuation removes the shared prompt: the pair looks less alike
    assert f_cont.kl > f_whole.kl
    from silicon_sing.audio import load_audio

    audio, sr = load_audio(orig)
    np.testing.assert_array_equal(f_cont.original_frames, emb_b.embed(audio[:, int(0.5 * sr):], sr))
    assert len(list((tmp_path / "cache" / "mel-stats").glob("*.npy"))) == 4  # trimmed and whole cached apart
