"""Result formatting and the numbers the evaluation chapter quotes (silicon_sing.results)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fake_generations import make_generations
from silicon_sing.generate import Generation
from silicon_sing.metrics.stats import CellResult, DeltaResult
from silicon_sing.results import delta_summary, direction_sentence, glue_values, table1_display, voicing_table
from stems import musicality_summary


@pytest.fixture
def generations(tmp_path: Path) -> list[Generation]:
    """Pitched originals, a noisy baseline, a fine-tune that keeps the voice (two artists, three examples each)."""
    return make_generations(tmp_path)


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


def test_glued_counts_read_as_written_by_a_person() -> None:
    """'between 4 and 4 examples' is '4 examples'; ranges and singulars read naturally."""
    from silicon_sing.results import count_phrase, signed

    assert count_phrase([4, 4, 4], "example") == "4 examples"
    assert count_phrase([3, 6], "example") == "between 3 and 6 examples"
    assert count_phrase([1], "test track") == "1 test track"
    assert signed(-0.0123, 3) == "\u22120.012" and signed(0.5, 1) == "+0.5"
    cells, deltas = cells_and_deltas()
    g = glue_values(cells, deltas)
    assert g["n_examples_phrase"] == "between 4 and 5 examples"


def tracked_deltas() -> list[DeltaResult]:
    """Three artists per stem with 3 test tracks each; instrumental KL clearly falls for all."""
    out = []
    for cat in ("instrumental", "acapella", "full"):
        for k, artist in enumerate(("A", "B", "C")):
            out.append(DeltaResult(artist, cat, "kl", 6, 0.2, 0.1, -0.1, (-0.14, -0.06 + 0.01 * k),
                                   n_tracks=3, n_segments=6))
            out.append(DeltaResult(artist, cat, "fad", 6, 100.0, 110.0, 10.0, (-20.0, 40.0), n_tracks=3, n_segments=6))
    return out


def test_table1_in_the_papers_layout_published_beside_and_directions_compared() -> None:
    """Our table: KL/FAD per system + change [CI] + tracks; the paper's is its own table; directions compared."""
    from silicon_sing.metrics.table import load_published_table1
    from silicon_sing.results import direction_comparison, published_table, table1_ours, table1_ours_html

    deltas = tracked_deltas()
    cells = [CellResult(a, c, s, 6, 0.2 if s == "baseline" else 0.1, (0, 1), 100.0, (90, 110), 100.0,
                        n_tracks=3, n_segments=6) for a in "ABC" for c in ("instrumental", "acapella", "full")
             for s in ("baseline", "fine-tuned")]
    ours = table1_ours(cells, deltas)
    assert list(ours.index.get_level_values("artist").unique()) == ["A", "B", "C"]  # only our artists
    assert "Kanye" not in ours.index.get_level_values("artist")
    assert ours.loc[("instrumental", "A"), ("", "tracks (segments)")] == "3 (6)"
    assert ours.loc[("instrumental", "A"), ("KL", "change [95 % CI]")].startswith("\u22120.100<br>")
    assert (ours == "—").sum().sum() == 0  # no dashes: every cell filled
    html = table1_ours_html(cells, deltas, "Table 1")
    assert "silicon-table1" in html and html.count('<tr class="group">') == 3 and html.count("<tr>") == 2 + 9
    pub = published_table(load_published_table1())
    assert pub.loc[("instrumental", "Kanye"), ("KL", "change")] == "\u22120.07"
    cmp = direction_comparison(deltas, load_published_table1())
    assert cmp.loc["instrumental", ("KL", "ours")] == "fell (3 of 3)"
    assert cmp.loc["instrumental", ("KL", "paper")] == "mixed (fell 2 of 3)"  # Juice WRLD, Kanye fell; Rihanna rose
    assert cmp.loc["full", ("KL", "same way?")] == "yes"  # all three published full-mix KLs fell
    assert cmp.loc["full", ("FAD", "same way?")] == "no"  # ours rose, the paper's fell


