"""The synthetic stems of the embedded default: determinism, layout, and audibly distinct artists."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from silicon_sing import music, synth
from silicon_sing.fsutil import file_sha1
from silicon_sing.synth import ARTISTS, STEMS

SR = 44100
SECONDS = 8.0


@pytest.fixture(scope="module")
def tracks() -> dict[str, dict[str, np.ndarray]]:
    """One 8 s track per artist at the corpus rate."""
    return {a.name: synth.synth_track(a, 0, SECONDS, SR, seed=1234) for a in ARTISTS}


@pytest.fixture(scope="module")
def medians(tracks: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """Median measured f0 (Hz) of each artist's acapella."""
    return {name: float(np.nanmedian(music.estimate_f0(st["acapella"], SR))) for name, st in tracks.items()}


def _semitones(a: float, b: float) -> float:
    return abs(12.0 * math.log2(a / b))


# --------------------------------------------------------------------------- a track


def test_three_artists_with_distinct_declared_styles() -> None:
    assert len(ARTISTS) == 3
    for field in ("name", "voice", "tempo_bpm", "instrumental", "f0_range"):
        assert len({getattr(a, field) for a in ARTISTS}) == 3, field
    assert {a.delivery for a in ARTISTS} == {"sung", "rap"}
    assert len({(a.tonic, a.mode) for a in ARTISTS}) == 3


def test_same_arguments_give_bit_identical_stems() -> None:
    a = synth.synth_track(ARTISTS[1], 2, 6.0, SR, seed=5)
    b = synth.synth_track(ARTISTS[1], 2, 6.0, SR, seed=5)
    for stem in STEMS:
        assert a[stem].tobytes() == b[stem].tobytes(), stem


def test_seed_and_track_index_change_the_audio() -> None:
    base = synth.synth_track(ARTISTS[0], 0, 6.0, SR, seed=5)
    for other in (synth.synth_track(ARTISTS[0], 0, 6.0, SR, seed=6), synth.synth_track(ARTISTS[0], 1, 6.0, SR, seed=5)):
        for stem in ("acapella", "instrumental"):
            x, y = base[stem][0].astype(np.float64), other[stem][0].astype(np.float64)
            assert not np.array_equal(x, y)
            assert abs(np.corrcoef(x, y)[0, 1]) < 0.8, stem  # a different performance, not a tiny perturbation


def test_tracks_of_an_artist_differ_in_melody_and_harmony() -> None:
    plans = [synth.plan_track(ARTISTS[2], i, 24.0, 1234) for i in range(4)]
    for p, q in itertools.pairwise(plans):
        assert p.chords != q.chords
    melodies = {tuple(round(s.midi) for s in p.syllables[:8]) for p in plans}
    assert len(melodies) == 4


def test_stems_are_aligned_stereo_float32_and_full_is_the_exact_sum(tracks: dict[str, dict[str, np.ndarray]]) -> None:
    n = int(round(SECONDS * SR))
    for name, st in tracks.items():
        assert set(st) == set(STEMS)
        for stem in STEMS:
            assert st[stem].dtype == np.float32 and st[stem].shape == (2, n), (name, stem)
        np.testing.assert_allclose(st["full"], st["acapella"] + st["instrumental"], rtol=0, atol=1e-6)


def test_nothing_clips_and_the_mix_is_peak_normalised(tracks: dict[str, dict[str, np.ndarray]]) -> None:
    for name, st in tracks.items():
        peaks = {stem: float(np.abs(st[stem]).max()) for stem in STEMS}
        assert max(peaks.values()) <= 0.9, (name, peaks)
        assert max(peaks.values()) == pytest.approx(synth.PEAK, abs=1e-6)
        assert peaks["instrumental"] > 0.1 and peaks["acapella"] > 0.1, (name, peaks)


