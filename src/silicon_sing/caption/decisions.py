"""Decisions per track: which BPM, key, energy, moods, genre and voice a caption may state.

From the raw stem measurements of :mod:`silicon_sing.caption.descriptors`, with the thresholds of
``params.caption`` applied here (not cached), and a reason in ``notes`` for every field withheld.

Notebook: notebooks/02_caption.ipynb
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..fsutil import read_json
from .descriptors import (
    MIN_PERIODICITY,
    NOISE_FLATNESS,
    SIBLING_RATIO,
    TONAL_ROLES,
    AnalysisConfig,
    StemDescriptors,
    TrackDescriptors,
)

QUADRANT_MOODS = {
    (True, True): ["energetic", "upbeat", "happy", "uplifting", "fun"],
    (True, False): ["dark", "powerful", "dramatic", "heavy", "epic"],
    (False, True): ["relaxing", "calm", "romantic", "hopeful", "soft"],
    (False, False): ["melancholic", "sad", "emotional", "deep", "slow"],
}
# Jamendo labels that are nouns or themes, turned into adjectives for the caption text


# --------------------------------------------------------------------------- decisions per track


def _clip01(v: float) -> float:
    return float(min(1.0, max(0.0, v)))


def decide_tempo(stems: dict[str, StemDescriptors], min_confidence: float) -> dict[str, Any]:
    """The caption's BPM: the most confident of full/instrumental, withheld when unreliable."""
    cands = [(c, stems[c]) for c in TONAL_ROLES if c in stems and stems[c].bpm_estimate is not None]
    if not cands:
        why = "; ".join(f"{c}: {stems[c].notes.get('bpm') or stems[c].notes.get('all', 'no estimate')}"
                        for c in TONAL_ROLES if c in stems)
        return {"bpm": None, "note": why or "no full or instrumental stem"}
    cat, s = max(cands, key=lambda cs: cs[1].bpm_confidence or 0.0)
    bpm = s.bpm_estimate
    assert bpm is not None  # cands keeps only stems with an estimate
    out: dict[str, Any] = {"bpm_confidence": s.bpm_confidence, "category": cat}
    if (s.bpm_confidence or 0.0) < min_confidence:
        out.update(bpm=None, note=f"low confidence {s.bpm_confidence:.2f} < {min_confidence:g} "
                                  f"(RhythmExtractor2013 on {cat} read {s.bpm_estimate:.1f} BPM)")
        return out
    # the tracker's confidence is inflated on short clips (8 s of noise scores ~2.5): also require
    # that onsets actually repeat at the beat period
    if s.bpm_periodicity is not None and s.bpm_periodicity < MIN_PERIODICITY:
        out.update(bpm=None, note=f"low confidence: onsets do not repeat at {s.bpm_estimate:.1f} BPM "
                                  f"(periodicity {s.bpm_periodicity:.2f} < {MIN_PERIODICITY})")
        return out
    out["bpm"] = round(bpm, 1)
    # No signal measure separates a 70 BPM groove with eighth-note hats from a 140 BPM half-time one
    # (they are the same audio): the flag says the other octave is a plausible pop tempo with a
    # regular pulse, and the caption keeps Essentia's reading.
    ambiguous = s.bpm_sibling is not None and (s.bpm_sibling_salience or 0.0) >= SIBLING_RATIO
    # full and instrumental reading different octaves is the same ambiguity, seen directly
    others = [o.bpm_estimate for c, o in cands if c != cat and o.bpm_estimate]
    alt: float | None
    split_octave = [o for o in others if any(abs(o / bpm - r) < 0.04 for r in (0.5, 2.0))]
    if split_octave:
        ambiguous, alt, why = True, split_octave[0], "the other stem reads this tempo"
    else:
        alt, why = s.bpm_sibling, f"onset periodicity there is {s.bpm_sibling_salience} of that at the estimate"
    if ambiguous and alt is not None:  # ambiguous implies an alternative
        out["alternative"] = round(alt, 1)
        out["note"] = f"tempo octave ambiguous: {alt:.1f} BPM is also plausible ({why})"
    out["ambiguous"] = ambiguous
    return out


