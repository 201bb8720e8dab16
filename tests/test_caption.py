"""Captioning: descriptors on synthesized signals with known answers, captions, UUID, cache, TF wiring."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from silicon_sing import caption as cap
from silicon_sing import data
from silicon_sing.caption import (
    AnalysisConfig,
    CaptionError,
    MissingModelsError,
    TrackDescriptors,
    analyse_signal,
    describe_track,
    descriptors,
    essentia_models,
    load_captions,
    make_caption,
    run_captioning,
)
from silicon_sing.fsutil import read_json, read_jsonl
from silicon_sing.params import CATEGORIES, load_params
from stems import CuratedTrack, write_curated_run

REPO = Path(__file__).resolve().parents[1]
SR = 32000
PITCH_CLASS = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6, "G": 7,
               "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11}


# --------------------------------------------------------------------------- synthesized signals


def drums(bpm: float, seconds: float = 16.0, seed: int = 0) -> np.ndarray:
    """Kick on odd beats, snare on even beats, hi-hat on every eighth note."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = np.zeros(n, np.float32)
    t = np.arange(int(0.15 * SR)) / SR
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 20)
    th = np.arange(int(0.04 * SR)) / SR
    hat = 0.3 * rng.standard_normal(th.size) * np.exp(-th * 120)
    ts = np.arange(int(0.12 * SR)) / SR
    snare = 0.6 * rng.standard_normal(ts.size) * np.exp(-ts * 35)
    beat = 60.0 / bpm
    for k in range(int(seconds / beat)):
        for offset, hit in ((0.0, kick if k % 2 == 0 else snare), (0.0, hat), (beat / 2, hat)):
            i = int((k * beat + offset) * SR)
            m = min(len(hit), n - i)
            if m > 0:
                x[i:i + m] += hit[:m]
    return 0.5 * x


def tone(midi: int, seconds: float) -> np.ndarray:
    """A decaying harmonic note (piano-ish)."""
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum(0.6 ** h * np.sin(2 * np.pi * f * (h + 1) * t) for h in range(6))
    return y * np.minimum(1, t / 0.02) * np.exp(-t * 1.5)


def chords(tonic: str, scale: str, reps: int = 3, chord_s: float = 1.5) -> np.ndarray:
    """I–V–vi–IV in major, i–iv–VI–V in minor, with a bass note under each chord."""
    root = PITCH_CLASS[tonic] + 48
    prog = ([(0, (0, 4, 7)), (7, (0, 4, 7)), (9, (0, 3, 7)), (5, (0, 4, 7))] if scale == "major"
            else [(0, (0, 3, 7)), (5, (0, 3, 7)), (8, (0, 4, 7)), (7, (0, 4, 7))])
    out = [sum(tone(root + r + i, chord_s) for i in iv) + 0.7 * tone(root + r - 12, chord_s)
           for _ in range(reps) for r, iv in prog]
    x = np.concatenate(out)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def voice(f0: float, seconds: float) -> np.ndarray:
    """A vibrato harmonic 'voice' gated into syllables."""
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / SR
    v = sum(np.sin(k * phase) / k for k in range(1, 8)) * (np.sin(2 * np.pi * 2 * t) > -0.3)
    return (0.2 * v).astype(np.float32)


def same_key(found: str | None, tonic: str) -> bool:
    """Pitch-class equality (Essentia may spell a key enharmonically)."""
    return found is not None and PITCH_CLASS[found] == PITCH_CLASS[tonic]


# --------------------------------------------------------------------------- descriptors


@pytest.mark.parametrize("bpm", [70, 95, 120, 140, 174])
def test_tempo_within_2_percent_or_octave_error_flagged(bpm: float) -> None:
    """Drum tracks: the BPM is right to ±2 %, or it is off by an octave and that is flagged."""
    stem = analyse_signal(drums(bpm), SR, "full")
    td = describe_track({"track_id": "a/t", "artist": "a", "track": "t"}, {"full": stem}, AnalysisConfig())
    assert td.bpm is not None and td.bpm_confidence >= 1.0
    if abs(td.bpm - bpm) / bpm <= 0.02:
        return
    assert any(abs(td.bpm - bpm * r) / (bpm * r) <= 0.02 for r in (0.5, 2.0)), f"{td.bpm} vs {bpm}"
    assert td.bpm_octave_ambiguous and abs(td.bpm_alternative - bpm) / bpm <= 0.02, td.notes
    assert "octave" in td.notes["bpm"]


