"""Stage 02 — captioning: Essentia descriptors per track, natural-language captions, a run UUID.

Inputs are stage 01's files (``<run_dir>/curated/``, see CONTRIBUTING.md); outputs go to
``<run_dir>/captions/`` and into the ``description`` (plus ``bpm``, ``key``, ``genre``, ``moods``,
``keywords``) of every segment sidecar, which is what audiocraft's ``MusicDataset`` reads.

Descriptors (computed once per *track* from its whole normalised stems; all segments of a track
share them):

- **tempo** — Essentia ``RhythmExtractor2013`` (multifeature) on the full mix and on the
  instrumental at 44.1 kHz (the rate it is tuned for); the more confident one wins. Its confidence
  (0–5.3) is kept; below ``caption.min_bpm_confidence``, or when the onset envelope does not
  repeat at the beat period (the tracker is over-confident on short clips: 8 s of white noise
  scores ~2.5), the BPM is withheld (``bpm=None`` with the reason in ``notes``). Tempo octave
  errors (70 read as 140) cannot be ruled out from the signal — a 70 BPM groove with eighth-note
  hats *is* a 140 BPM half-time groove: when the other octave lies in the usual pop range and the
  onset envelope is also periodic there, ``bpm_octave_ambiguous`` is set and the other octave is
  kept as ``bpm_alternative`` (this flags most 120–180 BPM tracks with a half-time pulse).
- **key and scale** — Essentia ``KeyExtractor`` with the ``edma`` profile (``caption.key_profile``).
  Why: the paper's stems are pop/hip-hop/R&B, loop-based and minor-heavy like the electronic dance
  music the ``edma`` profiles were learnt from (Faraldo et al. 2016), which beat Krumhansl- and
  Shaath-style profiles there; ``edmm`` reports every major key as minor and the default
  ``bgate`` missed a minor key on our synthetic progressions once drums were mixed in, ``edma``
  did not (tests/test_caption.py); on the smoke corpus ``edma`` was also the most accurate of
  edma/bgate/krumhansl/shaath/temperley2005/edmm. Keys from noise-like spectra (median spectral
  flatness above 0.3) or with strength below ``caption.min_key_strength`` are withheld.
- **danceability** (Essentia ``Danceability``, DFA), **loudness** (BS.1770 LUFS), **energy** (a
  0–1 arousal score from tempo, onset density and brightness — loudness itself is uninformative
  after stage 01 normalised every track), **brightness** (median spectral centroid), **vocal
  presence** (the acapella's share of stem energy) and **vocal register** (median YIN pitch of the
  acapella), **instrument hints** from the instrumental (onset rate → drums, sub-150 Hz energy →
  bass, a high centroid → bright synths).
- **mood and genre** — with ``caption.essentia_model_dir`` set (paper profile), Essentia's
  published TensorFlow models: Discogs-EffNet embeddings, the ``genre_discogs400`` head (400 Discogs
  styles; the top style's parent genre becomes ``genre``) and the ``mtg_jamendo_moodtheme`` head
  (56 moods/themes; the top ones become ``moods``). This needs the ``essentia-tensorflow`` wheel
  *instead of* ``essentia``. Without a model dir, a model-free fallback: moods from a
  valence/arousal quadrant (valence from mode and brightness, arousal from the energy score)
  worded in the Jamendo mood vocabulary, genre from the user's metadata
  (``<track>/meta.json`` or ``<artist>/artist.json`` with a ``"genre"`` key) or omitted.
  ``TrackDescriptors.sources`` records where every field came from.

Captions are deterministic: templates and synonyms are drawn with an RNG seeded by
``(seed, track_id, category)``, so captions vary across tracks but a rerun reproduces them. The
acapella caption describes the voice, the instrumental one the accompaniment, the full one both.

**The UUID and audiocraft's text augmentation.** Each caption is prefixed by a UUID fixed for the
run (``<run_dir>/captions/run_uuid.json``; ``caption.caption_uuid`` pins one; otherwise it is
derived from the seed and profile so a rebuilt run gets the same one) — the trigger that separates
fine-tuned behaviour from pre-training, reused verbatim at evaluation. audiocraft 1.3.0 would not
deliver it reliably: ``T5Conditioner.tokenize`` drops every space-separated word with
``word_dropout`` (0.2 in the MusicGen grids), so the UUID — one "word" — vanishes from 20 % of
training examples, and ``augment_music_info_description`` (``merge_text_p=0.25``,
``drop_desc_p=0.5``) replaces the whole description by ``key: …, bpm: …`` metadata in another
12.5 %. Our choice: the trainer turns both off in audiocraft (``word_dropout=0``,
``merge_text_p=0``) and applies :func:`augment_description` instead, which reproduces the same
augmentation (metadata merge, description drop, word dropout at the same rates) on everything
*except* the UUID, which always stays the first token. Classifier-free-guidance dropout still
nulls the whole text condition (UUID included) for ``cfg_dropout`` of the batches, as it must for
guidance to work. A UUID is a single token for the word dropout but several T5 sentencepiece
pieces; it is kept lowercase and hyphenated so its tokenisation is the same in training and
evaluation.

Speed: tracks are analysed in parallel (``params.n_workers`` processes, a tqdm bar), and each
stem's descriptors are cached in ``captions/descriptors/<sha1 of the audio file>.json`` together
with the analysis settings, so an unchanged rerun analyses nothing. Worked through in
``notebooks/02_caption.ipynb``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import random
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import audio as au
from .fsutil import atomic_write_json, file_sha1, read_json, read_jsonl, text_sha1, to_json, write_if_changed
from .data import augment_description, ensure_run_uuid
from .params import CATEGORIES, Params

DESCRIPTOR_VERSION = 3  # bump when a descriptor's computation changes: invalidates the cache
CAPTION_VERSION = 1  # bump when templates change (captions are cheap: always recomputed)
TEMPO_SR = 44100  # RhythmExtractor2013, OnsetRate and Danceability are tuned for 44.1 kHz
MODEL_SR = 16000  # Discogs-EffNet input rate
PLAUSIBLE_BPM = (60.0, 180.0)  # where an octave sibling is a credible reading of pop tempo
NOISE_FLATNESS = 0.3  # median spectral flatness above this: noise-like, no key is reported
MIN_PERIODICITY = 0.25  # onset-envelope autocorrelation at the beat period below this: no real beat
SIBLING_RATIO = 0.5  # the other octave is flagged when its periodicity is >= half the estimate's
TONAL_ROLES = ("full", "instrumental")  # stems analysed for tempo, key, danceability and models
MODEL_TOP_K = 5
MAX_MODEL_WORKERS = 4  # each worker loads its own TensorFlow graphs (and may claim GPU memory)

ESSENTIA_MODELS_URL = "https://essentia.upf.edu/models"
# role -> path under ESSENTIA_MODELS_URL (without extension); each needs its .pb and .json
ESSENTIA_MODELS = {
    "embeddings": "feature-extractors/discogs-effnet/discogs-effnet-bs64-1",
    "genre": "classification-heads/genre_discogs400/genre_discogs400-discogs-effnet-1",
    "mood": "classification-heads/mtg_jamendo_moodtheme/mtg_jamendo_moodtheme-discogs-effnet-1",
}
# graph node names used when a model's .json metadata has no schema (the published values)
DEFAULT_NODES = {
    "embeddings": ("serving_default_melspectrogram", "PartitionedCall:1"),
    "genre": ("serving_default_model_Placeholder", "PartitionedCall:0"),
    "mood": ("model/Placeholder", "model/Sigmoid"),
}

# Model-free moods, worded in the MTG-Jamendo mood/theme vocabulary so both sources read alike.
QUADRANT_MOODS = {
    (True, True): ["energetic", "upbeat", "happy", "uplifting", "fun"],
    (True, False): ["dark", "powerful", "dramatic", "heavy", "epic"],
    (False, True): ["relaxing", "calm", "romantic", "hopeful", "soft"],
    (False, False): ["melancholic", "sad", "emotional", "deep", "slow"],
}
# Jamendo labels that are nouns or themes, turned into adjectives for the caption text
MOOD_ADJECTIVE = {
    "love": "romantic", "party": "party", "summer": "summery", "film": "cinematic", "movie": "cinematic",
    "christmas": "festive", "holiday": "festive", "action": "action-packed", "adventure": "adventurous",
    "drama": "dramatic", "dream": "dreamy", "space": "spacey", "nature": "organic", "sport": "sporty",
    "travel": "wandering", "game": "playful", "children": "playful", "trailer": "epic", "advertising": "catchy",
    "commercial": "catchy", "corporate": "polished", "documentary": "reflective", "background": "understated",
    "soundscape": "atmospheric", "ballad": "ballad-like", "relaxing": "relaxed", "fast": "fast-paced",
    "slow": "slow", "sexy": "sultry", "meditative": "meditative", "motivational": "motivating",
}


class CaptionError(RuntimeError):
    """Captioning cannot run as configured; the message says what to change."""


class MissingModelsError(CaptionError, FileNotFoundError):
    """``caption.essentia_model_dir`` is set but model files are missing (named, with URLs)."""


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


@dataclass
class CaptionRecord:
    """The caption of one track × category, as written into that track's segment sidecars."""

    track_id: str
    artist: str
    track: str
    split: str
    category: str
    uuid: str
    caption: str  # without the UUID
    description: str  # "<uuid> <caption>": what audiocraft's text conditioner sees
    bpm: float | None
    key: str | None
    genre: str | None
    moods: list[str]
    keywords: list[str]
    sources: dict[str, str]
    n_segments: int
    template: str