def test_detectable_change_per_category_against_the_published_changes() -> None:
    """Half-width of the track-bootstrap interval, median over artists; published changes compared on one scale."""
    from silicon_sing.metrics.table import load_published_table1
    from silicon_sing.results import detectable_changes, detectable_glue, detectable_table

    pub = load_published_table1()
    det = detectable_changes(tracked_deltas(), pub, {"kl": "spectral-classes", "fad": "mel-stats"}).set_index(
        ["category", "metric"])
    kl = det.loc[("instrumental", "kl")]
    assert kl.detectable == pytest.approx(0.045)  # half-widths 0.04, 0.045, 0.05 → median
    assert kl.detectable_relative == pytest.approx(0.225) and kl.n_tracks == 3 and not kl.same_scale
    # published instrumental KL relative changes: −97 %, −78 %, +1000 %: all exceed 22.5 %
    assert kl.published_resolvable == 3
    fad = det.loc[("instrumental", "fad")]  # ±30 on a baseline of 100: 30 %; published −0.8 %, −3.7 %, +21 %
    assert fad.detectable == pytest.approx(30.0) and fad.published_resolvable == 0
    real = detectable_changes(tracked_deltas(), pub, {"kl": "passt", "fad": "vggish"}).set_index(["category", "metric"])
    assert real.loc[("instrumental", "kl")].same_scale
    assert real.loc[("instrumental", "kl")].published_resolvable == 3  # |−0.73|, |−0.07|, |+0.10| > 0.045
    g = detectable_glue(det.reset_index())
    assert "0.045" in g["instrumental_kl_detectable"] and "3 test tracks" in g["instrumental_kl_detectable"]
    assert "Kanye 0.09 → 0.02" in g["instrumental_kl_published_changes"]
    assert g["instrumental_fad_resolvable"].startswith("0 of the 3 published changes are larger")
    assert len(detectable_table(det.reset_index())) == 6


def test_voicing_verdict_is_computed(generations) -> None:
    """Kept/lost and closer/further are decided from the measurements, with an interval over tracks."""
    from silicon_sing.results import voicing_examples, voicing_sentence, voicing_verdicts

    per = voicing_examples(generations)
    v = voicing_verdicts(per, n_boot=200)["acapella"]
    assert v["kept"] and v["finetuned"] > 0.8 and v["baseline"] < 0.3 and v["n_tracks"] == 2
    text = voicing_sentence(v)
    assert text.startswith("the fine-tuned model kept the voice") and "closer" in text and "excluding zero" in text
    lost = dict(v, finetuned=0.1, kept=False, gap_ci=(0.1, 0.3))
    assert "lost the voice" in voicing_sentence(lost) and "further" in voicing_sentence(lost)
    # an instrumental has no voice: what pYIN finds voiced there is the lead's pitched line
    inst = voicing_sentence(v, "instrumental")
    assert inst.startswith("the fine-tuned model kept the pitched line") and "voice" not in inst.split(":")[0]
    assert "lost the pitched line" in voicing_sentence(lost, "instrumental")