@pytest.mark.parametrize("tonic,scale", [("C", "major"), ("A", "minor"), ("F#", "major"), ("Eb", "minor"),
                                         ("G", "major"), ("Bb", "minor")])
def test_key_and_scale_of_chord_progressions(tonic: str, scale: str) -> None:
    """Chord progressions (with a drum kit mixed in) give the right key and scale."""
    h = chords(tonic, scale)
    x = h + 0.8 * drums(110, seconds=len(h) / SR)[: len(h)]
    stem = analyse_signal(x, SR, "instrumental")
    td = describe_track({"track_id": "a/t", "artist": "a", "track": "t"}, {"instrumental": stem}, AnalysisConfig())
    assert same_key(td.key, tonic) and td.scale == scale, (td.key, td.scale, td.notes)
    assert td.sources["key"].startswith("essentia KeyExtractor (profile edma)")


def test_silence_and_noise_give_explicit_low_confidence_outcomes() -> None:
    """Silence, white noise and a too-short clip never crash; missing values carry their reason."""
    track = {"track_id": "a/t", "artist": "a", "track": "t"}
    silent = analyse_signal(np.zeros(10 * SR, np.float32), SR, "full")
    assert silent.silent and "silent" in silent.notes["all"]
    td = describe_track(track, {"full": silent, "instrumental": silent}, AnalysisConfig())
    assert td.bpm is None and td.key is None and td.moods == []
    assert "silent" in td.notes["bpm"] and "silent" in td.notes["key"]

    for seconds in (8, 24):  # RhythmExtractor2013 is confident about 8 s of noise, less so about 24 s
        noise = 0.1 * np.random.default_rng(seconds).standard_normal(seconds * SR).astype(np.float32)
        stem = analyse_signal(noise, SR, "full")
        td = describe_track(track, {"full": stem}, AnalysisConfig())
        assert td.key is None and "noise-like" in td.notes["key"]
        assert td.bpm is None and "low confidence" in td.notes["bpm"], (stem.bpm_confidence, td.notes)
        assert stem.bpm_estimate is not None  # the raw reading is kept for inspection

    short = analyse_signal(drums(120, seconds=0.5), SR, "full")
    td = describe_track(track, {"full": short}, AnalysisConfig())
    assert td.bpm is None and td.notes["bpm"]
    rec = make_caption(td, "full", "u-1", 0)
    assert rec.caption and "BPM" not in rec.caption


def test_vocal_register_and_presence_from_the_acapella() -> None:
    """A low and a high synthetic voice land in different registers; the acapella share is measured."""
    backing = 0.5 * drums(100, seconds=8)
    for f0, register in ((110.0, "low"), (330.0, "high")):
        v = voice(f0, 8)
        stems = {"acapella": analyse_signal(v, SR, "acapella"),
                 "instrumental": analyse_signal(backing, SR, "instrumental"),
                 "full": analyse_signal(v + backing, SR, "full")}
        td = describe_track({"track_id": "a/t", "artist": "a", "track": "t"}, stems, AnalysisConfig())
        assert td.vocal_register == register and abs(td.vocal_pitch_hz - f0) / f0 < 0.03
        assert 0 < td.vocal_presence < 1 and td.vocals in ("present", "lead")
        assert "vocals" in td.sources and "vocal_register" in td.sources


# --------------------------------------------------------------------------- captions and the UUID


def _descriptors(i: int = 0) -> TrackDescriptors:
    """Hand-made descriptors of a vocal hip-hop track."""
    return TrackDescriptors(
        track_id=f"artist/track-{i}", artist="artist", track=f"track {i}", split="train", duration_s=30.0,
        bpm=140.0, bpm_confidence=3.2, key="F", scale="minor", key_strength=0.8, energy=0.8, energy_level="high",
        brightness="bright", vocals="lead", vocal_register="low", vocal_presence=0.5,
        instruments=["punchy drums", "deep bass"], moods=["energetic", "dark"], genre="hip hop",
        sources={"bpm": "essentia", "key": "essentia", "moods": "model-free"},
    )


