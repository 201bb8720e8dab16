"""Curation: good data, a corpus of bad inputs, splits, loudness, manifests, incremental reruns."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from silicon_sing import audio as au
from silicon_sing.curate import assign_splits, load_report, load_segments, load_tracks, run_curation, shared_gain_db
from silicon_sing.fsutil import file_sha1
from silicon_sing.names import slugify
from silicon_sing.params import CATEGORIES, load_params
from stems import tone_stems, write_track

REPO = Path(__file__).resolve().parents[1]
SR_IN = 44100


def make_params(tmp_path: Path, data_root: Path, **curate):
    """Smoke params pointed at ``data_root`` with short segments and one worker."""
    overrides = {"run_dir": str(tmp_path / "run"), "curate.data_root": str(data_root), "workers": 1,
                 "curate.segment_seconds": 2.0, **{f"curate.{k}": v for k, v in curate.items()}}
    return load_params(REPO / "params" / "smoke.yaml", overrides)


def hashes(root: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every file under ``root``."""
    return {str(p): (file_sha1(p), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def good_root(tmp_path: Path) -> Path:
    """Two artists with three tracks each, 44.1 kHz stereo, one track without a full mix."""
    root = tmp_path / "stems"
    for a, (artist, f0) in enumerate([("Alto", 330.0), ("Basso", 110.0)]):
        for t in range(3):
            stems = tone_stems(7.0 + t, SR_IN, f0 * (1 + 0.1 * t), seed=10 * a + t)
            write_track(root, artist, f"song {t}", stems, SR_IN, skip=("full",) if (a, t) == (1, 2) else ())
    return root


def test_good_data_is_curated_aligned_and_split_by_track(tmp_path: Path, good_root: Path) -> None:
    """Every good track yields aligned 32 kHz mono segments, manifests and a track-level split."""
    params = make_params(tmp_path, good_root)
    before = hashes(good_root)
    res = run_curation(params, progress=False)
    assert len(res.tracks) == 6 and not res.rejected
    assert hashes(good_root) == before, "raw inputs must never be modified"
    mixed = [t for t in res.tracks if t.full_was_mixed]
    assert [(t.artist, t.track) for t in mixed] == [("Basso", "song 2")]

    cur = params.run.curated
    by_key = {(s.track_id, s.index, s.category): s for s in res.segments}
    for t in res.tracks:
        n_expected = int(t.duration_s // 2.0)
        assert all(t.n_segments[c] == n_expected for c in CATEGORIES)
        for i in range(n_expected):
            segs = {c: sf.read(str(cur / by_key[(t.track_id, i, c)].path), dtype="float32") for c in CATEGORIES}
            for x, sr in segs.values():
                assert sr == 32000 and x.ndim == 1 and len(x) == 64000
            # one shared gain keeps full == acapella + instrumental, up to 16-bit rounding of the
            # inputs and outputs; a one-sample misalignment would leave a far larger residual
            a, b, f = segs["acapella"][0], segs["instrumental"][0], segs["full"][0]
            assert np.max(np.abs(f - a - b)) < 1e-3
            assert np.max(np.abs(f[1:] - a[:-1] - b[:-1])) > 1e-2
        full, sr = au.load_audio(cur / t.audio["full"])
        assert abs(au.loudness_lufs(full[0], sr) - params.curate.target_lufs) < 0.5 or \
            au.peak_db(full) > -1.2

    splits_of_track = {}
    for s in res.segments:
        splits_of_track.setdefault(s.track_id, set()).add(s.split)
    assert all(len(v) == 1 for v in splits_of_track.values()), "a track's segments must share one split"
    per_artist = Counter((t.artist, t.split) for t in res.tracks)
    assert all(per_artist[(a, "test")] >= 1 for a in ("Alto", "Basso"))

    for cat in CATEGORIES:
        for split in ("train", "valid", "test"):
            rows = [json.loads(x) for x in (cur / "manifests" / cat / split / "data.jsonl").read_text().splitlines()]
            assert len(rows) == sum(1 for s in res.segments if s.category == cat and s.split == split)
            for r in rows:
                assert Path(r["path"]).is_absolute() and Path(r["path"]).exists() and r["sample_rate"] == 32000
                side = json.loads(Path(r["path"]).with_suffix(".json").read_text())
                assert {"key", "artist", "sample_rate", "file_extension", "description", "keywords", "duration",
                        "bpm", "genre", "title", "name", "instrument", "moods"} <= set(side)
    assert [t.track_id for t in load_tracks(params.run_dir)] == [t.track_id for t in res.tracks]
    assert len(load_segments(params.run_dir)) == len(res.segments)
    split_file = json.loads((cur / "split.json").read_text())
    assert split_file["seed"] == params.seed and len(split_file["tracks"]) == 6


def test_rerun_with_unchanged_inputs_does_no_work(tmp_path: Path, good_root: Path) -> None:
    """A second run reuses every track and rewrites no file; touching one track redoes only it."""
    params = make_params(tmp_path, good_root)
    first = run_curation(params, progress=False)
    outputs = hashes(params.run.curated)
    second = run_curation(params, progress=False)
    assert second.processed_tracks == 0 and second.reused_tracks == 6
    assert second.audio_seconds_processed == 0
    assert hashes(params.run.curated) == outputs
    assert [s.segment_id for s in second.segments] == [s.segment_id for s in first.segments]
    x, sr = sf.read(str(good_root / "Alto" / "song 0" / "acapella.wav"))
    sf.write(str(good_root / "Alto" / "song 0" / "acapella.wav"), x * 0.5, sr)
    third = run_curation(params, progress=False)
    assert third.processed_tracks == 1 and third.reused_tracks == 5


def test_bad_inputs_are_reported_and_good_tracks_still_processed(tmp_path: Path) -> None:
    """Truncated, fake, empty, mismatched, silent, stereo 44.1 kHz and non-ASCII inputs."""
    root = tmp_path / "stems"
    good = lambda s, sec=6.0: tone_stems(sec, SR_IN, 220.0, seed=s)  # noqa: E731
    write_track(root, "Artist", "good", good(1), SR_IN)
    write_track(root, "Artist", "good mono 16k", {k: v[:1, ::1] for k, v in tone_stems(6.0, 16000, 200.0, 3).items()},
                16000, ext="flac")
    # truncated: keep the header, cut the data (the header declares more frames than decode → rejected as truncated)
    d = write_track(root, "Artist", "truncated", good(2), SR_IN)
    raw = (d / "instrumental.wav").read_bytes()
    (d / "instrumental.wav").write_bytes(raw[: len(raw) // 3])
    d = write_track(root, "Artist", "text", good(4), SR_IN, skip=("acapella",))
    (d / "acapella.wav").write_text("this is not audio\n")
    d = write_track(root, "Artist", "empty", good(5), SR_IN, skip=("full",))
    (d / "full.wav").write_bytes(b"")
    long, short = good(6, 8.0), good(7, 6.0)
    write_track(root, "Artist", "mismatch", {"acapella": long["acapella"], "instrumental": short["instrumental"],
                                             "full": short["full"]}, SR_IN)
    silent = good(8)
    silent["acapella"] = np.zeros_like(silent["acapella"])
    write_track(root, "Artist", "silent vocal", silent, SR_IN)
    write_track(root, "Björk Ñandú", "cañón 東京", good(9), SR_IN)
    d = write_track(root, "Artist", "extra", good(10), SR_IN)
    (d / "notes.txt").write_text("lyrics")
    (d / "vocals.wav").write_bytes((d / "acapella.wav").read_bytes())
    write_track(root, "Artist", "no stems", {"full": good(11)["full"]}, SR_IN)

    before = hashes(root)
    params = make_params(tmp_path, root)
    res = run_curation(params, progress=False)
    assert hashes(root) == before

    accepted = {(t.artist, t.track) for t in res.tracks}
    assert accepted == {("Artist", "good"), ("Artist", "good mono 16k"), ("Björk Ñandú", "cañón 東京"),
                        ("Artist", "extra")}
    summary, files = load_report(params.run_dir)
    by = {(Path(f.path).parent.name, Path(f.path).name): f for f in files}

    def reason(track: str, name: str) -> str:
        f = by[(track, name)]
        return f"{f.status}: {f.reason}"

    assert reason("truncated", "instrumental.wav").startswith(
        ("rejected: truncated", "rejected: undecodable", "skipped: track rejected: stem durations differ"))
    assert "durations differ" in reason("truncated", "acapella.wav") or "bad instrumental" in reason("truncated", "acapella.wav")
    assert reason("text", "acapella.wav").startswith("rejected: undecodable")
    assert reason("text", "full.wav").startswith("skipped: track rejected: bad acapella")
    assert reason("empty", "full.wav") == "rejected: empty file (0 bytes)"
    assert "durations differ by 2.00 s" in reason("mismatch", "acapella.wav")
    assert reason("silent vocal", "acapella.wav").startswith("rejected: silent (RMS")
    assert reason("extra", "notes.txt").startswith("unexpected:")
    assert reason("extra", "vocals.wav").startswith("unexpected:")
    assert "missing acapella, instrumental" in reason("no stems", "full.wav")
    assert summary["tracks_accepted"] == 4

    nonascii = next(t for t in res.tracks if t.artist == "Björk Ñandú")
    assert nonascii.track_id.isascii() and (params.run.curated / nonascii.audio["full"]).exists()
    mono16k = next(t for t in res.tracks if t.track == "good mono 16k")
    x, sr = au.load_audio(params.run.curated / mono16k.audio["acapella"])
    assert sr == 32000 and x.shape[0] == 1 and abs(x.shape[1] / sr - 6.0) < 1e-3


def test_missing_data_root_names_the_fix(tmp_path: Path) -> None:
    """A wrong data_root fails with the path and the parameter to change."""
    params = make_params(tmp_path, tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="curate.data_root"):
        run_curation(params, progress=False)


def test_assign_splits_is_seeded_stratified_and_by_track() -> None:
    """Each artist gets test and valid tracks, the split is seeded, fractions are respected."""
    ids = [(a, f"{a}/t{i}") for a in ("x", "y", "z") for i in range(20)]
    fr = {"train": 0.6, "valid": 0.2, "test": 0.2}
    s1, s2 = assign_splits(ids, fr, seed=1), assign_splits(list(reversed(ids)), fr, seed=1)
    assert s1 == s2
    assert s1 != assign_splits(ids, fr, seed=2)
    for a in ("x", "y", "z"):
        c = Counter(s1[t] for aa, t in ids if aa == a)
        assert c == {"train": 12, "valid": 4, "test": 4}
    small = assign_splits([("a", "a/1"), ("a", "a/2"), ("a", "a/3")], {"train": 0.5, "valid": 0.25, "test": 0.25}, 0)
    assert sorted(small.values()) == ["test", "train", "valid"]
    assert set(assign_splits([("a", "a/1")], fr, 0).values()) == {"train"}
    with pytest.raises(ValueError):
        assign_splits(ids, {"train": 0.5, "test": 0.2}, 0)


def test_shared_gain_respects_peak_ceiling() -> None:
    """The loudness target yields to the −1 dBFS ceiling, and the same gain serves every stem."""
    sr = 32000
    t = np.arange(sr * 2) / sr
    quiet = {"acapella": 0.01 * np.sin(2 * np.pi * 440 * t), "instrumental": 0.01 * np.sin(2 * np.pi * 110 * t)}
    quiet["full"] = quiet["acapella"] + quiet["instrumental"]
    gain, loud = shared_gain_db(quiet, sr, -18.0)
    assert abs(loud + gain + 18.0) < 0.01
    spiky = dict(quiet)
    spiky["acapella"] = quiet["acapella"].copy()
    spiky["acapella"][100] = 0.9
    gain2, _ = shared_gain_db(spiky, sr, -18.0)
    assert 20 * np.log10(0.9) + gain2 == pytest.approx(-1.0, abs=0.01)


def test_slugify_is_ascii_and_collision_free() -> None:
    """Different names never share a slug; plain names are kept."""
    assert slugify("song-1") == "song-1"
    names = ["Björk", "Bjork", "björk", "東京", "大阪", "a b", "a-b"]
    slugs = [slugify(n) for n in names]
    assert len(set(slugs)) == len(names) and all(s.isascii() for s in slugs)