@dataclass
class CaptionResult:
    """What one call of :func:`run_captioning` produced and how much work it did."""

    captions_dir: Path
    uuid: str
    records: list[CaptionRecord]
    tracks: list[TrackDescriptors]
    stems_analysed: int  # stems whose descriptors were computed this call
    stems_cached: int  # stems whose descriptors came from the cache
    audio_seconds_analysed: float
    audio_seconds_total: float
    sidecars_written: int
    sidecars_unchanged: int
    workers: int
    models: str | None  # "essentia-tensorflow" or None (model-free fallback)
    wall_seconds: float


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


def _models_signature(model_dir: str) -> str:
    """Names and sizes of the model files, so replacing a model invalidates the cache."""
    parts = []
    for rel in ESSENTIA_MODELS.values():
        name = rel.rsplit("/", 1)[-1]
        for ext in (".pb", ".json"):
            p = Path(model_dir) / f"{name}{ext}"
            parts.append(f"{p.name}:{p.stat().st_size if p.exists() else -1}")
    return text_sha1("|".join(parts))


# --------------------------------------------------------------------------- essentia access


def _es():
    """``essentia.standard`` with Essentia's INFO chatter switched off."""
    import essentia

    essentia.log.infoActive = False
    essentia.log.warningActive = False
    import essentia.standard as es

    return es