def test_captions_are_deterministic_varied_and_per_category() -> None:
    """Same seed, same caption; templates vary across tracks; each category describes its own stem."""
    td = _descriptors()
    a, b = make_caption(td, "full", "uuid-x", 1234), make_caption(td, "full", "uuid-x", 1234)
    assert a == b and a.description == f"uuid-x {a.caption}"
    assert "140 BPM" in a.caption and "in F minor" in a.caption and "hip hop" in a.caption
    texts = {make_caption(_descriptors(i), "full", "u", 1234).caption.replace(f"track-{i}", "") for i in range(12)}
    assert len(texts) >= 4, texts
    for i in range(6):
        d = _descriptors(i)
        aca, inst, full = (make_caption(d, c, "u", 7).caption for c in ("acapella", "instrumental", "full"))
        assert any(w in aca for w in ("vocal", "singing")) and "drums" not in aca
        assert "vocals " not in inst.replace("without vocals", "") and "drums" in inst
        assert any(w in full for w in ("vocals", "singing")) and "drums" in full
    missing = dataclasses.replace(_descriptors(), bpm=None, key=None, scale=None, genre=None, moods=[])
    text = make_caption(missing, "full", "u", 1).caption
    assert "BPM" not in text and " in " not in text and "None" not in text and "  " not in text


# --------------------------------------------------------------------------- the stage on a curated run


def write_curated(run_dir: Path, tracks: dict[tuple[str, str], dict[str, np.ndarray]], seg_s: float = 4.0,
                  raw_root: Path | None = None) -> None:
    """A minimal stage-01 output (uncaptioned); sorted tracks alternate between train and test."""
    write_curated_run(run_dir, [CuratedTrack(artist, track, ("train", "test")[n % 2], stems)
                                for n, ((artist, track), stems) in enumerate(sorted(tracks.items()))],
                      seg_s, SR, raw_root=raw_root)


def small_corpus(seconds: float = 8.0) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """Two artists × two tracks with drums, chords and a voice of distinct register."""
    out = {}
    n = int(seconds * SR)
    for a, (artist, f0, bpm, keys) in enumerate([("Low", 110.0, 96, ("A", "D")), ("High", 330.0, 128, ("C", "G"))]):
        for t, tonic in enumerate(keys):
            inst = (chords(tonic, ("minor", "major")[a], reps=2)[:n] + 0.6 * drums(bpm + 4 * t, seconds)[:n])
            inst = np.pad(inst, (0, n - len(inst)))
            aca = voice(f0 * (1 + 0.05 * t), seconds)[:n]
            out[(artist, f"Song {t}")] = {"acapella": aca, "instrumental": inst, "full": aca + inst}
    return out


def make_params(run_dir: Path, **overrides):
    """Smoke params for ``run_dir`` (one worker unless overridden)."""
    return load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(run_dir), "workers": 1, **overrides})


@pytest.fixture(scope="module")
def corpus() -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """The small corpus (built once per module)."""
    return small_corpus()


def test_run_captioning_fills_sidecars_tables_and_reruns_for_free(tmp_path: Path, corpus, monkeypatch) -> None:
    """Every sidecar gets the UUID-prefixed caption; tables are written; a rerun computes nothing."""
    raw = tmp_path / "raw"
    (raw / "Low").mkdir(parents=True)
    (raw / "Low" / "artist.json").write_text(json.dumps({"genre": "Hip Hop"}))
    write_curated(tmp_path / "run", corpus, raw_root=raw)
    params = make_params(tmp_path / "run")
    res = run_captioning(params, progress=False)
    assert res.stems_analysed == 12 and res.stems_cached == 0 and len(res.records) == 12
    assert res.sidecars_written == sum(r.n_segments for r in res.records)

    uuid = data.load_run_uuid(params.run_dir)
    sidecars = sorted((params.run.curated / "segments").rglob("*.json"))
    for p in sidecars:
        d = read_json(p)
        assert d["description"].startswith(f"{uuid} ") and d["keywords"] and d["moods"]
        assert d["title"] and d["name"]  # stage 01's fields are kept
    by_track = {(t.artist, t.track): t for t in res.tracks}
    low, high = by_track[("Low", "Song 0")], by_track[("High", "Song 0")]
    assert low.genre == "hip hop" and "artist.json" in low.sources["genre"]
    assert high.genre is None and "genre" in high.notes
    assert low.vocal_register == "low" and high.vocal_register == "high"
    assert all(t.bpm for t in res.tracks) and all(t.key for t in res.tracks)
    rows = read_jsonl(params.run.captions / "captions.jsonl")
    csv_lines = (params.run.captions / "captions.csv").read_text().splitlines()
    assert len(rows) == len(csv_lines) - 1 == 12 and load_captions(params.run_dir) == res.records
    assert {r.category for r in res.records} == set(CATEGORIES)

    # rerun: no descriptor work at all, no file rewritten
    def boom(*a, **k):
        raise AssertionError("descriptors recomputed on an unchanged rerun")

    monkeypatch.setattr(descriptors, "analyse_signal", boom)
    mtimes = {p: p.stat().st_mtime_ns for p in [*sidecars, *params.run.captions.glob("*.*")]}
    again = run_captioning(params, progress=False)
    assert again.stems_analysed == 0 and again.stems_cached == 12 and again.sidecars_written == 0
    assert again.records == res.records and again.uuid == uuid
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_cache_follows_content_and_settings(tmp_path: Path, corpus) -> None:
    """Changing one stem's audio or the key profile recomputes exactly what depends on it."""
    sub = dict(list(corpus.items())[:1])
    write_curated(tmp_path / "run", sub)
    params = make_params(tmp_path / "run")
    assert run_captioning(params, progress=False).stems_analysed == 3
    wav = params.run.curated / "tracks" / "low" / "song-0" / "acapella.wav"
    x, _ = sf.read(wav)
    sf.write(wav, 0.5 * x, SR, subtype="PCM_16")
    res = run_captioning(params, progress=False)
    assert (res.stems_analysed, res.stems_cached) == (1, 2)
    assert len(list((params.run.captions / "descriptors").glob("*.json"))) == 3  # the stale entry is gone
    res = run_captioning(make_params(tmp_path / "run", **{"caption.key_profile": "krumhansl"}), progress=False)
    assert (res.stems_analysed, res.stems_cached) == (2, 1)  # key is measured on full and instrumental only