def test_musicality_glue_states_the_targets_and_whether_they_were_met() -> None:
    """Two thirds for the baseline's instrumental tempo and key, half for fine-tuned acapella voicing, computed."""
    from silicon_sing.results import musicality_glue

    g = musicality_glue(musicality_summary(), has_truth=True)
    assert g["musicality_tempo_key_target"].startswith("baseline instrumental continuations keep the true tempo in 50")
    assert g["musicality_tempo_key_target"].endswith("is not met")
    assert "of 6 test examples" in g["musicality_tempo_key_target"]
    assert g["musicality_voicing_target"].startswith("acapella continuations after acapella fine-tuning are voiced in 55")
    assert g["musicality_voicing_target"].endswith("is met")
    bare = musicality_glue(musicality_summary(with_truth=False), has_truth=False)
    assert "no tempo or key" in bare["musicality_truth"] and "cannot be checked" in bare["musicality_tempo_key_target"]
    assert bare["musicality_voicing_target"].endswith("is met")
    ceiling = musicality_glue(musicality_summary(round_trip=True), has_truth=True)
    assert "(the originals: 100\u00a0% and 100\u00a0%; the originals through the codec alone: 80\u00a0% and 90\u00a0%)" \
        in ceiling["musicality_tempo_key_target"]
    assert "(the originals: 80\u00a0%; through the codec alone: 70\u00a0%)" in ceiling["musicality_voicing_target"]
    # harmonic lines: the baseline's count against the originals', the codec's ceiling beside them
    assert g["musicality_lines_target"] == (
        "baseline instrumental continuations draw 0.30 [0.20, 0.40] harmonic lines per frame between 1 and 8 kHz "
        "(the originals draw 1.20), 25\u00a0% of the originals' count; the target of at least half is not met")
    assert "the originals through the codec alone 0.90" in ceiling["musicality_lines_target"]
    # the count says nothing of where the codec draws its lines: the sentence says how many it keeps in place
    assert ceiling["musicality_lines_target"].endswith(
        "; of the originals' own lines, the codec alone keeps 20 % [10 %, 30 %] where they were")
    assert "where they were" not in g["musicality_lines_target"]  # no round trip, nothing to say
    assert "decoder" not in ceiling["musicality_lines_target"]  # 0.30 against the codec's 0.90: the LM falls short
    capped = musicality_summary(round_trip=True)
    capped.loc[capped["source"] == "codec round trip", "harmonic_lines"] = 0.32
    assert "; they draw as many as the codec alone lets through, so its decoder, not the language model, sets this " \
           "limit; the codec alone draws 27\u00a0% of the originals' count" in musicality_glue(
               capped, has_truth=True)["musicality_lines_target"]
    assert bare["musicality_lines_target"].endswith("is not met")  # lines need no recorded truth
    assert "no baseline" in musicality_glue(musicality_summary().query("source != 'baseline'"),
                                            has_truth=True)["musicality_lines_target"]


def _lines_case(baseline: float, lo: float, hi: float, codec: float, original: float = 1.15) -> str:
    """The lines sentence for one instrumental baseline (with its interval), round trip and original."""
    from silicon_sing.results import musicality_glue

    s = musicality_summary(round_trip=True)
    inst = s["category"] == "instrumental"
    for src, v, (a, b) in (("baseline", baseline, (lo, hi)), ("codec round trip", codec, (codec - .1, codec + .1)),
                           ("original", original, (original - .2, original + .2))):
        s.loc[inst & (s["source"] == src), ["harmonic_lines", "harmonic_lines_lo", "harmonic_lines_hi"]] = [v, a, b]
    return musicality_glue(s, has_truth=True)["musicality_lines_target"]


def test_lines_sentence_names_the_codec_as_the_limit_when_its_value_lies_in_the_baselines_interval() -> None:
    """Stop 24's smoke book: baseline 0.37 [0.18, 0.56], round trip 0.42. The round trip is inside the baseline's
    interval, so the data cannot tell the two apart: the codec is the limit. A fixed 0.9 × rule said otherwise
    (0.37 < 0.378) and flipped the sentence on noise; the interval decides now."""
    cap = "; they draw as many as the codec alone lets through, so its decoder, not the language model, sets this limit"
    assert cap in _lines_case(0.37, 0.18, 0.56, 0.42)
    assert cap in _lines_case(0.45, 0.30, 0.60, 0.42)  # above the round trip: still the codec's ceiling
    assert "decoder" not in _lines_case(0.37, 0.30, 0.41, 0.42)  # the round trip lies above the interval: the LM
    assert "decoder" not in _lines_case(0.20, float("nan"), float("nan"), 0.21)  # no interval: the point must reach it


