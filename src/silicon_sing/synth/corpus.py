"""A track's three stems and the corpus on disk (``<root>/<artist>/<track>/<stem>.<ext>`` + ``corpus.json``).

``full`` is the exact sample sum of the two stems after one shared peak gain. ``corpus.json``
records the generator's spec and, per track, its ground truth (tempo, key, chords, vocal stats),
read back by :func:`load_corpus_tracks` / :func:`corpus_truth`.

Notebook: notebooks/01_curate.ipynb (the smoke profile's input)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import save_audio
from ..fsutil import atomic_write_json, read_json
from ..machine import usable_cpus
from ..params import CATEGORIES
from .band import _render_band
from .dsp import _raised_cos, _reverb, _reverb_ir
from .plan import ARTISTS, ArtistStyle, TrackPlan, _rng, plan_track
from .voice import _render_vocal

SYNTH_VERSION = 1  # bump whenever the rendered audio changes, so existing corpora regenerate
STEMS = CATEGORIES  # one file per category in every track folder
CORPUS_FILE = "corpus.json"  # the spec, file list and ground truth, beside the artist folders
PEAK = 0.89  # the loudest sample of any stem after the shared gain


# --------------------------------------------------------------------------- a track


def synth_track(style: ArtistStyle, track_index: int, seconds: float, sr: int, seed: int) -> dict[str, np.ndarray]:
    """Render one track as float32 stereo ``[2, N]`` stems; ``full`` is exactly acapella + instrumental."""
    plan = plan_track(style, track_index, seconds, seed)
    rng = _rng(seed, style, track_index, 1)
    voice, env = _render_vocal(style, plan, sr, rng)
    band = _render_band(style, plan, sr, _rng(seed, style, track_index, 2))
    n = voice.size
    ir = _reverb_ir(sr, rng, style.reverb_s)
    vocal = np.stack([voice, voice]) + 0.22 * _reverb(voice, ir)
    active = env > 0.5
    vocal_rms = math.sqrt(float(np.mean(vocal[:, active] ** 2))) if active.any() else 1.0
    # balance against the band *while the voice sings*, so quiet intros do not inflate the band
    band_rms = math.sqrt(float(np.mean(band[:, active] ** 2) if active.any() else np.mean(band ** 2))) + 1e-12
    band *= vocal_rms / band_rms * 10.0 ** (-style.vocal_over_db / 20.0)
    fade = np.ones(n)
    r = min(int(0.3 * sr), n)
    fade[n - r:] = _raised_cos(r)[::-1]
    vocal *= fade
    band *= fade
    gain = PEAK / max(np.abs(vocal).max(), np.abs(band).max(), np.abs(vocal + band).max(), 1e-9)
    aca = (vocal * gain).astype(np.float32)
    inst = (band * gain).astype(np.float32)
    full = aca + inst  # summed in float32 so the identity is exact
    return {"acapella": aca, "instrumental": inst, "full": full}


# --------------------------------------------------------------------------- the corpus


def corpus_spec(tracks_per_artist: int, seconds: float, sr: int, seed: int, formats: Sequence[str],
                artists: Sequence[ArtistStyle]) -> dict[str, Any]:
    """Everything that determines the corpus's bytes, JSON-normalised; equal specs mean an identical corpus."""
    spec = {
        "generator": "silicon_sing.synth", "version": SYNTH_VERSION,
        "tracks_per_artist": int(tracks_per_artist), "seconds": float(seconds), "sample_rate": int(sr),
        "seed": int(seed), "formats": [f.lstrip(".").lower() for f in formats],
        "artists": [dataclasses.asdict(a) for a in artists],
    }
    return json.loads(json.dumps(spec))  # tuples become lists, as they come back from corpus.json


def _track_ext(formats: Sequence[str], track_index: int) -> str:
    """File extension of a track: ``formats`` is cycled over track indices."""
    return formats[track_index % len(formats)].lstrip(".").lower()