def _f32(x: np.ndarray) -> np.ndarray:
    """Contiguous float32 mono, as Essentia wants it."""
    return np.ascontiguousarray(au.to_mono(x), dtype=np.float32)


# --------------------------------------------------------------------------- TensorFlow models


@dataclass(frozen=True)
class ModelSpec:
    """One Essentia TensorFlow graph: file, node names and output classes."""

    role: str
    graph: str
    input: str
    output: str
    classes: tuple[str, ...]


def expected_model_files() -> list[tuple[str, str]]:
    """(file name, download URL) of every file ``caption.essentia_model_dir`` must hold."""
    out = []
    for rel in ESSENTIA_MODELS.values():
        name = rel.rsplit("/", 1)[-1]
        for ext in (".pb", ".json"):
            out.append((f"{name}{ext}", f"{ESSENTIA_MODELS_URL}/{rel}{ext}"))
    return out


def _essentia_version() -> str:
    """The installed essentia(-tensorflow) distribution version, for the install hint."""
    from importlib import metadata

    for dist in ("essentia-tensorflow", "essentia"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "2.1b6.dev1389"


def check_essentia_models(model_dir: str | Path) -> dict[str, ModelSpec]:
    """Verify the model files and the TensorFlow-enabled Essentia; return the graphs' specs."""
    model_dir = Path(model_dir)
    missing = [(n, u) for n, u in expected_model_files() if not (model_dir / n).is_file()]
    if missing:
        lines = "\n".join(f"  {n:<48} {u}" for n, u in missing)
        raise MissingModelsError(
            f"caption.essentia_model_dir = {model_dir} is set, but these Essentia model files are missing:\n"
            f"{lines}\n"
            f"Download each into {model_dir} (e.g. `curl -LO <url>`; all are listed under "
            f"{ESSENTIA_MODELS_URL}/), and install the TensorFlow build of Essentia instead of the plain one: "
            f"`pip uninstall -y essentia && pip install essentia-tensorflow=={_essentia_version()}` (never both). "
            "Or set caption.essentia_model_dir: null to use the model-free mood/genre fallback."
        )
    es = _es()
    if not (hasattr(es, "TensorflowPredictEffnetDiscogs") and hasattr(es, "TensorflowPredict2D")):
        raise CaptionError(
            "caption.essentia_model_dir is set, but the installed Essentia has no TensorFlow algorithms "
            "(TensorflowPredictEffnetDiscogs, TensorflowPredict2D): the plain `essentia` wheel is installed. "
            f"Replace it with the same version of the TensorFlow build: `pip uninstall -y essentia && "
            f"pip install essentia-tensorflow=={_essentia_version()}` — install one or the other, never both "
            "(they provide the same `essentia` module). Or set caption.essentia_model_dir: null."
        )
    specs = {}
    for role, rel in ESSENTIA_MODELS.items():
        name = rel.rsplit("/", 1)[-1]
        meta = read_json(model_dir / f"{name}.json")
        d_in, d_out = DEFAULT_NODES[role]
        schema = meta.get("schema") or {}
        inputs = schema.get("inputs") or []
        outputs = schema.get("outputs") or []
        purpose = "embeddings" if role == "embeddings" else "predictions"
        out_node = next((o["name"] for o in outputs if o.get("output_purpose") == purpose), d_out)
        in_node = inputs[0]["name"] if inputs and inputs[0].get("name") else d_in
        specs[role] = ModelSpec(role, str(model_dir / f"{name}.pb"), in_node, out_node,
                                tuple(meta.get("classes") or ()))
    if len(specs["genre"].classes) == 0 or len(specs["mood"].classes) == 0:
        raise CaptionError(f"{model_dir}: the genre/mood .json metadata lists no 'classes'; re-download them")
    return specs


class EssentiaModels:
    """Discogs-EffNet embeddings + genre_discogs400 + mtg_jamendo_moodtheme heads (essentia-tensorflow)."""

    def __init__(self, model_dir: str | Path):
        """Build the three graphs (raises :class:`MissingModelsError`/:class:`CaptionError` first)."""
        self.specs = check_essentia_models(model_dir)
        es = _es()
        emb, genre, mood = self.specs["embeddings"], self.specs["genre"], self.specs["mood"]
        self.embedder = es.TensorflowPredictEffnetDiscogs(graphFilename=emb.graph, input=emb.input, output=emb.output)
        self.genre_head = es.TensorflowPredict2D(graphFilename=genre.graph, input=genre.input, output=genre.output)
        self.mood_head = es.TensorflowPredict2D(graphFilename=mood.graph, input=mood.input, output=mood.output)

    def predict(self, x: np.ndarray, sr: int) -> tuple[dict[str, float], dict[str, float]]:
        """Mean genre-style and mood activations over the clip (top k of each)."""
        x16 = _f32(au.resample(au.to_mono(x), sr, MODEL_SR))
        emb = np.asarray(self.embedder(x16), dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0:
            return {}, {}
        genres = np.asarray(self.genre_head(emb), dtype=np.float64).mean(axis=0)
        moods = np.asarray(self.mood_head(emb), dtype=np.float64).mean(axis=0)
        return _top(genres, self.specs["genre"].classes), _top(moods, self.specs["mood"].classes)


def _top(scores: np.ndarray, classes: Sequence[str], k: int = MODEL_TOP_K) -> dict[str, float]:
    """The ``k`` highest-scoring classes, best first."""
    order = np.argsort(-scores)[:k]
    return {str(classes[i]): round(float(scores[i]), 4) for i in order if i < len(classes)}


_MODELS: dict[str, EssentiaModels] = {}


def _models_for(model_dir: str | None) -> EssentiaModels | None:
    """One :class:`EssentiaModels` per process and model dir."""
    if not model_dir:
        return None
    if model_dir not in _MODELS:
        _MODELS[model_dir] = EssentiaModels(model_dir)
    return _MODELS[model_dir]


# --------------------------------------------------------------------------- signal descriptors


def spectral_summary(x: np.ndarray, sr: int, n_fft: int = 2048, hop: int = 512) -> dict[str, Any]:
    """Median centroid, flatness, sub-150 Hz energy share and the spectral-flux onset envelope."""
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
    """Normalised autocorrelation of an onset envelope at the beat period of ``bpm`` (±3 %)."""
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
    """RhythmExtractor2013 tempo and confidence on 44.1 kHz audio, plus an octave-sibling check."""
    es = _es()
    out: dict[str, Any] = {"bpm_estimate": None, "bpm_confidence": None, "bpm_periodicity": None,
                           "bpm_sibling": None, "bpm_sibling_salience": None}
    try:
        bpm, ticks, conf, _, _ = es.RhythmExtractor2013(method="multifeature")(_f32(x44))
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
    """Essentia KeyExtractor key, scale and strength."""
    try:
        key, scale, strength = _es().KeyExtractor(profileType=profile, sampleRate=float(sr))(_f32(x))
    except Exception as e:
        return {"key": None, "scale": None, "key_strength": None, "note": f"KeyExtractor failed: {e}"}
    return {"key": str(key), "scale": str(scale), "key_strength": round(float(strength), 3)}


def estimate_pitch(x: np.ndarray, sr: int, min_confidence: float = 0.6) -> tuple[float | None, float]:
    """Median confident YIN (FFT) pitch of a monophonic voice and the voiced fraction of frames."""
    es = _es()
    frame, hop = 2048, 512
    x = _f32(x)
    if len(x) < frame:
        return None, 0.0
    window, spectrum = es.Windowing(type="hann"), es.Spectrum()
    yin = es.PitchYinFFT(sampleRate=float(sr), frameSize=frame, minFrequency=60.0, maxFrequency=1100.0)
    f0, conf = [], []
    for fr in es.FrameGenerator(x, frameSize=frame, hopSize=hop, startFromZero=True):
        p, c = yin(spectrum(window(fr)))
        f0.append(p)
        conf.append(c)
    f0_a, conf_a = np.asarray(f0), np.asarray(conf)
    voiced = (conf_a >= min_confidence) & (f0_a > 0)
    if voiced.sum() < 5:
        return None, float(voiced.mean()) if len(voiced) else 0.0
    return round(float(np.median(f0_a[voiced])), 1), round(float(voiced.mean()), 3)


def analyse_signal(x: np.ndarray, sr: int, category: str, config: AnalysisConfig = AnalysisConfig(),
                   sha1: str | None = None) -> StemDescriptors:
    """All raw descriptors of one stem (no thresholds applied; silence is reported, not raised)."""
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
        es = _es()
        x44 = _f32(au.resample(x, sr, TEMPO_SR))
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
    out["bpm"] = round(s.bpm_estimate, 1)
    # No signal measure separates a 70 BPM groove with eighth-note hats from a 140 BPM half-time one
    # (they are the same audio): the flag says the other octave is a plausible pop tempo with a
    # regular pulse, and the caption keeps Essentia's reading.
    ambiguous = s.bpm_sibling is not None and (s.bpm_sibling_salience or 0.0) >= SIBLING_RATIO
    # full and instrumental reading different octaves is the same ambiguity, seen directly
    others = [o.bpm_estimate for c, o in cands if c != cat and o.bpm_estimate]
    split_octave = [o for o in others if any(abs(o / s.bpm_estimate - r) < 0.04 for r in (0.5, 2.0))]
    if split_octave:
        ambiguous, alt, why = True, split_octave[0], "the other stem reads this tempo"
    else:
        alt, why = s.bpm_sibling, f"onset periodicity there is {s.bpm_sibling_salience} of that at the estimate"
    if ambiguous:
        out["alternative"] = round(alt, 1)
        out["note"] = f"tempo octave ambiguous: {alt:.1f} BPM is also plausible ({why})"
    out["ambiguous"] = ambiguous
    return out


def decide_key(stems: dict[str, StemDescriptors], min_strength: float) -> dict[str, Any]:
    """The caption's key: the strongest of full/instrumental, withheld for noise or weak tonality."""
    notes = []
    best = None
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
        elif best is None or s.key_strength > best[1].key_strength:
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
    if s.centroid_hz is not None:
        parts.append(brightness01(s.centroid_hz))
    return round(float(np.mean(parts)), 3) if parts else None


def fallback_moods(energy: float | None, scale: str | None, brightness_hz: float | None,
                   danceability: float | None = None) -> tuple[list[str], dict[str, float]]:
    """Model-free moods from a valence/arousal quadrant (valence: mode, brightness; arousal: energy)."""
    if energy is None:
        return [], {}
    arousal = 2 * energy - 1
    valence = {"major": 0.5, "minor": -0.5}.get(scale or "", 0.0)
    if brightness_hz is not None:
        valence += 0.5 * (brightness01(brightness_hz) - 0.5)
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


# --------------------------------------------------------------------------- captions


def _article(word: str) -> str:
    """``a`` or ``an`` before ``word``."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _join(words: Iterable[str | None]) -> str:
    """Join non-empty words with single spaces."""
    return " ".join(w for w in words if w)


def _and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption_rng(seed: int, track_id: str, category: str) -> random.Random:
    """The RNG that picks templates and synonyms for one caption (stable across processes)."""
    return random.Random(int(text_sha1(f"{CAPTION_VERSION}|{seed}|{track_id}|{category}")[:16], 16))


def _register(td: TrackDescriptors, rng: random.Random) -> str | None:
    """e.g. ``deep low-register``, or None when the register is unknown."""
    return {"low": rng.choice(["deep low-register", "low, dark-toned", "baritone-range"]),
            "mid": rng.choice(["mid-register", "mid-range"]),
            "high": rng.choice(["high-register", "bright high", "soprano-range"])}.get(td.vocal_register or "")


def _voice_phrase(td: TrackDescriptors, rng: random.Random) -> str:
    """e.g. ``upfront deep low-register vocals`` (presence in the mix + register)."""
    presence = {"lead": rng.choice(["upfront", "prominent"]), "faint": "faint"}.get(td.vocals)
    return _join([presence, _register(td, rng), rng.choice(["vocals", "vocals", "singing"])])


def make_caption(td: TrackDescriptors, category: str, uuid: str, seed: int, n_segments: int = 0) -> CaptionRecord:
    """The deterministic natural-language caption of one track × category, UUID-prefixed."""
    rng = caption_rng(seed, td.track_id, category)
    mood = MOOD_ADJECTIVE.get(td.moods[0], td.moods[0]) if td.moods else None
    if td.moods[1:2] and rng.random() < 0.5:
        mood = MOOD_ADJECTIVE.get(td.moods[1], td.moods[1])
    if mood is None and td.energy_level:
        mood = {"low": "laid-back", "medium": "steady", "high": "high-energy"}[td.energy_level]
    genre = td.genre
    instruments = list(td.instruments)
    tail = []
    if td.bpm:
        tail.append(f"{round(td.bpm)} BPM")
    if td.key_name:
        tail.append(f"in {td.key_name}")
    rng.shuffle(tail)
    t = rng.randrange(3)
    if category == "acapella":  # the voice alone: its character and register, no instruments
        register = _register(td, rng)
        body = [_join(["a cappella", mood, genre, "vocals"]) + (f", {register} voice" if register else ""),
                _join(["isolated", mood, genre, "vocal track"]) + (f": {register} singing" if register else ""),
                _join(["unaccompanied", mood, genre, "singing"]) + (f" in a {register} voice" if register else ""),
                ][t]
    elif category == "instrumental":  # the accompaniment: what plays, and that nobody sings
        instr = _and(instruments) if instruments else None
        body = [_join([mood, genre, "instrumental"]) + (f" with {instr}" if instr else ""),
                _join([mood, genre, "backing track without vocals"]) + (f", featuring {instr}" if instr else ""),
                _join(["instrumental", mood, genre, "beat"]) + (f" built on {instr}" if instr else ""),
                ][t]
    else:  # the mix: voice and accompaniment
        body = _join([mood, genre, ("track", "song", "tune")[t]])
        if td.vocals != "none":
            body += f" with {_voice_phrase(td, rng)}"
            if instruments:
                body += rng.choice([" over ", ", backed by "]) + _and(instruments)
        elif instruments:
            body += f" with {_and(instruments)}"
    caption = ", ".join([body.strip(), *tail])
    keywords = [w for w in [genre, *td.styles, *td.moods, *instruments,
                            f"{td.vocal_register} vocals" if td.vocal_register and category != "instrumental" else None,
                            f"{td.energy_level} energy" if td.energy_level else None, td.brightness] if w]
    fields = {"bpm", "key", "moods", "genre", "vocals", "vocal_register", "instruments", "energy"}
    return CaptionRecord(
        track_id=td.track_id, artist=td.artist, track=td.track, split=td.split, category=category, uuid=uuid,
        caption=caption, description=f"{uuid} {caption}", bpm=td.bpm, key=td.key_name, genre=genre,
        moods=list(td.moods), keywords=list(dict.fromkeys(keywords)),
        sources={k: v for k, v in td.sources.items() if k in fields}, n_segments=n_segments,
        template=f"{category}-{t}",
    )


# --------------------------------------------------------------------------- the stage


def analysis_config(params: Params) -> AnalysisConfig:
    """Descriptor settings from ``params`` (the model dir resolved against the repo root and checked)."""
    c = params.caption
    model_dir = None
    if c.essentia_model_dir:
        p = Path(c.essentia_model_dir).expanduser()
        if not p.is_absolute():
            base = Path(params.source).resolve().parent.parent if params.source else Path.cwd()
            p = base / p
        model_dir = str(p)
        check_essentia_models(model_dir)  # fail before any work, with the files and URLs named
    return AnalysisConfig(key_profile=c.key_profile, min_bpm_confidence=c.min_bpm_confidence,
                          min_key_strength=c.min_key_strength, silence_db=params.curate.silence_db,
                          model_dir=model_dir)


def _curated_rows(run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stage 01's tracks and segments as dicts (via curate's loaders when available)."""
    curated = run_dir / "curated"
    if not (curated / "tracks.jsonl").exists():
        raise FileNotFoundError(f"{curated / 'tracks.jsonl'} is missing: run the curation stage "
                                "(notebooks/01_curate.ipynb) for this profile first")
    try:
        from .curate import load_segments, load_tracks

        return ([dataclasses.asdict(t) for t in load_tracks(run_dir)],
                [dataclasses.asdict(s) for s in load_segments(run_dir)])
    except (ImportError, TypeError):  # curate not importable or its records changed: read the contract
        return read_jsonl(curated / "tracks.jsonl"), read_jsonl(curated / "segments.jsonl")


def _analyse_job(job: tuple[str, list[tuple[str, str, str]], AnalysisConfig, str]) -> list[dict[str, Any]]:
    """Worker: descriptors of a track's uncached stems (written to the cache as they are done)."""
    _, stems, config, cache_dir = job
    out = []
    for category, path, sha1 in stems:
        d, _ = describe_stem(Path(path), category, config, Path(cache_dir), sha1)
        out.append(dataclasses.asdict(d))
    return out


def run_captioning(params: Params, progress: bool = True) -> CaptionResult:
    """Describe every curated track, caption each track × category, write sidecars and tables."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    config = analysis_config(params)
    run_dir = Path(params.run_dir)
    curated, cap_dir = params.run.curated, params.run.captions
    cache_dir = cap_dir / "descriptors"
    cache_dir.mkdir(parents=True, exist_ok=True)
    tracks, segments = _curated_rows(run_dir)
    uuid = ensure_run_uuid(run_dir, params.caption.caption_uuid, params.seed, params.profile)

    stems: dict[str, dict[str, StemDescriptors]] = {t["track_id"]: {} for t in tracks}
    jobs = []
    total_s = 0.0
    for t in tracks:
        todo = []
        for cat in CATEGORIES:
            rel = t["audio"].get(cat)
            if rel is None:
                continue
            path = curated / rel
            sha1 = file_sha1(path)
            total_s += float(t.get("duration_s", 0.0))
            hit = load_cached(cache_dir, sha1, config, cat)
            if hit is not None:
                stems[t["track_id"]][cat] = hit
            else:
                todo.append((cat, str(path), sha1))
        if todo:
            jobs.append((t["track_id"], todo, config, str(cache_dir)))

    workers = max(1, min(params.n_workers, len(jobs)))
    if config.model_dir:
        workers = min(workers, MAX_MODEL_WORKERS)
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # workers share a GPU politely
    bar = tqdm(total=len(jobs), desc="describing tracks", unit="track", disable=not progress or not jobs)
    analysed = []
    if workers <= 1:
        for job in jobs:
            analysed.append((job[0], _analyse_job(job)))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for job, res in zip(jobs, pool.map(_analyse_job, jobs)):
                analysed.append((job[0], res))
                bar.update()
    bar.close()
    analysed_s = 0.0
    for track_id, rows in analysed:
        for r in rows:
            d = StemDescriptors(**r)
            stems[track_id][d.category] = d
            analysed_s += d.duration_s

    live = {d.sha1 for v in stems.values() for d in v.values()}
    for stale in cache_dir.glob("*.json"):  # entries of audio that no longer exists in this run
        if stale.stem not in live:
            stale.unlink()
    described = [describe_track(t, stems[t["track_id"]], config, read_user_metadata(t.get("source_files")))
                 for t in tracks]
    by_id = {td.track_id: td for td in described}
    records = [make_caption(by_id[t["track_id"]], cat, uuid, params.seed, int(t.get("n_segments", {}).get(cat, 0)))
               for t in tracks for cat in CATEGORIES if cat in t["audio"]]
    written, unchanged = write_sidecars(curated, segments, records)
    write_tables(cap_dir, records, described)
    return CaptionResult(
        captions_dir=cap_dir, uuid=uuid, records=records, tracks=described,
        stems_analysed=sum(len(rows) for _, rows in analysed),
        stems_cached=sum(len(v) for v in stems.values()) - sum(len(rows) for _, rows in analysed),
        audio_seconds_analysed=analysed_s, audio_seconds_total=total_s, sidecars_written=written,
        sidecars_unchanged=unchanged, workers=workers if jobs else 0,
        models="essentia-tensorflow" if config.model_dir else None, wall_seconds=time.perf_counter() - start,
    )


def sidecar_fields(rec: CaptionRecord) -> dict[str, Any]:
    """The audiocraft ``MusicInfo`` fields stage 02 owns in a segment sidecar."""
    return {"description": rec.description, "bpm": rec.bpm, "key": rec.key, "genre": rec.genre,
            "moods": rec.moods or None, "keywords": rec.keywords or None}


def write_sidecars(curated: Path, segments: Iterable[dict[str, Any]],
                   records: Iterable[CaptionRecord]) -> tuple[int, int]:
    """Fill every segment sidecar's caption fields atomically; return (written, already up to date)."""
    by_key = {(r.track_id, r.category): r for r in records}
    written = unchanged = 0
    for s in segments:
        rec = by_key.get((s["track_id"], s["category"]))
        if rec is None:
            continue
        path = (curated / s["path"]).with_suffix(".json")
        data = read_json(path) if path.exists() else {"name": s["segment_id"], "artist": s["artist"],
                                                      "title": s["track"]}
        data.update(sidecar_fields(rec))
        if write_if_changed(path, to_json(data)):
            written += 1
        else:
            unchanged += 1
    return written, unchanged


CSV_COLUMNS = ["track_id", "artist", "track", "split", "category", "n_segments", "description", "caption", "bpm",
               "key", "genre", "moods", "keywords", "template", "sources"]


def write_tables(cap_dir: Path, records: list[CaptionRecord], tracks: list[TrackDescriptors]) -> None:
    """``captions.jsonl`` / ``captions.csv`` (track × category) and ``descriptors.jsonl`` (per track)."""
    write_if_changed(cap_dir / "captions.jsonl", "".join(
        json.dumps(dataclasses.asdict(r), sort_keys=True, ensure_ascii=False) + "\n" for r in records))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in records:
        row = dataclasses.asdict(r)
        row["moods"], row["keywords"] = "; ".join(r.moods), "; ".join(r.keywords)
        row["sources"] = json.dumps(r.sources, sort_keys=True, ensure_ascii=False)
        w.writerow({k: row[k] for k in CSV_COLUMNS})
    write_if_changed(cap_dir / "captions.csv", buf.getvalue())
    write_if_changed(cap_dir / "descriptors.jsonl", "".join(
        json.dumps(t.to_dict(), sort_keys=True, ensure_ascii=False) + "\n" for t in tracks))


def load_captions(run_dir: str | Path) -> list[CaptionRecord]:
    """The captions of a run (one per track × category), for training and evaluation."""
    path = Path(run_dir) / "captions" / "captions.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the captioning stage (notebooks/02_caption.ipynb) first")
    return [CaptionRecord(**r) for r in read_jsonl(path)]


def load_descriptors(run_dir: str | Path) -> list[TrackDescriptors]:
    """The per-track descriptors of a run."""
    return [TrackDescriptors.from_dict(r) for r in read_jsonl(Path(run_dir) / "captions" / "descriptors.jsonl")]


# --------------------------------------------------------------------------- notebook helpers


def tables(result: CaptionResult) -> dict[str, Any]:
    """pandas tables for the chapter: ``captions`` (track × category) and ``descriptors`` (per track)."""
    import pandas as pd

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
    segs = {}
    for s in _curated_rows(Path(result.captions_dir).parent)[1]:
        segs.setdefault((s["track_id"], s["category"]), s)
    curated = Path(result.captions_dir).parent / "curated"
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
    import html

    rows = []
    for rec, path in examples:
        x, sr = au.load_audio(path)
        x = x[:, : int(seconds * sr)]
        rows.append(f"<tr><td>{html.escape(rec.artist)}</td><td>{html.escape(rec.category)}</td>"
                    f"<td><code>{html.escape(rec.uuid[:8])}…</code> {html.escape(rec.caption)}</td>"
                    f"<td>{au.player_html(x[0], sr, f'{rec.track_id} / {rec.category}')}</td></tr>")
    return ('<table class="silicon-players"><thead><tr><th>artist</th><th>stem</th><th>caption</th>'
            f"<th>listen</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


PITCH_CLASSES = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6, "G": 7,
                 "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11}


def tempo_agreement(bpm: float | None, truth: float, alternative: float | None = None, tol: float = 0.02) -> str:
    """``exact`` (±tol), ``octave, flagged``, ``octave`` (unflagged), ``wrong`` or ``withheld``."""
    if bpm is None:
        return "withheld"
    if abs(bpm - truth) <= tol * truth:
        return "exact"
    if any(abs(bpm - truth * r) <= tol * truth * r for r in (0.5, 2.0)):
        return "octave, flagged" if alternative and abs(alternative - truth) <= tol * truth else "octave"
    return "wrong"


def same_key(a: str | None, b: str | None) -> bool:
    """Whether two ``"F# minor"``-style keys name the same pitch class and mode."""
    if not a or not b:
        return False
    (ta, ma), (tb, mb) = a.split(), b.split()
    return PITCH_CLASSES.get(ta) == PITCH_CLASSES.get(tb) and ma == mb


def synthetic_truth(params: Params, result: CaptionResult):
    """On the smoke corpus, the generator's tempo, key and sung pitch beside our estimates (else None)."""
    import pandas as pd

    if params.curate.data_root or not (params.run.raw / "corpus.json").exists():
        return None
    from .synth import load_corpus_tracks

    truth = {(t["artist"], t["track"]): t for t in load_corpus_tracks(params.run.raw)}
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


def summary(result: CaptionResult, params: Params) -> dict[str, Any]:
    """Numbers and phrases the chapter quotes (glued, never typed)."""
    tds = result.tracks
    uuid_info = read_json(result.captions_dir / "run_uuid.json")
    example = next((r for r in result.records if r.category == "full"), result.records[0] if result.records else None)
    word_dropout = float(getattr(params.train, "word_dropout", 0.2))
    retention = (simulate_uuid_retention(example.description, result.uuid, word_dropout=word_dropout) if example
                 else {"audiocraft": 0, "ours": 0})
    truth = synthetic_truth(params, result)
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


def captions_by_artist(result: CaptionResult):
    """Captions as a table: one row per artist and track, one column per stem category."""
    import pandas as pd

    df = pd.DataFrame([{"artist": r.artist, "track": r.track, "split": r.split, "category": r.category,
                        "caption": r.caption} for r in result.records])
    wide = df.pivot_table(index=["artist", "track", "split"], columns="category", values="caption", aggfunc="first")
    return wide[[c for c in CATEGORIES if c in wide.columns]]


__all__ = [
    "StemDescriptors", "TrackDescriptors", "CaptionRecord", "CaptionResult", "AnalysisConfig", "CaptionError",
    "MissingModelsError", "EssentiaModels", "check_essentia_models", "expected_model_files", "analyse_signal",
    "describe_stem", "describe_track", "decide_tempo", "decide_key", "fallback_moods", "make_caption",
    "run_captioning",
    "write_sidecars", "load_captions", "load_descriptors", "tables", "example_captions", "captions_player_html",
    "tempo_agreement", "same_key", "synthetic_truth", "simulate_uuid_retention", "captions_by_artist", "summary",
]