def test_lines_sentence_says_when_the_codec_alone_cannot_reach_the_target() -> None:
    """The round trip draws 0.42 of the originals' 1.15 (37 %): no language model on this codec can reach half, and
    the sentence says so; when the round trip is above the target it says nothing of the kind."""
    low = _lines_case(0.37, 0.18, 0.56, 0.42)
    assert "the codec alone draws 37\u00a0% of the originals' count, below the target, so no language model on " \
           "this codec can meet it; of the originals' own lines, the codec alone keeps 20\u00a0% [10\u00a0%, 30\u00a0%] " \
           "where they were" in low
    assert "no language model" not in _lines_case(0.37, 0.18, 0.56, 0.80)
    assert "no language model" not in _lines_case(0.70, 0.50, 0.90, 0.80)  # met: nothing to excuse


def test_musicality_table_html_orders_rows_and_drops_unmeasured_columns() -> None:
    """Stems in the paper's order, originals first; intervals in brackets; no truth, no tempo/key columns; escaped."""
    from silicon_sing.results import musicality_table, musicality_table_html

    t = musicality_table(musicality_summary())
    assert list(t.index)[:3] == [("instrumental", "original"), ("instrumental", "baseline"), ("instrumental", "fine-tuned")]
    # the interval on its own line, as in the Table 1 deltas, so the table fits the content column
    assert t.loc[("instrumental", "baseline"), "tempo kept"] == '50\u00a0%<br><span class="ci">[40\u00a0%, 60\u00a0%]</span>'
    assert t.loc[("acapella", "original"), "pitch error (st)"] == "—"
    assert t.loc[("instrumental", "baseline"), "harmonic lines / frame"] == '0.30<br><span class="ci">[0.20, 0.40]</span>'
    bare = musicality_table(musicality_summary(with_truth=False))
    assert "tempo kept" not in bare.columns and "voiced frames" in bare.columns
    html = musicality_table_html(musicality_summary(), "<b>cap</b>")
    assert 'class="silicon-table-caption"><b>cap</b>' in html and "musicality" in html
    assert musicality_table(musicality_summary().iloc[:0]).empty
    with_codec = musicality_table(musicality_summary(round_trip=True))
    assert [s for c, s in with_codec.index if c == "acapella"] == ["original", "codec round trip", "baseline", "fine-tuned"]
    # only a round trip has an aligned original to keep lines of: its lines cell says how many stayed in place (a
    # column of its own made the table wider than the page's content column)
    assert with_codec.loc[("instrumental", "codec round trip"), "harmonic lines / frame"] == (
        '0.90<br><span class="ci">[0.80, 1.00]</span><br><span class="ci">20\u00a0% in place</span>')
    assert "in place" not in with_codec.loc[("instrumental", "baseline"), "harmonic lines / frame"]
    assert list(with_codec.columns) == list(t.columns)


def _tempo_examples() -> pd.DataFrame:
    """Per-example rows: at 80 BPM the baseline keeps 1 of 6, at 112 BPM 5 of 6; the codec round trip keeps all."""
    rows = []
    for bpm, kept in ((112.0, 5), (80.0, 1)):
        for i in range(6):
            for source, k in (("original", 1.0), ("codec round trip", 1.0), ("baseline", float(i < kept)),
                              ("fine-tuned", 0.0)):
                rows.append(dict(example_id=f"a{bpm:g}-{i}", category="instrumental", true_bpm=bpm, source=source,
                                 keeps_tempo=k))
    rows.append(dict(example_id="v", category="acapella", true_bpm=80.0, source="baseline", keeps_tempo=1.0))
    return pd.DataFrame(rows)


