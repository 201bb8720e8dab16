"""Notebook-02 helpers: tables, example players, agreement with the synthetic truth, UUID retention.

Notebook: notebooks/02_caption.ipynb
"""

from __future__ import annotations

import dataclasses
import html
import random
from pathlib import Path
from typing import Any

import pandas as pd

from .. import audio as au
from ..data import augment_description
from ..fsutil import read_json
from ..music import same_key
from ..params import CATEGORIES, Params, RunPaths
from .stage import CaptionResult, _curated_rows
from .templates import CaptionRecord

# --------------------------------------------------------------------------- notebook helpers


def tables(result: CaptionResult) -> dict[str, pd.DataFrame]:
    """pandas tables for the chapter: ``captions`` (track × category) and ``descriptors`` (per track)."""
    caps = pd.DataFrame([{**dataclasses.asdict(r), "moods": ", ".join(r.moods)} for r in result.records])
    desc = pd.DataFrame([{
        "artist": t.artist, "track": t.track, "track_id": t.track_id, "split": t.split, "bpm": t.bpm,
        "bpm_confidence": t.bpm_confidence, "octave_ambiguous": t.bpm_octave_ambiguous, "key": t.key_name,
        "key_strength": t.key_strength, "scale": t.scale, "danceability": t.danceability, "energy": t.energy,
        "brightness_hz": t.brightness_hz, "vocal_presence": t.vocal_presence, "vocal_pitch_hz": t.vocal_pitch_hz,
        "vocal_register": t.vocal_register, "moods": ", ".join(t.moods), "mood": t.moods[0] if t.moods else None,
        "genre": t.genre, "mood_source": t.sources.get("moods"), "genre_source": t.sources.get("genre"),
        "valence": t.mood_scores.get("valence"), "arousal": t.mood_scores.get("arousal"),
    } for t in result.tracks])
    return {"captions": caps, "descriptors": desc}


def example_captions(result: CaptionResult, split: str = "test",
                     per_artist: int = 1) -> list[tuple[CaptionRecord, Path]]:
    """A few (caption record, first segment wav) pairs per artist and category, for listening."""
    segs: dict[tuple[str, str], dict[str, Any]] = {}
    run = RunPaths(Path(result.captions_dir).parent)
    for s in _curated_rows(run.root)[1]:
        segs.setdefault((s["track_id"], s["category"]), s)
    curated = run.curated
    chosen: dict[str, list[str]] = {}
    for r in sorted(result.records, key=lambda r: (r.split != split, r.artist, r.track_id)):
        ids = chosen.setdefault(r.artist, [])
        if r.track_id not in ids and len(ids) < per_artist:
            ids.append(r.track_id)
    out = []
    for r in result.records:
        if r.track_id in chosen.get(r.artist, []) and (r.track_id, r.category) in segs:
            out.append((r, curated / segs[(r.track_id, r.category)]["path"]))
    return sorted(out, key=lambda rp: (rp[0].artist, rp[0].track_id, CATEGORIES.index(rp[0].category)))