def test_parallel_workers_give_the_same_captions(tmp_path: Path, corpus) -> None:
    """A process pool produces exactly what one process does."""
    sub = dict(list(corpus.items())[:2])
    write_curated(tmp_path / "one", sub)
    write_curated(tmp_path / "two", sub)
    one = run_captioning(make_params(tmp_path / "one"), progress=False)
    two = run_captioning(make_params(tmp_path / "two", workers=2), progress=False)
    assert two.workers == 2 and [r.description for r in one.records] == [r.description for r in two.records]


# --------------------------------------------------------------------------- Essentia TensorFlow models


GENRES = ["Hip Hop---Boom Bap", "Electronic---Techno", "Rock---Indie Rock", "Pop---Ballad"]
MOODS = ["energetic", "dark", "calm", "love", "happy"]


def fake_model_dir(path: Path) -> Path:
    """Empty graphs and real-looking metadata for the three models."""
    path.mkdir(parents=True, exist_ok=True)
    for role, rel in cap.ESSENTIA_MODELS.items():
        name = rel.rsplit("/", 1)[-1]
        (path / f"{name}.pb").write_bytes(b"not a graph")
        meta: dict = {"name": name}
        if role == "genre":
            meta.update(classes=GENRES, schema={
                "inputs": [{"name": "serving_default_model_Placeholder"}],
                "outputs": [{"name": "PartitionedCall:0", "output_purpose": "predictions"}]})
        elif role == "mood":
            meta.update(classes=MOODS, schema={"inputs": [{"name": "model/Placeholder"}],
                                               "outputs": [{"name": "model/Sigmoid", "output_purpose": "predictions"}]})
        else:
            meta.update(schema={"inputs": [{"name": "serving_default_melspectrogram"}],
                                "outputs": [{"name": "PartitionedCall:0", "output_purpose": "predictions"},
                                            {"name": "PartitionedCall:1", "output_purpose": "embeddings"}]})
        (path / f"{name}.json").write_text(json.dumps(meta))
    return path