def test_tempo_is_broken_down_by_the_songs_tempo_and_the_sentence_names_where_it_is_lost() -> None:
    from silicon_sing import results as R

    tempo_kept_by_bpm, tempo_kept_by_bpm_sentence = R.tempo_kept_by_bpm, R.tempo_kept_by_bpm_sentence
    by = tempo_kept_by_bpm(_tempo_examples())
    assert list(by.index) == [80.0, 112.0]  # slowest first; the acapella row is not counted
    assert list(by.columns) == ["original", "codec round trip", "baseline", "fine-tuned"]
    assert by.at[80.0, "baseline"] == (1, 6) and by.at[112.0, "baseline"] == (5, 6)
    table = R.tempo_kept_by_bpm_table(by)
    assert table.loc["80 BPM (a beat every 0.75 s)", "baseline"] == "1 of 6"
    html = R.tempo_kept_by_bpm_html(by, "<strong>Tempo kept</strong>")
    assert "80 BPM (a beat every 0.75 s)" in html and "1 of 6" in html and "tempo-by-bpm" in html
    s = tempo_kept_by_bpm_sentence(by)
    assert s.startswith("the baseline keeps the tempo of 5 of 6 test examples at 112 BPM (a beat every 0.54 s) "
                        "and of 1 of 6 at 80 BPM (a beat every 0.75 s)"), s
    assert "codec alone keep 6 of 6 and 6 of 6, so the language model, not the codec, loses the tempo there" in s
    # a codec that loses the slow tempo too does not let the sentence blame the language model
    weak = _tempo_examples()
    weak.loc[(weak["source"] == "codec round trip") & (weak["true_bpm"] == 80.0)
             & weak["example_id"].str.endswith(("1", "2", "3")), "keeps_tempo"] = 0.0
    s = tempo_kept_by_bpm_sentence(tempo_kept_by_bpm(weak))
    assert "keep 6 of 6 and 3 of 6" in s and "not the codec" not in s
    assert "equally often" in tempo_kept_by_bpm_sentence(tempo_kept_by_bpm(_tempo_examples()), "fine-tuned")


def _place_examples() -> pd.DataFrame:
    """Per-example rows of 4 songs, each prompted at its opening (segment 000) and later (001): the baseline keeps
    the tempo of 1 of 4 openings and 3 of 4 later prompts, the key of 2 and 4; the codec round trip keeps all."""
    rows = []
    for song in range(4):
        for seg in (0, 1):
            for source in ("original", "codec round trip", "baseline"):
                tempo = 1.0 if source != "baseline" else float(song < (1 if seg == 0 else 3))
                key = 1.0 if source != "baseline" else float(seg == 1 or song < 2)
                rows.append(dict(example_id=f"artist/song-{song}/instrumental/{seg:03d}", category="instrumental",
                                 true_bpm=80.0, source=source, keeps_tempo=tempo, keeps_key=key))
    rows.append(dict(example_id="artist/song-0/acapella/000", category="acapella", true_bpm=80.0, source="baseline",
                     keeps_tempo=1.0, keeps_key=1.0))
    return pd.DataFrame(rows)


def test_tempo_and_key_are_broken_down_by_where_the_prompt_starts_in_its_song() -> None:
    """Half the test prompts are a song's first seconds (segment 000; the synthetic songs' intro bar has no drums or
    bass): the chapter counts them apart from the prompts taken later in the song."""
    from silicon_sing import results as R

    assert R.prompt_place("kid-basalt/01-psalm/instrumental/000") == R.PROMPT_PLACES[0]
    assert R.prompt_place("kid-basalt/01-psalm/instrumental/007") == R.PROMPT_PLACES[1]
    by = R.kept_by_prompt_place(_place_examples())
    assert list(by.columns) == ["original", "codec round trip", "baseline"]
    assert by.loc[("tempo kept", R.PROMPT_PLACES[0]), "baseline"] == (1, 4)
    assert by.loc[("tempo kept", R.PROMPT_PLACES[1]), "baseline"] == (3, 4)
    assert by.loc[("key kept", R.PROMPT_PLACES[0]), "baseline"] == (2, 4)
    assert by.loc[("key kept", R.PROMPT_PLACES[1]), "codec round trip"] == (4, 4)
    html = R.kept_by_prompt_place_html(by, "<strong>By place</strong>")
    assert "1 of 4" in html and "prompt-place" in html and html.count("<tr") == 5  # a header, 2 measures × 2 places
    s = R.kept_by_prompt_place_sentence(by)
    assert s == ("the baseline keeps the tempo of 1 of 4 test examples prompted with their song's opening seconds and "
                 "of 3 of 4 prompted later in the song, the key of 2 of 4 and of 4 of 4; through the codec alone the "
                 "originals keep the tempo of 4 of 4 and of 4 of 4"), s