def decide_key(stems: dict[str, StemDescriptors], min_strength: float) -> dict[str, Any]:
    """The caption's key: the strongest of full/instrumental, withheld for noise or weak tonality."""
    notes = []
    best: tuple[str, StemDescriptors] | None = None
    for c in TONAL_ROLES:
        s = stems.get(c)
        if s is None:
            continue
        if s.key is None:
            notes.append(f"{c}: {s.notes.get('key') or s.notes.get('all', 'no estimate')}")
        elif (s.flatness or 0.0) > NOISE_FLATNESS:
            notes.append(f"{c}: noise-like spectrum (flatness {s.flatness:.2f} > {NOISE_FLATNESS})")
        elif (s.key_strength or 0.0) < min_strength:
            notes.append(f"{c}: weak tonality (strength {s.key_strength:.2f} < {min_strength:g})")
        elif best is None or (s.key_strength or 0.0) > (best[1].key_strength or 0.0):
            best = (c, s)
    if best is None:
        return {"key": None, "note": "; ".join(notes) or "no full or instrumental stem"}
    return {"key": best[1].key, "scale": best[1].scale, "strength": best[1].key_strength, "category": best[0]}


def brightness01(centroid_hz: float | None) -> float | None:
    """Spectral centroid mapped to 0–1 (800 Hz mellow … 3 kHz bright)."""
    return None if centroid_hz is None else _clip01((centroid_hz - 800) / 2200)


def energy_score(s: StemDescriptors, bpm: float | None) -> float | None:
    """0–1 arousal proxy: the mean of scaled tempo (70–150 BPM), onset density (0–5/s) and brightness.

    Tempo, event density and spectral brightness are the classic acoustic correlates of arousal;
    loudness is not used because stage 01 normalised every track to the same LUFS.
    """
    parts = []
    tempo = bpm or (s.bpm_estimate if (s.bpm_periodicity or 0) >= MIN_PERIODICITY else None)
    if tempo:
        parts.append(_clip01((tempo - 70) / 80))
    if s.onset_rate is not None:
        parts.append(_clip01(s.onset_rate / 5))
    bright = brightness01(s.centroid_hz)
    if bright is not None:
        parts.append(bright)
    return round(float(np.mean(parts)), 3) if parts else None


def fallback_moods(energy: float | None, scale: str | None, brightness_hz: float | None,
                   danceability: float | None = None) -> tuple[list[str], dict[str, float]]:
    """Model-free moods from a valence/arousal quadrant (valence: mode, brightness; arousal: energy)."""
    if energy is None:
        return [], {}
    arousal = 2 * energy - 1
    valence = {"major": 0.5, "minor": -0.5}.get(scale or "", 0.0)
    bright = brightness01(brightness_hz)
    if bright is not None:
        valence += 0.5 * (bright - 0.5)
    words = QUADRANT_MOODS[(arousal >= 0, valence >= 0)]
    # stronger quadrant membership -> the more intense words come first; two moods are kept
    moods = list(words[:2]) if abs(arousal) + abs(valence) > 0.5 else [words[1], words[0]]
    if danceability is not None and danceability >= 1.5 and arousal >= 0:
        moods.append("groovy")
    return moods, {"valence": round(valence, 3), "arousal": round(arousal, 3)}


def read_user_metadata(source_files: dict[str, str] | None) -> tuple[dict[str, Any], str | None]:
    """Optional ``meta.json``/``track.json`` beside the raw stems, else ``artist.json``/``meta.json`` one up."""
    if not source_files:
        return {}, None
    track_dir = Path(next(iter(source_files.values()))).parent
    for p in (track_dir / "meta.json", track_dir / "track.json", track_dir.parent / "artist.json",
              track_dir.parent / "meta.json"):
        if p.is_file():
            try:
                data = read_json(p)
            except (ValueError, OSError):
                continue
            if isinstance(data, dict):
                return data, str(p)
    return {}, None


def _parent_genre(style: str) -> tuple[str, str | None]:
    """``"Hip Hop---Boom Bap"`` -> (``"hip hop"``, ``"boom bap"``)."""
    if "---" in style:
        g, s = style.split("---", 1)
        return g.strip().lower(), s.strip().lower()
    return style.strip().lower(), None


