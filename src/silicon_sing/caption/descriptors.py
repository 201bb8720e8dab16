"""Signal descriptors of one stem: spectral summary, tempo, key, voice pitch, Essentia models.

Raw measurements only (no thresholds): :func:`analyse_signal` measures a stem,
:func:`describe_stem` caches the result by the audio file's content hash and the analysis
settings (:class:`AnalysisConfig`). What a track's caption says is decided from these
measurements in :mod:`silicon_sing.caption.decisions`.

Notebook: notebooks/02_caption.ipynb
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import audio as au
from ..fsutil import atomic_write_json, file_sha1, read_json
from ..music import as_essentia, essentia_standard, estimate_pitch
from .essentia_models import _models_for, _models_signature

DESCRIPTOR_VERSION = 3  # bump when a descriptor's computation changes: invalidates the cache
TEMPO_SR = 44100  # RhythmExtractor2013, OnsetRate and Danceability are tuned for 44.1 kHz
PLAUSIBLE_BPM = (60.0, 180.0)  # where an octave sibling is a credible reading of pop tempo
NOISE_FLATNESS = 0.3  # median spectral flatness above this: noise-like, no key is reported
MIN_PERIODICITY = 0.25  # onset-envelope autocorrelation at the beat period below this: no real beat
SIBLING_RATIO = 0.5  # the other octave is flagged when its periodicity is >= half the estimate's
TONAL_ROLES = ("full", "instrumental")  # stems analysed for tempo, key, danceability and models


# --------------------------------------------------------------------------- records


@dataclass
class StemDescriptors:
    """Raw measurements of one whole stem file (cached by its content hash)."""

    category: str
    sha1: str | None
    duration_s: float
    rms_db: float
    silent: bool
    loudness_lufs: float | None = None
    centroid_hz: float | None = None  # median spectral centroid (brightness)
    flatness: float | None = None  # median spectral flatness (0 tonal … ~0.6 white noise)
    bass_ratio: float | None = None  # share of spectral energy below 150 Hz
    onset_rate: float | None = None  # onsets per second (Essentia OnsetRate)
    bpm_estimate: float | None = None  # RhythmExtractor2013, whatever its confidence
    bpm_confidence: float | None = None  # 0–5.3: <1 very low, 1–1.5 low, 1.5–3.5 good, >3.5 excellent
    bpm_periodicity: float | None = None  # onset-envelope autocorrelation at the beat period (0–1)
    bpm_sibling: float | None = None  # the other tempo octave that is in PLAUSIBLE_BPM, if any
    bpm_sibling_salience: float | None = None  # onset-envelope periodicity there / at bpm_estimate
    key: str | None = None
    scale: str | None = None
    key_strength: float | None = None
    danceability: float | None = None
    pitch_hz: float | None = None  # median confident YIN f0 (acapella only)
    voiced_fraction: float | None = None
    model_genres: dict[str, float] | None = None  # Discogs style -> mean activation (top k)
    model_moods: dict[str, float] | None = None  # Jamendo mood/theme -> mean activation (top k)
    notes: dict[str, str] = field(default_factory=dict)  # why a measurement is missing
    analysis: dict[str, Any] = field(default_factory=dict)  # the settings it was computed with
    seconds: float = 0.0  # compute time


@dataclass
class TrackDescriptors:
    """The decided, caption-ready description of one track (shared by all its segments)."""

    track_id: str
    artist: str
    track: str
    split: str
    duration_s: float
    bpm: float | None = None
    bpm_confidence: float | None = None
    bpm_octave_ambiguous: bool = False
    bpm_alternative: float | None = None
    key: str | None = None
    scale: str | None = None
    key_strength: float | None = None
    danceability: float | None = None
    loudness_lufs: float | None = None
    energy: float | None = None  # 0–1
    energy_level: str | None = None  # low / medium / high
    brightness_hz: float | None = None
    brightness: str | None = None  # mellow / balanced / bright
    vocal_presence: float | None = None  # acapella share of acapella+instrumental energy, 0–1
    vocals: str = "none"  # none / faint / present / lead
    vocal_pitch_hz: float | None = None
    vocal_register: str | None = None  # low / mid / high
    instruments: list[str] = field(default_factory=list)
    moods: list[str] = field(default_factory=list)
    mood_scores: dict[str, float] = field(default_factory=dict)
    genre: str | None = None
    styles: list[str] = field(default_factory=list)
    genre_scores: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # field -> where its value came from
    notes: dict[str, str] = field(default_factory=dict)  # field -> why it is missing or doubtful
    stems: dict[str, StemDescriptors] = field(default_factory=dict)

    @property
    def key_name(self) -> str | None:
        """``"F minor"``-style key, or None."""
        return f"{self.key} {self.scale}" if self.key and self.scale else None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrackDescriptors:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["stems"] = {k: StemDescriptors(**v) for k, v in d.get("stems", {}).items()}
        return cls(**d)



@dataclass(frozen=True)
class AnalysisConfig:
    """Settings that determine the descriptors (part of every cache entry)."""

    key_profile: str = "edma"
    min_bpm_confidence: float = 1.0
    min_key_strength: float = 0.45
    silence_db: float = -50.0
    model_dir: str | None = None

    def fingerprint(self, category: str) -> dict[str, Any]:
        """What a cached entry for ``category`` must match (thresholds are applied later, not cached)."""
        tonal = category in TONAL_ROLES
        return {"version": DESCRIPTOR_VERSION, "category": category, "silence_db": self.silence_db,
                "key_profile": self.key_profile if tonal else None,
                "models": _models_signature(self.model_dir) if self.model_dir and tonal else None}


# --------------------------------------------------------------------------- signal descriptors


def spectral_summary(x: np.ndarray, sr: int, n_fft: int = 2048, hop: int = 512) -> dict[str, Any]:
    """Median centroid, flatness, sub-150 Hz energy share and the spectral-flux onset envelope.

    Args:
        x: audio, float ``[N]`` or ``[C, N]``.
    Returns:
        ``centroid_hz``, ``flatness``, ``bass_ratio`` (floats, None when silent), ``envelope`` (float
        ``[F - 1]`` spectral flux per ``hop`` frame) and ``fps`` (its frame rate, ``sr / hop``).
    """
    x = au.to_mono(x).astype(np.float32)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft).astype(np.float32), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    total = power.sum(axis=1)
    active = total > total.max() * 1e-4 if total.max() > 0 else np.zeros_like(total, dtype=bool)
    mag = np.sqrt(power)
    flux = np.maximum(np.diff(np.log1p(100 * mag), axis=0), 0).sum(axis=1)
    if not active.any():
        return {"centroid_hz": None, "flatness": None, "bass_ratio": None, "envelope": flux, "fps": sr / hop}
    p = power[active] + 1e-12
    m = mag[active] + 1e-9
    centroid = (m * freqs).sum(axis=1) / m.sum(axis=1)  # magnitude-weighted, the usual brightness measure
    flat = np.exp(np.mean(np.log(p), axis=1)) / np.mean(p, axis=1)
    bass = power[:, freqs < 150].sum() / max(float(power.sum()), 1e-20)
    return {"centroid_hz": float(np.median(centroid)), "flatness": float(np.median(flat)),
            "bass_ratio": float(bass), "envelope": flux, "fps": sr / hop}


def periodicity(envelope: np.ndarray, fps: float, bpm: float) -> float:
    """Normalised autocorrelation of an onset envelope (float ``[F]`` at ``fps``) at the beat period of ``bpm`` (±3 %)."""
    e = envelope - envelope.mean()
    if len(e) < 4 or not np.any(e):
        return 0.0
    ac = np.correlate(e, e, mode="full")[len(e) - 1:]
    ac = ac / ac[0]
    lag = 60.0 / bpm * fps
    lo, hi = max(1, int(lag * 0.97)), int(math.ceil(lag * 1.03)) + 1
    return float(ac[lo:hi].max()) if hi <= len(ac) and lo < hi else 0.0


def octave_sibling(bpm: float) -> float | None:
    """The half or double tempo that would also be a plausible pop tempo, if any."""
    for s in (bpm / 2, bpm * 2):
        if PLAUSIBLE_BPM[0] < s < PLAUSIBLE_BPM[1]:
            return s
    return None


def estimate_tempo(x44: np.ndarray, envelope: np.ndarray | None = None, fps: float | None = None) -> dict[str, Any]:
    """RhythmExtractor2013 tempo and confidence on 44.1 kHz audio, plus an octave-sibling check.

    Args:
        x44: mono float32 ``[N]`` at 44.1 kHz.
        envelope, fps: :func:`spectral_summary`'s onset envelope ``[F]`` and its frame rate.
    """
    es = essentia_standard()
    out: dict[str, Any] = {"bpm_estimate": None, "bpm_confidence": None, "bpm_periodicity": None,
                           "bpm_sibling": None, "bpm_sibling_salience": None}
    try:
        bpm, ticks, conf, _, _ = es.RhythmExtractor2013(method="multifeature")(as_essentia(x44))
    except Exception as e:  # Essentia raises RuntimeError on degenerate input (too short, …)
        out["note"] = f"RhythmExtractor2013 failed: {e}"
        return out
    if not np.isfinite(bpm) or bpm <= 0 or len(ticks) < 4:
        out["note"] = f"no beat found ({len(ticks)} beats)"
        return out
    out["bpm_estimate"], out["bpm_confidence"] = round(float(bpm), 2), round(float(conf), 3)
    if envelope is None or not fps:
        return out
    here = periodicity(envelope, fps, float(bpm))
    out["bpm_periodicity"] = round(here, 3)
    sib = octave_sibling(float(bpm))
    if sib is not None:
        out["bpm_sibling"] = round(sib, 2)
        out["bpm_sibling_salience"] = round(periodicity(envelope, fps, sib) / here, 3) if here > 0 else None
    return out


def estimate_key(x: np.ndarray, sr: int, profile: str) -> dict[str, Any]:
    """Essentia KeyExtractor key, scale and strength of ``x`` (float ``[N]`` or ``[C, N]`` at ``sr``)."""
    try:
        key, scale, strength = essentia_standard().KeyExtractor(profileType=profile, sampleRate=float(sr))(as_essentia(x))
    except Exception as e:
        return {"key": None, "scale": None, "key_strength": None, "note": f"KeyExtractor failed: {e}"}
    return {"key": str(key), "scale": str(scale), "key_strength": round(float(strength), 3)}


def analyse_signal(x: np.ndarray, sr: int, category: str, config: AnalysisConfig = AnalysisConfig(),
                   sha1: str | None = None) -> StemDescriptors:
    """All raw descriptors of one stem (no thresholds applied; silence is reported, not raised).

    Args:
        x: the stem, float ``[N]`` or ``[C, N]`` at ``sr``.
        category: ``acapella``, ``instrumental`` or ``full`` (decides which descriptors apply).
    """
    start = time.perf_counter()
    x = au.to_mono(x).astype(np.float32)
    level = au.rms_db(x)
    d = StemDescriptors(category=category, sha1=sha1, duration_s=round(len(x) / sr, 3), rms_db=round(level, 2),
                        silent=level < config.silence_db, analysis=config.fingerprint(category))
    if d.silent or len(x) == 0:
        d.notes["all"] = f"silent (RMS {level:.1f} dBFS < {config.silence_db:g} dBFS): nothing to describe"
        d.seconds = time.perf_counter() - start
        return d
    d.loudness_lufs = round(au.loudness_lufs(x, sr), 2)
    spec = spectral_summary(x, sr)
    d.centroid_hz = None if spec["centroid_hz"] is None else round(spec["centroid_hz"], 1)
    d.flatness = None if spec["flatness"] is None else round(spec["flatness"], 5)
    d.bass_ratio = None if spec["bass_ratio"] is None else round(spec["bass_ratio"], 4)
    if category in TONAL_ROLES:
        es = essentia_standard()
        x44 = as_essentia(au.resample(x, sr, TEMPO_SR))
        tempo = estimate_tempo(x44, spec["envelope"], spec["fps"])
        if "note" in tempo:
            d.notes["bpm"] = tempo.pop("note")
        for k, v in tempo.items():
            setattr(d, k, v)
        try:
            d.onset_rate = round(float(es.OnsetRate()(x44)[1]), 3)
            d.danceability = round(float(es.Danceability(sampleRate=float(TEMPO_SR))(x44)[0]), 3)
        except Exception as e:
            d.notes["danceability"] = f"Essentia failed: {e}"
        key = estimate_key(x, sr, config.key_profile)
        if "note" in key:
            d.notes["key"] = key.pop("note")
        d.key, d.scale, d.key_strength = key["key"], key["scale"], key["key_strength"]
        models = _models_for(config.model_dir)
        if models is not None:
            d.model_genres, d.model_moods = models.predict(x, sr)
    if category == "acapella":
        d.pitch_hz, d.voiced_fraction = estimate_pitch(x, sr)
    d.seconds = round(time.perf_counter() - start, 4)
    return d


def describe_stem(path: Path, category: str, config: AnalysisConfig, cache_dir: Path | None,
                  sha1: str | None = None) -> tuple[StemDescriptors, bool]:
    """Descriptors of one audio file, from the cache when its content and settings match; (d, cached)."""
    sha1 = sha1 or file_sha1(path)
    cached = load_cached(cache_dir, sha1, config, category) if cache_dir else None
    if cached is not None:
        return cached, True
    x, sr = au.load_audio(path)
    d = analyse_signal(x, sr, category, config, sha1)
    if cache_dir:
        atomic_write_json(cache_dir / f"{sha1}.json", dataclasses.asdict(d))
    return d, False


def load_cached(cache_dir: Path, sha1: str, config: AnalysisConfig, category: str) -> StemDescriptors | None:
    """A cached entry for this content hash, if it was computed with the same settings."""
    p = Path(cache_dir) / f"{sha1}.json"
    if not p.exists():
        return None
    try:
        d = StemDescriptors(**read_json(p))
    except (ValueError, TypeError):  # a corrupt or old-format entry is recomputed
        return None
    return d if d.analysis == config.fingerprint(category) else None