def make_synthetic_corpus(
    root: str | Path,
    tracks_per_artist: int = 4,
    seconds: float = 24.0,
    sr: int = 44100,
    seed: int = 1234,
    formats: Sequence[str] = ("wav", "flac", "wav", "wav"),
    artists: Sequence[ArtistStyle] = ARTISTS,
    progress: bool = True,
    workers: int = 1,
) -> list[Path]:
    """Write ``<root>/<artist>/<track>/{acapella,instrumental,full}.<ext>`` (16-bit) and
    ``corpus.json``; a rerun with the same parameters writes nothing. Returns the stem paths.

    ``formats`` is cycled over track indices (the default makes each artist's second track FLAC);
    ``workers`` > 1 renders tracks in that many processes (0 = all cores) with identical output."""
    from tqdm import tqdm

    root = Path(root)
    spec = corpus_spec(tracks_per_artist, seconds, sr, seed, formats, artists)
    manifest = root / CORPUS_FILE
    old: dict[str, Any] | None = read_json(manifest) if manifest.is_file() else None
    if old and old.get("complete") and old.get("spec") == spec:
        paths = [root / p for p in old["files"]]
        if all(p.is_file() for p in paths):
            return paths
    if old is None and root.is_dir() and any(p.is_file() and not p.name.startswith(".") for p in root.rglob("*")):
        # never overwrite someone's real stems that happen to sit where the corpus should go
        raise FileExistsError(f"{root} holds files but no corpus.json: not a synthetic corpus, not writing into it")

    plans = [(a, plan_track(a, i, seconds, seed)) for a in artists for i in range(tracks_per_artist)]
    rel = [f"{a.name}/{p.folder}/{stem}.{_track_ext(formats, p.track_index)}" for a, p in plans for stem in STEMS]
    # mark the corpus incomplete first so an interrupted run is regenerated, then drop stale stems
    old_files = set(old.get("files", [])) if old else set()
    atomic_write_json(manifest, {"complete": False, "spec": spec, "files": sorted(set(rel) | old_files)})
    for stale in old_files - set(rel):
        p = (root / stale).resolve()
        if p.is_relative_to(root.resolve()) and p.is_file():
            p.unlink()
            for d in (p.parent, p.parent.parent):
                if d != root.resolve() and d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
    jobs = [(root, style, plan, seconds, sr, seed, _track_ext(formats, plan.track_index)) for style, plan in plans]
    n_workers = min(len(jobs), workers if workers > 0 else usable_cpus())
    bar = tqdm(total=len(jobs), desc="synthesising stems", unit="track", disable=not progress)
    tracks: list[dict[str, Any]] = []
    if n_workers <= 1:
        for job in jobs:
            tracks.append(_write_track(job))
            bar.update()
    else:
        with ProcessPoolExecutor(n_workers) as pool:
            for summary in pool.map(_write_track, jobs):  # map keeps the order, so corpus.json is stable
                tracks.append(summary)
                bar.update()
    bar.close()
    atomic_write_json(manifest, {"complete": True, "spec": spec, "files": rel, "tracks": tracks})
    return [root / r for r in rel]


def _write_track(job: tuple[Path, ArtistStyle, TrackPlan, float, int, int, str]) -> dict[str, Any]:
    """Render one planned track and write its three stems (16-bit); return its summary."""
    root, style, plan, seconds, sr, seed, ext = job
    stems = synth_track(style, plan.track_index, seconds, sr, seed)
    for stem in STEMS:
        save_audio(root / style.name / plan.folder / f"{stem}.{ext}", stems[stem], sr, "PCM_16")
    return plan.summary() | {"format": ext}


def load_corpus_tracks(root: str | Path) -> list[dict[str, Any]]:
    """Ground-truth track summaries (tempo, key, chords, vocal stats) from ``corpus.json``."""
    return list(read_json(Path(root) / CORPUS_FILE).get("tracks", []))


def corpus_truth(root: str | Path) -> list[dict[str, Any]] | None:
    """:func:`load_corpus_tracks` when ``root`` holds a synthetic corpus (``corpus.json``), else None."""
    return load_corpus_tracks(root) if (Path(root) / CORPUS_FILE).is_file() else None