def captions_player_html(examples: list[tuple[CaptionRecord, Path]], seconds: float = 10.0) -> str:
    """An HTML table: artist, category, caption text and a compact player of (the start of) the segment."""
    rows = []
    for rec, path in examples:
        x, sr = au.load_audio(path)
        x = x[:, : int(seconds * sr)]
        rows.append(f"<tr><td>{html.escape(rec.artist)}</td><td>{html.escape(rec.category)}</td>"
                    f"<td><code>{html.escape(rec.uuid[:8])}…</code> {html.escape(rec.caption)}</td>"
                    f"<td>{au.player_html(x[0], sr, f'{rec.track_id} / {rec.category}')}</td></tr>")
    return ('<table class="silicon-players"><thead><tr><th>artist</th><th>stem</th><th>caption</th>'
            f"<th>listen</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def tempo_agreement(bpm: float | None, truth: float, alternative: float | None = None, tol: float = 0.02) -> str:
    """``exact`` (±tol), ``octave, flagged``, ``octave`` (unflagged), ``wrong`` or ``withheld``."""
    if bpm is None:
        return "withheld"
    if abs(bpm - truth) <= tol * truth:
        return "exact"
    if any(abs(bpm - truth * r) <= tol * truth * r for r in (0.5, 2.0)):
        return "octave, flagged" if alternative and abs(alternative - truth) <= tol * truth else "octave"
    return "wrong"


def synthetic_truth(result: CaptionResult, corpus_tracks: list[dict[str, Any]] | None) -> pd.DataFrame | None:
    """The generator's tempo, key and sung pitch beside our estimates (None without ground truth).

    Args:
        result: what :func:`~silicon_sing.caption.stage.run_captioning` returned.
        corpus_tracks: the smoke corpus's per-track truth (:func:`silicon_sing.synth.corpus_truth`),
            or None for a user's stems.
    """
    if not corpus_tracks:
        return None
    truth = {(t["artist"], t["track"]): t for t in corpus_tracks}
    rows = []
    for td in result.tracks:
        g = truth.get((td.artist, td.track))
        if g is None:
            continue
        rows.append({"artist": td.artist, "track": td.track, "true BPM": g["tempo_bpm"], "BPM": td.bpm,
                     "tempo": tempo_agreement(td.bpm, g["tempo_bpm"], td.bpm_alternative),
                     "true key": g["key"], "key": td.key_name,
                     "key right": same_key(td.key_name, g["key"]),
                     "true median f0 (Hz)": g.get("median_f0_hz"), "median f0 (Hz)": td.vocal_pitch_hz})
    return pd.DataFrame(rows) if rows else None


def simulate_uuid_retention(description: str, uuid: str, n: int = 4000, seed: int = 0,
                            word_dropout: float = 0.2, merge_text_p: float = 0.25,
                            drop_desc_p: float = 0.5) -> dict[str, float]:
    """Share of training examples whose text still contains the UUID: audiocraft's defaults vs ours.

    audiocraft 1.3.0 (``augment_music_info_description`` then ``T5Conditioner.tokenize``): with
    ``merge_text_p`` the description may be replaced by metadata (``drop_desc_p``), then every word
    — the UUID included — is dropped with ``word_dropout``. Ours: :func:`augment_description`.
    """
    rng = random.Random(seed)
    kept_audiocraft = 0
    for _ in range(n):
        present = not (rng.random() < merge_text_p and rng.random() < drop_desc_p)
        kept_audiocraft += present and rng.random() >= word_dropout
    info = {"bpm": 120.0, "key": "c major"}
    kept_ours = sum(augment_description(description, uuid, rng, word_dropout, info, merge_text_p,
                                        drop_desc_p).split(" ")[0] == uuid for _ in range(n))
    return {"audiocraft": kept_audiocraft / n, "ours": kept_ours / n}


def summary(result: CaptionResult, params: Params, truth: pd.DataFrame | None = None) -> dict[str, Any]:
    """Numbers and phrases the chapter quotes (glued, never typed); ``truth`` is :func:`synthetic_truth`'s table."""
    tds = result.tracks
    uuid_info = read_json(RunPaths(Path(result.captions_dir).parent).run_uuid)
    example = next((r for r in result.records if r.category == "full"), result.records[0] if result.records else None)
    word_dropout = float(params.train.word_dropout)
    retention = (simulate_uuid_retention(example.description, result.uuid, word_dropout=word_dropout) if example
                 else {"audiocraft": 0, "ours": 0})
    if truth is not None:
        truth_text = (f"{int((truth['tempo'] == 'exact').sum())} of {len(truth)} tempi are within 2 % of the "
                      f"generator's and {int(truth['key right'].sum())} of {len(truth)} keys are right")
    else:
        truth_text = "these stems come without ground truth, so no such check is possible"
    return {
        "n_tracks": len(tds), "n_artists": len({t.artist for t in tds}), "n_captions": len(result.records),
        "n_sidecars": result.sidecars_written + result.sidecars_unchanged,
        "audio_minutes": f"{result.audio_seconds_total / 60:.1f}",
        "stems_analysed": result.stems_analysed, "stems_cached": result.stems_cached,
        "wall_seconds": f"{result.wall_seconds:.1f}", "workers": result.workers,
        "uuid": result.uuid, "uuid_source": uuid_info.get("source", ""),
        "n_bpm": sum(t.bpm is not None for t in tds), "n_bpm_ambiguous": sum(t.bpm_octave_ambiguous for t in tds),
        "n_key": sum(t.key is not None for t in tds), "n_genre": sum(t.genre is not None for t in tds),
        "key_profile": params.caption.key_profile, "min_bpm_confidence": f"{params.caption.min_bpm_confidence:g}",
        "min_key_strength": f"{params.caption.min_key_strength:g}",
        "mood_genre_source": ("Essentia's TensorFlow models (Discogs-EffNet embeddings with the MTG-Jamendo "
                              "mood/theme and Discogs-400 genre heads)" if result.models else
                              "the model-free fallback: moods from a valence/arousal quadrant, genre only from "
                              "user metadata"),
        "word_dropout": f"{word_dropout:g}",
        "retention_audiocraft": f"{100 * retention['audiocraft']:.0f} %",
        "retention_ours": f"{100 * retention['ours']:.0f} %",
        "truth_text": truth_text,
        "example_description": example.description if example else "",
    }


def captions_by_artist(result: CaptionResult) -> pd.DataFrame:
    """Captions as a table: one row per artist and track, one column per stem category."""
    df = pd.DataFrame([{"artist": r.artist, "track": r.track, "split": r.split, "category": r.category,
                        "caption": r.caption} for r in result.records])
    wide = df.pivot_table(index=["artist", "track", "split"], columns="category", values="caption", aggfunc="first")
    return wide[[c for c in CATEGORIES if c in wide.columns]]
