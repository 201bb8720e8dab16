"""Shared test helpers: small hand-made stems and signals (no synthetic corpus generator), a hand-made
stage-01 output (the curated data contract), glued notebook values."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import soundfile as sf
import torch

from silicon_sing.params import RunPaths


def tone_stems(seconds: float, sr: int, f0: float, seed: int, stereo: bool = True) -> dict[str, np.ndarray]:
    """A harmonic 'voice' with syllable gating and a noisy 'accompaniment', as [C, N] arrays."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.15
    voice *= 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2
    inst = 0.05 * rng.standard_normal(t.size) + 0.1 * np.sin(2 * np.pi * 55 * t)
    stems = {"acapella": voice, "instrumental": inst}
    if stereo:
        stems = {k: np.stack([v, 0.9 * v]) for k, v in stems.items()}
    else:
        stems = {k: v[None, :] for k, v in stems.items()}
    stems["full"] = stems["acapella"] + stems["instrumental"]
    return {k: v.astype(np.float32) for k, v in stems.items()}


def write_track(root: Path, artist: str, track: str, stems: dict[str, np.ndarray], sr: int,
                ext: str = "wav", skip: tuple[str, ...] = ()) -> Path:
    """Write ``stems`` in the user layout ``<root>/<artist>/<track>/<stem>.<ext>``."""
    d = root / artist / track
    d.mkdir(parents=True, exist_ok=True)
    for name, x in stems.items():
        if name not in skip:
            sf.write(str(d / f"{name}.{ext}"), x.T, sr)
    return d


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = 32000, amp: float = 0.3) -> np.ndarray:
    """A sine tone, float32 mono."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float = 1.0, sr: int = 32000, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    """White noise, float32 mono."""
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


# --------------------------------------------------------------------------- a hand-made stage-01 output


@dataclass
class CuratedTrack:
    """One accepted track: whole-track mono stems ({category: [N] array} at the curated rate) and its split."""

    artist: str
    track: str
    split: str
    stems: dict[str, np.ndarray]
    sidecar: dict[str, Any] = field(default_factory=dict)  # MusicInfo fields set on every segment's sidecar

    @property
    def track_id(self) -> str:
        """``<artist>/<track>``, lower-cased, spaces as dashes (the tests' names need no more slugging)."""
        return f"{self.artist.lower()}/{self.track.lower().replace(' ', '-')}"


def write_curated_run(run_dir: Path, tracks: Sequence[CuratedTrack], seg_s: float, sr: int = 32000,
                      caption: Callable[[CuratedTrack, str, int], str] | None = None, uuid: str | None = None,
                      raw_root: Path | None = None) -> Path:
    """Stage 01's output for ``tracks`` as the curated data contract spells it (CONTRIBUTING.md).

    Whole tracks, ``seg_s`` segments cut from them (sample-aligned across categories) with MusicInfo
    sidecars (``description`` from ``caption(track, category, index)``, "" as stage 01 leaves it),
    ``tracks.jsonl``, ``segments.jsonl`` and the audiocraft manifests; with ``uuid``, also stage 02's
    ``run_uuid.json``. Rows follow the order of ``tracks``, then segment index.
    """
    paths = RunPaths(Path(run_dir))
    cur = paths.curated
    track_rows, seg_rows, manifests = [], [], {}
    for t in tracks:
        tid, audio, n_seg = t.track_id, {}, {}
        for cat, x in t.stems.items():
            x = np.asarray(x, np.float32)
            audio[cat] = f"tracks/{tid}/{cat}.wav"
            (cur / audio[cat]).parent.mkdir(parents=True, exist_ok=True)
            sf.write(cur / audio[cat], x, sr, subtype="PCM_16")
            n_seg[cat] = int(len(x) / sr // seg_s)
            for i in range(n_seg[cat]):
                rel = f"segments/{cat}/{tid}/{i:03d}.wav"
                wav = cur / rel
                wav.parent.mkdir(parents=True, exist_ok=True)
                sf.write(wav, x[int(i * seg_s * sr):int((i + 1) * seg_s * sr)], sr, subtype="PCM_16")
                side = {"key": None, "artist": t.artist, "sample_rate": sr, "file_extension": "wav",
                        "description": caption(t, cat, i) if caption else "", "keywords": None, "duration": seg_s,
                        "bpm": None, "genre": None, "title": t.track, "name": f"{tid}/{cat}/{i:03d}",
                        "instrument": cat, "moods": None}
                wav.with_suffix(".json").write_text(json.dumps({**side, **t.sidecar}))
                seg_rows.append({"segment_id": f"{tid}/{cat}/{i:03d}", "artist": t.artist, "track": t.track,
                                 "track_id": tid, "category": cat, "split": t.split, "index": i,
                                 "start_s": i * seg_s, "duration_s": seg_s, "path": rel, "rms_db": -20.0})
                row = {"path": str(wav.resolve()), "duration": seg_s, "sample_rate": sr, "amplitude": None,
                       "weight": None, "info_path": None}
                manifests.setdefault((cat, t.split), []).append(json.dumps(row, sort_keys=True))
        raw = raw_root or paths.raw
        track_rows.append({"artist": t.artist, "track": t.track, "track_id": tid, "split": t.split,
                           "duration_s": len(next(iter(t.stems.values()))) / sr, "sample_rate": sr, "gain_db": 0.0,
                           "loudness_lufs": -18.0, "full_was_mixed": False, "audio": audio, "n_segments": n_seg,
                           "n_dropped_silent": {c: 0 for c in t.stems},
                           "source_files": {c: str(raw / t.artist / t.track / f"{c}.wav") for c in t.stems}})
    (cur / "tracks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in track_rows))
    (cur / "segments.jsonl").write_text("".join(json.dumps(r) + "\n" for r in seg_rows))
    for (cat, split), lines in manifests.items():
        paths.manifest(cat, split).parent.mkdir(parents=True, exist_ok=True)
        paths.manifest(cat, split).write_text("".join(f"{x}\n" for x in lines))
    if uuid is not None:
        paths.run_uuid.parent.mkdir(parents=True, exist_ok=True)
        paths.run_uuid.write_text(json.dumps({"uuid": uuid, "source": "test"}))
    return Path(run_dir)


# --------------------------------------------------------------------------- notebooks


def glued(nb_path: Path) -> dict[str, str]:
    """Names and plain-text values glued by an executed notebook."""
    nb = nbformat.read(nb_path, as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook", {})
            if meta.get("name"):
                data = o.get("data", {})
                out[meta["name"]] = data.get(meta.get("mime_prefix", "") + "text/plain", data.get("text/plain", ""))
    return out


class _Evil:
    """A pickle payload that creates a marker file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_pickle(path: Path, marker: Path, extra: dict | None = None) -> Path:
    """A torch checkpoint at ``path`` that touches ``marker`` if anything ever unpickles it fully."""
    torch.save({"weight": torch.zeros(2), "evil": _Evil(marker), **(extra or {})}, path)
    return path


def _in_place(v: float) -> dict[str, float]:
    """``lines_in_place`` with an interval of ±0.1 (NaN stays NaN)."""
    return {"lines_in_place": v, "lines_in_place_lo": v - .1, "lines_in_place_hi": v + .1}


def musicality_summary(with_truth: bool = True, round_trip: bool = False) -> pd.DataFrame:
    """A summarise_musicality frame: originals keep everything, the baseline half, the fine-tune sings a little;
    with ``round_trip``, the originals through the codec keep 80 % of tempo, 90 % of key, voiced 70 %.
    Harmonic lines per frame: originals 1.2, baseline 0.3, fine-tuned 0.4, round trip 0.9, which keeps 20 %
    [10 %, 30 %] of the originals' lines in place (NaN for every other source)."""
    rows = []
    sources = [("original", 1.0, 1.0, 0.8, float("nan"), 1.2), ("baseline", 0.5, 0.7, 0.3, 2.0, 0.3),
               ("fine-tuned", 0.4, 0.6, 0.55, 1.0, 0.4)]
    if round_trip:  # last, so ordering is the table's job
        sources.append(("codec round trip", 0.8, 0.9, 0.7, 0.1, 0.9))
    for cat in ("instrumental", "acapella"):
        for src, tempo, key, voiced, err, lines in sources:
            nan = float("nan")
            t, k = (tempo, key) if with_truth else (nan, nan)
            rows.append(dict(source=src, category=cat, n_examples=6, n_tracks=3, keeps_tempo=t, keeps_tempo_lo=t - .1,
                             keeps_tempo_hi=t + .1, keeps_key=k, keeps_key_lo=k - .1, keeps_key_hi=k + .1, voiced=voiced,
                             voiced_lo=voiced - .1, voiced_hi=voiced + .1, pitch_error_st=err, pitch_error_st_lo=err - .5,
                             pitch_error_st_hi=err + .5, harmonic_lines=lines, harmonic_lines_lo=lines - .1,
                             harmonic_lines_hi=lines + .1, **_in_place(0.2 if src == "codec round trip" else nan)))
    return pd.DataFrame(rows)