def describe_track(track: dict[str, Any], stems: dict[str, StemDescriptors], config: AnalysisConfig,
                   metadata: tuple[dict[str, Any], str | None] = ({}, None)) -> TrackDescriptors:
    """Decide the caption-ready descriptors of one track from its stems' raw measurements."""
    td = TrackDescriptors(track_id=track["track_id"], artist=track["artist"], track=track["track"],
                          split=track.get("split", ""), duration_s=float(track.get("duration_s", 0.0)),
                          stems=dict(stems))
    src, notes = td.sources, td.notes
    mix = stems.get("full") or stems.get("instrumental")
    mix_name = "full" if "full" in stems else "instrumental"

    tempo = decide_tempo(stems, config.min_bpm_confidence)
    td.bpm, td.bpm_confidence = tempo.get("bpm"), tempo.get("bpm_confidence")
    td.bpm_octave_ambiguous, td.bpm_alternative = bool(tempo.get("ambiguous")), tempo.get("alternative")
    if "category" in tempo:
        src["bpm"] = f"essentia RhythmExtractor2013 (multifeature) on {tempo['category']}"
    if "note" in tempo:
        notes["bpm"] = tempo["note"]

    key = decide_key(stems, config.min_key_strength)
    if key.get("key"):
        td.key, td.scale, td.key_strength = key["key"], key["scale"], key["strength"]
        src["key"] = f"essentia KeyExtractor (profile {config.key_profile}) on {key['category']}"
    else:
        notes["key"] = key["note"]

    if mix is not None and not mix.silent:
        td.danceability = mix.danceability
        td.loudness_lufs = mix.loudness_lufs
        td.energy = energy_score(mix, td.bpm)
        td.brightness_hz = mix.centroid_hz
        src.update(danceability=f"essentia Danceability on {mix_name}", loudness_lufs=f"BS.1770 on {mix_name}",
                   energy=f"model-free: tempo, onset density and spectral centroid of {mix_name}",
                   brightness=f"median spectral centroid of {mix_name}")
        if td.energy is not None:
            td.energy_level = "low" if td.energy < 0.35 else "medium" if td.energy < 0.6 else "high"
        if td.brightness_hz is not None:
            td.brightness = ("mellow" if td.brightness_hz < 1200 else "balanced" if td.brightness_hz < 2400
                             else "bright")
    else:
        notes["energy"] = "no audible full or instrumental stem"

    # vocal presence: the stem type says whether a voice exists; the energy ratio says how present
    aca, inst = stems.get("acapella"), stems.get("instrumental")
    if aca is not None and not aca.silent:
        e_a = 10 ** (aca.rms_db / 10)
        e_i = 10 ** (inst.rms_db / 10) if inst is not None else 0.0
        td.vocal_presence = round(e_a / (e_a + e_i), 3)
        td.vocals = "faint" if td.vocal_presence < 0.08 else "present" if td.vocal_presence < 0.4 else "lead"
        src["vocals"] = "acapella energy share of acapella + instrumental"
        if aca.pitch_hz is not None and (aca.voiced_fraction or 0) >= 0.1:
            td.vocal_pitch_hz = aca.pitch_hz
            td.vocal_register = "low" if aca.pitch_hz < 165 else "mid" if aca.pitch_hz < 260 else "high"
            src["vocal_register"] = "median PitchYinFFT f0 of the acapella"
        else:
            notes["vocal_register"] = "too few confidently pitched frames in the acapella"
    else:
        notes["vocals"] = "no audible acapella stem"

    if inst is not None and not inst.silent:
        if (inst.onset_rate or 0) >= 2.0:
            td.instruments.append("punchy drums" if (td.energy or 0) >= 0.5 else "light drums")
        if (inst.bass_ratio or 0) >= 0.25:
            td.instruments.append("deep bass")
        if (inst.flatness or 1.0) < 0.01 and (inst.onset_rate or 0) < 2.0:
            td.instruments.append("sustained chords")
        if (inst.centroid_hz or 0) >= 2400:
            td.instruments.append("bright synths")
        if td.instruments:
            src["instruments"] = "model-free: onset rate and spectral shape of the instrumental"

    model_stem = next((stems[c] for c in TONAL_ROLES if c in stems and stems[c].model_moods), None)
    model_name = next((c for c in TONAL_ROLES if c in stems and stems[c].model_moods), None)
    if model_stem is not None:
        td.mood_scores = dict(model_stem.model_moods or {})
        td.moods = list(td.mood_scores)[:3]
        src["moods"] = f"essentia-tensorflow mtg_jamendo_moodtheme-discogs-effnet-1 on {model_name}"
    else:
        td.moods, td.mood_scores = fallback_moods(td.energy, td.scale, td.brightness_hz, td.danceability)
        if td.moods:
            src["moods"] = "model-free: valence (mode, brightness) × arousal (energy) quadrant"
        else:
            notes["moods"] = "no energy estimate"

    meta, meta_path = metadata
    if model_stem is not None and model_stem.model_genres:
        td.genre_scores = dict(model_stem.model_genres)
        top = list(td.genre_scores)
        td.genre = _parent_genre(top[0])[0]
        td.styles = [s for s in (_parent_genre(t)[1] for t in top[:2]) if s]
        src["genre"] = f"essentia-tensorflow genre_discogs400-discogs-effnet-1 on {model_name}"
    elif isinstance(meta.get("genre"), str) and meta["genre"].strip():
        td.genre = meta["genre"].strip().lower()
        src["genre"] = f"user metadata {meta_path}"
    else:
        notes["genre"] = "no genre model and no user metadata (meta.json/artist.json): omitted from captions"
    return td