@pytest.fixture
def fake_tf(monkeypatch):
    """Stand-ins for essentia-tensorflow's algorithms that record how they were built and called."""
    import essentia.standard as es

    calls: list[tuple[str, dict, tuple]] = []

    class Effnet:
        def __init__(self, **kw):
            self.kw = kw

        def __call__(self, x):
            calls.append(("effnet", self.kw, np.shape(x)))
            assert x.dtype == np.float32 and x.ndim == 1
            return np.ones((max(1, len(x) // 16000), 1280), np.float32)

    class Head:
        def __init__(self, **kw):
            self.kw = kw

        def __call__(self, emb):
            calls.append(("head", self.kw, np.shape(emb)))
            n = len(GENRES) if "genre" in self.kw["graphFilename"] else len(MOODS)
            scores = np.linspace(0.9, 0.1, n, dtype=np.float32)
            return np.tile(scores, (len(emb), 1))

    monkeypatch.setattr(es, "TensorflowPredictEffnetDiscogs", Effnet, raising=False)
    monkeypatch.setattr(es, "TensorflowPredict2D", Head, raising=False)
    essentia_models._MODELS.clear()
    yield calls
    essentia_models._MODELS.clear()


def test_tensorflow_models_are_wired_up_to_the_model_call(tmp_path: Path, corpus, fake_tf) -> None:
    """With a model dir, 16 kHz audio goes through EffNet, its embeddings through both heads."""
    models = fake_model_dir(tmp_path / "models")
    sub = dict(list(corpus.items())[:1])
    write_curated(tmp_path / "run", sub)
    params = make_params(tmp_path / "run", **{"caption.essentia_model_dir": str(models)})
    res = run_captioning(params, progress=False)
    assert res.models == "essentia-tensorflow"
    built = {c[1].get("graphFilename", "").rsplit("/", 1)[-1]: c[1] for c in fake_tf}
    assert built["discogs-effnet-bs64-1.pb"]["output"] == "PartitionedCall:1"
    assert built["discogs-effnet-bs64-1.pb"]["input"] == "serving_default_melspectrogram"
    assert built["genre_discogs400-discogs-effnet-1.pb"]["input"] == "serving_default_model_Placeholder"
    assert built["mtg_jamendo_moodtheme-discogs-effnet-1.pb"]["output"] == "model/Sigmoid"
    effnet_inputs = [c[2] for c in fake_tf if c[0] == "effnet"]
    assert len(effnet_inputs) == 2 and all(abs(s[0] - 8 * 16000) < 10 for s in effnet_inputs)  # full + instrumental
    td = res.tracks[0]
    assert td.genre == "hip hop" and td.styles[0] == "boom bap" and td.moods[:2] == ["energetic", "dark"]
    assert "genre_discogs400" in td.sources["genre"] and "mtg_jamendo_moodtheme" in td.sources["moods"]
    full = next(r for r in res.records if r.category == "full")
    assert "hip hop" in full.caption and full.sources["genre"] == td.sources["genre"]


def test_missing_models_and_plain_essentia_give_clear_messages(tmp_path: Path, corpus) -> None:
    """An incomplete model dir names every missing file and its URL; plain essentia says what to install."""
    write_curated(tmp_path / "run", dict(list(corpus.items())[:1]))
    empty = tmp_path / "empty"
    empty.mkdir()
    params = make_params(tmp_path / "run", **{"caption.essentia_model_dir": str(empty)})
    with pytest.raises(MissingModelsError) as err:
        run_captioning(params, progress=False)
    msg = str(err.value)
    for name, url in cap.expected_model_files():
        assert name in msg and url in msg
    assert "essentia.upf.edu/models" in msg and "pip install essentia-tensorflow" in msg and "never both" in msg
    cache = params.run.captions / "descriptors"
    assert not cache.exists() or not any(cache.iterdir()), "no work before the models are checked"

    import essentia.standard as es

    if hasattr(es, "TensorflowPredictEffnetDiscogs"):
        pytest.skip("essentia-tensorflow is installed here")
    complete = fake_model_dir(tmp_path / "models")
    with pytest.raises(CaptionError, match=r"pip install essentia-tensorflow==\S+.*never both"):
        run_captioning(make_params(tmp_path / "run", **{"caption.essentia_model_dir": str(complete)}), progress=False)


# --------------------------------------------------------------------------- with the real stage 01


def test_captions_on_real_curation_output(tmp_path: Path) -> None:
    """Stage 01's own output (curate.run_curation) is captioned without adaptation."""
    curate = pytest.importorskip("silicon_sing.curate")
    from stems import tone_stems, write_track

    root = tmp_path / "stems"
    for a, (artist, f0) in enumerate([("Alto", 330.0), ("Basso", 110.0)]):
        write_track(root, artist, "song", tone_stems(6.0, 44100, f0, seed=a), 44100)
    params = make_params(tmp_path / "run", **{"curate.data_root": str(root), "curate.segment_seconds": 2.0})
    cur = curate.run_curation(params, progress=False)
    res = run_captioning(params, progress=False)
    assert len(res.records) == 3 * len(cur.tracks)
    for s in cur.segments:
        d = read_json((params.run.curated / s.path).with_suffix(".json"))
        assert d["description"].startswith(res.uuid)