def test_prompt_place_without_truth_or_with_one_place_says_so() -> None:
    from silicon_sing import results as R

    own = _place_examples().assign(true_bpm=float("nan"), keeps_tempo=float("nan"), keeps_key=float("nan"))
    assert R.kept_by_prompt_place(own).empty
    assert R.kept_by_prompt_place_sentence(R.kept_by_prompt_place(own)) == \
        "the test tracks record no tempo or key to break it down by"
    later = _place_examples()[lambda d: d["example_id"].str.endswith("001")]
    assert R.kept_by_prompt_place_sentence(R.kept_by_prompt_place(later)) == \
        f"every test prompt is taken {R.PROMPT_PLACES[1]}, so there is nothing to compare"
    no_key = R.kept_by_prompt_place(_place_examples().assign(keeps_key=float("nan")))  # a tempo but no key recorded
    assert list(dict.fromkeys(m for m, _ in no_key.index)) == ["tempo kept"]
    assert R.kept_by_prompt_place_sentence(no_key).startswith("the baseline keeps the tempo of 1 of 4") and \
        "the key" not in R.kept_by_prompt_place_sentence(no_key)


def test_continuations_that_fade_out_are_counted_by_where_the_prompt_starts() -> None:
    """A continuation that sinks to silence loses the song whatever its tempo: the same table counts them, openings
    apart (on the smoke book, 3 of the baseline's 6 continuations of an intro faded, none of the other 12)."""
    from silicon_sing import results as R

    d = _place_examples()
    d["fades"] = [float(s == "baseline" and e.endswith("000") and e.split("/")[1] in ("song-0", "song-1"))
                  for s, e in zip(d["source"], d["example_id"])]
    by = R.kept_by_prompt_place(d)
    assert by.loc[("faded out", R.PROMPT_PLACES[0]), "baseline"] == (2, 4)
    assert by.loc[("faded out", R.PROMPT_PLACES[1]), "baseline"] == (0, 4)
    assert by.loc[("faded out", R.PROMPT_PLACES[0]), "original"] == (0, 4)
    assert R.kept_by_prompt_place_html(by, "c").count("<tr") == 7  # a header, 3 measures × 2 places
    s = R.kept_by_prompt_place_sentence(by)
    assert s.startswith("the baseline keeps the tempo of 1 of 4") and s.endswith(
        "; 2 of 4 of its continuations of a song's opening fade out, and 0 of 4 of those prompted later (the last "
        "second 15 dB or more under the prompt; of the originals 0 of 4 and 0 of 4)"), s
    # a user's own stems record no tempo or key, but a fade needs no truth
    own = d.assign(true_bpm=float("nan"), keeps_tempo=float("nan"), keeps_key=float("nan"))
    s = R.kept_by_prompt_place_sentence(R.kept_by_prompt_place(own))
    assert s.startswith("the test tracks record no tempo or key to break it down by; 2 of 4 of the baseline's "
                        "continuations of a song's opening fade out"), s


def test_tempo_by_song_tempo_without_recorded_tempi_says_so() -> None:
    from silicon_sing.results import tempo_kept_by_bpm, tempo_kept_by_bpm_sentence, tempo_kept_by_bpm_table

    own = _tempo_examples().assign(true_bpm=float("nan"), keeps_tempo=float("nan"))  # a user's stems: no truth
    assert tempo_kept_by_bpm(own).empty and tempo_kept_by_bpm_table(tempo_kept_by_bpm(own)).empty
    assert "record no tempo to break it down by" in tempo_kept_by_bpm_sentence(tempo_kept_by_bpm(own))
    one = _tempo_examples().query("true_bpm == 80")
    assert "share one tempo (80 BPM)" in tempo_kept_by_bpm_sentence(tempo_kept_by_bpm(one))