def test_vocal_sits_clearly_above_the_instrumental(tracks: dict[str, dict[str, np.ndarray]]) -> None:
    for name, st in tracks.items():
        voc, inst = st["acapella"].mean(0), st["instrumental"].mean(0)
        hop = SR // 20
        frames = lambda x: x[: x.size // hop * hop].reshape(-1, hop)  # noqa: E731, B023  (called inside this iteration)
        v_db = 10 * np.log10(np.mean(frames(voc) ** 2, axis=1) + 1e-20)
        top = np.percentile(v_db, 95)
        for window, margin in ((10.0, 3.0), (20.0, 1.0)):  # sustained vowels, then with consonants and gaps
            active = v_db > top - window
            level = lambda x: 10 * np.log10(np.mean(frames(x)[active] ** 2) + 1e-20)  # noqa: E731, B023  (called inside this iteration)
            assert level(voc) - level(inst) > margin, (name, window, level(voc) - level(inst))


def test_instrumental_opens_with_an_intro_bar_without_bass_or_kick(tracks: dict[str, dict[str, np.ndarray]]) -> None:
    from scipy import signal

    sos = signal.butter(4, 120, btype="lowpass", fs=SR, output="sos")
    for a in ARTISTS:
        low = signal.sosfilt(sos, tracks[a.name]["instrumental"].mean(0))
        bar = int(4 * 60 / a.tempo_bpm * SR)
        intro = np.sqrt(np.mean(low[: int(0.9 * bar)] ** 2))
        body = np.sqrt(np.mean(low[bar : 2 * bar] ** 2))
        assert 20 * np.log10(body / intro) > 10.0, a.name


def test_vocal_has_breaths_between_phrases_but_no_long_silence(tracks: dict[str, dict[str, np.ndarray]]) -> None:
    hop = SR // 20
    for name, st in tracks.items():
        x = st["acapella"].mean(0)
        db = 10 * np.log10(np.mean(x[: x.size // hop * hop].reshape(-1, hop) ** 2, axis=1) + 1e-20)
        loud = db > db.max() - 30
        first = int(np.argmax(loud))
        assert first * 0.05 < 3.5, name  # the voice enters within the intro bar or right after it
        quiet = ~loud[first:]
        assert quiet.mean() > 0.03, name  # rests between phrases exist
        runs = [len(list(g)) for q, g in itertools.groupby(quiet) if q]
        assert max(runs, default=0) * 0.05 < 2.0, name  # ... but never seconds of silence


# --------------------------------------------------------------------------- audibly distinct artists


def test_measured_f0_matches_each_artists_declared_range(medians: dict[str, float]) -> None:
    for a in ARTISTS:
        lo, hi = a.f0_range
        assert lo / 2 ** (1 / 12) <= medians[a.name] <= hi * 2 ** (1 / 12), (a.name, medians[a.name], a.f0_range)


def test_rendered_pitch_follows_the_composed_notes(tracks: dict[str, dict[str, np.ndarray]]) -> None:
    for a in ARTISTS:
        f0 = music.estimate_f0(tracks[a.name]["acapella"], SR)
        ref = np.full(f0.size, np.nan)
        for s in synth.plan_track(a, 0, SECONDS, 1234).syllables:  # the steady middle of each note
            ref[int((s.start + 0.08) * 100) : int((s.start + a.legato * s.dur - 0.03) * 100)] = music.midi_to_hz(s.midi)
        ok = ~np.isnan(ref) & ~np.isnan(f0)
        err = np.abs(12 * np.log2(f0[ok] / ref[ok]))
        tolerance = 1.5 if a.delivery == "sung" else 3.5  # rap syllables glide by up to 2 semitones
        assert ok.sum() > 50 and np.mean(err < tolerance) > 0.9, (a.name, ok.sum(), np.mean(err < tolerance))


def test_artists_pitch_ranges_differ_by_several_semitones(medians: dict[str, float]) -> None:
    for x, y in itertools.combinations(medians, 2):
        assert _semitones(medians[x], medians[y]) > 3.0, (x, y, medians)


def test_instrumental_tempo_is_the_declared_one_and_differs_between_artists(
    tracks: dict[str, dict[str, np.ndarray]],
) -> None:
    import librosa

    est = {}
    for a in ARTISTS:
        y = librosa.resample(tracks[a.name]["instrumental"].mean(0), orig_sr=SR, target_sr=22050)
        tempo = float(librosa.feature.tempo(y=y, sr=22050)[0])
        # beat trackers may lock to half or double time; anything else is a wrong tempo
        ratio = min((abs(math.log2(tempo * k / a.tempo_bpm)), k) for k in (0.5, 1.0, 2.0))
        assert ratio[0] < math.log2(1.05), (a.name, tempo, a.tempo_bpm)
        est[a.name] = tempo * ratio[1]
    for x, y in itertools.combinations(est, 2):
        assert abs(math.log2(est[x] / est[y])) > math.log2(1.15), est


def test_rapper_articulates_much_faster_than_the_singers(tracks: dict[str, dict[str, np.ndarray]]) -> None:
    import librosa

    rate = {}
    for a in ARTISTS:
        y = librosa.resample(tracks[a.name]["acapella"].mean(0), orig_sr=SR, target_sr=22050)
        rate[a.name] = len(librosa.onset.onset_detect(y=y, sr=22050, units="time")) / SECONDS
    rapper = next(a.name for a in ARTISTS if a.delivery == "rap")
    for a in ARTISTS:
        if a.delivery == "sung":
            assert rate[rapper] > 1.8 * rate[a.name], rate


def _harmonic_count(x: np.ndarray, sr: int, f0: float, floor_db: float = -40.0) -> int:
    """Harmonics of ``f0`` (up to the 20th) within ``floor_db`` of the strongest one."""
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, 1 / sr)
    amps = []
    for k in range(1, 21):
        band = (freqs > k * f0 * 0.97) & (freqs < k * f0 * 1.03)
        amps.append(spec[band].max() if band.any() else 0.0)
    amps_db = 20 * np.log10(np.asarray(amps) + 1e-12)
    return int(np.sum(amps_db > amps_db.max() + floor_db))


def test_vocal_is_harmonically_rich_not_a_sinusoid(tracks: dict[str, dict[str, np.ndarray]]) -> None:
    win = 4096
    t = np.arange(win) / SR
    assert _harmonic_count(np.sin(2 * np.pi * 220.0 * t), SR, 220.0) == 1  # the measure rejects a pure tone
    for name, st in tracks.items():
        x = st["acapella"].mean(0)
        f0 = music.estimate_f0(st["acapella"], SR)
        counts = []
        for i in np.flatnonzero(~np.isnan(f0))[::10]:  # voiced frames, 10 ms hop
            c = int(i * 0.01 * SR)
            seg = x[c - win // 2 : c + win // 2]
            if seg.size == win:
                counts.append(_harmonic_count(seg, SR, float(f0[i])))
        assert len(counts) >= 10, name
        assert np.median(counts) >= 5, (name, np.median(counts))


def _harmonic_peak(x: np.ndarray, sr: int, f0: float, below: float) -> float:
    """Frequency of the loudest harmonic under ``below`` Hz."""
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    freqs = np.fft.rfftfreq(x.size, 1 / sr)
    ks = np.arange(1, int(below / f0) + 1)
    amps = [spec[np.argmin(np.abs(freqs - k * f0))] for k in ks]
    return float(ks[int(np.argmax(amps))] * f0)


def test_vowels_carry_their_formants() -> None:
    f0 = 100.0
    a = synth.render_vowel("bass", "a", f0, 0.5, SR).astype(np.float64)
    i = synth.render_vowel("bass", "i", f0, 0.5, SR).astype(np.float64)
    u = synth.render_vowel("bass", "u", f0, 0.5, SR).astype(np.float64)
    assert 500 <= _harmonic_peak(a, SR, f0, 1000) <= 700  # F1 of /a/ = 600 Hz
    assert 200 <= _harmonic_peak(i, SR, f0, 1000) <= 300  # F1 of /i/ = 250 Hz

    def high_db(x: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(x.size, 1 / SR)
        return float(10 * np.log10(spec[(freqs > 1500) & (freqs < 2200)].sum() / spec.sum()))

    assert high_db(i) - high_db(u) > 10.0  # /i/ has its F2 near 1.75 kHz, /u/ near 600 Hz


# --------------------------------------------------------------------------- the corpus


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def test_corpus_layout_formats_and_decoding(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    paths = synth.make_synthetic_corpus(root, tracks_per_artist=2, seconds=3.0, sr=22050, seed=3, progress=False)
    assert len(paths) == 3 * 2 * 3 and all(p.is_file() for p in paths)
    assert sorted(p.name for p in root.iterdir()) == sorted([a.name for a in ARTISTS] + ["corpus.json"])
    for a in ARTISTS:
        track_dirs = sorted((root / a.name).iterdir())
        assert len(track_dirs) == 2
        for k, d in enumerate(track_dirs):
            ext = "flac" if k == 1 else "wav"  # the second track of each artist exercises FLAC
            assert sorted(p.name for p in d.iterdir()) == sorted(f"{s}.{ext}" for s in STEMS)
            infos = [sf.info(str(d / f"{s}.{ext}")) for s in STEMS]
            assert {(i.samplerate, i.channels, i.frames, i.subtype) for i in infos} == {(22050, 2, 3 * 22050, "PCM_16")}
            data = {s: sf.read(str(d / f"{s}.{ext}"), dtype="float32")[0] for s in STEMS}
            np.testing.assert_allclose(data["full"], data["acapella"] + data["instrumental"], atol=3 / 32768)
    meta = json.loads((root / "corpus.json").read_text())
    assert meta["complete"] and len(meta["tracks"]) == 6
    assert {t["tempo_bpm"] for t in meta["tracks"]} == {a.tempo_bpm for a in ARTISTS}
    assert synth.load_corpus_tracks(root) == meta["tracks"]


def test_corpus_rerun_is_a_no_op_and_parameter_changes_regenerate(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    kw = dict(seconds=2.0, sr=16000, progress=False)
    first = synth.make_synthetic_corpus(root, tracks_per_artist=2, seed=1, **kw)
    before = _mtimes(root)
    track0 = {p: file_sha1(p) for p in first if p.parent.name.startswith("01 ")}
    assert synth.make_synthetic_corpus(root, tracks_per_artist=2, seed=1, **kw) == first
    assert _mtimes(root) == before  # nothing rewritten, not even corpus.json

    # more tracks: everything is rewritten, but existing tracks keep their exact content
    synth.make_synthetic_corpus(root, tracks_per_artist=3, seed=1, **kw)
    assert all(file_sha1(p) == h for p, h in track0.items())
    assert len(list(root.rglob("acapella.*"))) == 9

    # fewer tracks: stale track folders disappear, so curation never sees them
    synth.make_synthetic_corpus(root, tracks_per_artist=1, seed=1, **kw)
    assert len(list(root.rglob("acapella.*"))) == 3
    assert all(len(list((root / a.name).iterdir())) == 1 for a in ARTISTS)

    # another seed: new audio under the same names
    synth.make_synthetic_corpus(root, tracks_per_artist=1, seed=2, **kw)
    assert any(file_sha1(p) != h for p, h in track0.items())
    assert json.loads((root / "corpus.json").read_text())["spec"]["seed"] == 2


def test_corpus_regenerates_after_an_interrupted_run(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    paths = synth.make_synthetic_corpus(root, tracks_per_artist=1, seconds=2.0, sr=16000, progress=False)
    meta = json.loads((root / "corpus.json").read_text())
    (root / "corpus.json").write_text(json.dumps(meta | {"complete": False}))
    paths[0].unlink()
    assert synth.make_synthetic_corpus(root, tracks_per_artist=1, seconds=2.0, sr=16000, progress=False) == paths
    assert paths[0].is_file() and json.loads((root / "corpus.json").read_text())["complete"]


def test_corpus_refuses_to_write_into_someone_elses_stems(tmp_path: Path) -> None:
    d = tmp_path / "mine" / "Some Artist" / "Song"
    d.mkdir(parents=True)
    sf.write(str(d / "acapella.wav"), np.zeros(100), 16000)
    with pytest.raises(FileExistsError):
        synth.make_synthetic_corpus(tmp_path / "mine", tracks_per_artist=1, seconds=2.0, sr=16000, progress=False)


def test_parallel_workers_write_identical_files(tmp_path: Path) -> None:
    kw = dict(tracks_per_artist=1, seconds=2.0, sr=16000, seed=9, progress=False)
    serial = synth.make_synthetic_corpus(tmp_path / "a", workers=1, **kw)
    parallel = synth.make_synthetic_corpus(tmp_path / "b", workers=2, **kw)
    assert [file_sha1(p) for p in serial] == [file_sha1(p) for p in parallel]


def test_custom_artist_styles_are_accepted(tmp_path: Path) -> None:
    alto = dataclasses.replace(ARTISTS[0], name="Test Alto", f0_range=(200.0, 400.0))
    st = synth.synth_track(alto, 0, 4.0, 16000, seed=1)
    assert st["full"].shape == (2, 64000)
    plan = synth.plan_track(alto, 0, 4.0, 1)
    lo, hi = music.hz_to_midi(200.0), music.hz_to_midi(400.0)
    assert all(lo - 1e-6 <= s.midi <= hi + 1e-6 for s in plan.syllables)
