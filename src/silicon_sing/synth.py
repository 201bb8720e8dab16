"""Synthetic stems for the embedded default: three fictional artists who sing or rap.

The corpus stands in for a user's ``<root>/<artist>/<track>/{acapella,instrumental,full}.<ext>``
folder, so the smoke profile exercises exactly the code path of real data. The voice is
source-filter synthesis: a band-limited (polyBLEP) glottal sawtooth following a pitch contour
(portamento, vibrato or speech-like intonation, jitter and shimmer) plus pulsed aspiration noise,
shaped by a cascade of five time-varying formant resonators (a/e/i/o/u tables per voice type),
with filtered-noise consonants at syllable onsets and breaths between phrases. The instrumental
is drums, bass and chords rendered note by note in the artist's key and tempo. A track is first
*composed* (:func:`plan_track`: phrases, notes, chords) and then *rendered*
(:func:`synth_track`); both draw from ``numpy.random.default_rng`` seeded by
``(seed, artist, track)``, so output is bit-reproducible and adding tracks leaves others unchanged.
``full`` is the exact sample sum of the two stems after one shared peak gain.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from .audio import save_audio
from .fsutil import atomic_write_json, read_json
from .machine import usable_cpus
from .music import NOTE_NAMES, PITCH_CLASSES, SCALES, hz_to_midi, midi_to_hz

SYNTH_VERSION = 1  # bump whenever the rendered audio changes, so existing corpora regenerate
STEMS = ("acapella", "instrumental", "full")
PEAK = 0.89  # the loudest sample of any stem after the shared gain
_BLOCK = 256  # samples per formant-coefficient update (5.8 ms at 44.1 kHz)

# Formant centre frequencies and bandwidths (Hz), F1..F5, per voice type and vowel: the classic
# sung-vowel tables (Csound manual, "Formant values"); "bass" doubles as a low speaking voice.
FORMANTS: dict[str, dict[str, tuple[tuple[float, ...], tuple[float, ...]]]] = {
    "soprano": {
        "a": ((800, 1150, 2900, 3900, 4950), (80, 90, 120, 130, 140)),
        "e": ((350, 2000, 2800, 3600, 4950), (60, 100, 120, 150, 200)),
        "i": ((270, 2140, 2950, 3900, 4950), (60, 90, 100, 120, 120)),
        "o": ((450, 800, 2830, 3800, 4950), (70, 80, 100, 130, 135)),
        "u": ((325, 700, 2700, 3800, 4950), (50, 60, 170, 180, 200)),
    },
    "tenor": {
        "a": ((650, 1080, 2650, 2900, 3250), (80, 90, 120, 130, 140)),
        "e": ((400, 1700, 2600, 3200, 3580), (70, 80, 100, 120, 120)),
        "i": ((290, 1870, 2800, 3250, 3540), (40, 90, 100, 120, 120)),
        "o": ((400, 800, 2600, 2800, 3000), (70, 80, 100, 130, 135)),
        "u": ((350, 600, 2700, 2900, 3300), (40, 60, 100, 120, 120)),
    },
    "bass": {
        "a": ((600, 1040, 2250, 2450, 2750), (60, 70, 110, 120, 130)),
        "e": ((400, 1620, 2400, 2800, 3100), (40, 80, 100, 120, 120)),
        "i": ((250, 1750, 2600, 3050, 3340), (60, 90, 100, 120, 120)),
        "o": ((400, 750, 2400, 2600, 2900), (40, 80, 100, 120, 120)),
        "u": ((350, 600, 2400, 2675, 2950), (40, 80, 100, 120, 120)),
    },
}

# consonant code -> (duration s, noise band Hz, level relative to the vowel, kind)
_CONSONANTS: dict[str, tuple[float, tuple[float, float], float, str]] = {
    "s": (0.085, (4500.0, 11000.0), 0.22, "fricative"),
    "S": (0.090, (1800.0, 5500.0), 0.20, "fricative"),  # "sh"
    "f": (0.070, (1200.0, 9000.0), 0.08, "fricative"),
    "h": (0.060, (600.0, 3500.0), 0.07, "fricative"),
    "t": (0.025, (3000.0, 9000.0), 0.35, "stop"),
    "k": (0.035, (1400.0, 4200.0), 0.30, "stop"),
    "p": (0.018, (250.0, 1800.0), 0.30, "stop"),
    "m": (0.060, (0.0, 0.0), 0.0, "nasal"),
    "n": (0.050, (0.0, 0.0), 0.0, "nasal"),
}


@dataclass(frozen=True)
class ArtistStyle:
    """Everything that makes one fictional artist recognisable: voice, delivery, band, harmony."""

    name: str  # also the artist folder name
    description: str
    voice: str  # key of FORMANTS
    f0_range: tuple[float, float]  # Hz; melody notes are drawn from the scale inside it
    delivery: str  # "sung" (sustained legato notes) or "rap" (short syllables, speech intonation)
    tempo_bpm: float
    tonic: str
    mode: str  # key of SCALES
    instrumental: str  # "ballad" | "trap" | "dance"
    rhythm_cells: tuple[tuple[float, ...], ...]  # note durations in beats, concatenated into phrases
    phrase_beats: float  # phrase length including the breath rest at its end
    rest_beats: tuple[float, ...]  # choices for that breath rest
    pickups: tuple[float, ...]  # beats the first phrase starts before bar 1 (the intro bar is bar 0)
    vibrato_hz: float
    vibrato_cents: float
    portamento_s: float  # time constant of pitch glides between notes
    jitter: float  # relative f0 perturbation
    shimmer_db: float
    breathiness: float  # share of aspiration noise in the source
    brightness_hz: float  # corner of the source's extra spectral tilt
    vowels: str  # sampled uniformly, so repetition is weighting
    consonants: str
    consonant_prob: float
    legato: float  # voiced share of each note (1 = fully connected)
    timing_jitter_s: float
    vocal_over_db: float  # active-vocal RMS above the instrumental RMS
    reverb_s: float
    progressions: tuple[tuple[int, ...], ...]  # scale degrees (0-based), one chord per bar
    titles: tuple[str, ...]


ARTISTS: tuple[ArtistStyle, ...] = (
    ArtistStyle(
        name="Luna Vale",
        description="breathy high soprano with wide vibrato; slow minor-key ballad, pads and piano",
        voice="soprano", f0_range=(390.0, 790.0), delivery="sung", tempo_bpm=80.0, tonic="A",
        mode="minor", instrumental="ballad",
        rhythm_cells=((1.0,), (0.5, 0.5), (1.5, 0.5), (2.0,), (0.75, 0.25), (1.0, 1.0)),
        phrase_beats=8.0, rest_beats=(1.0, 1.5), pickups=(0.0, 1.0, 2.0),
        vibrato_hz=5.6, vibrato_cents=45.0, portamento_s=0.06, jitter=0.004, shimmer_db=0.6,
        breathiness=0.14, brightness_hz=3000.0, vowels="aaaooeiu", consonants="snmthfk",
        consonant_prob=0.55, legato=0.94, timing_jitter_s=0.008, vocal_over_db=4.0, reverb_s=1.6,
        progressions=((0, 5, 2, 6), (0, 3, 5, 4), (0, 6, 5, 6), (5, 3, 0, 4)),
        titles=("Glass Harbour", "Paper Moons", "Winter Letters", "Low Tide Lullaby", "Silver Thread",
                "Quiet Orbit", "Cold Lanterns", "Ember Rain"),
    ),
    ArtistStyle(
        name="Kid Basalt",
        description="low male rapper, fast short syllables with speech intonation; 140 BPM trap beat, 808 bass",
        voice="bass", f0_range=(85.0, 165.0), delivery="rap", tempo_bpm=140.0, tonic="F",
        mode="minor", instrumental="trap",
        rhythm_cells=((0.5, 0.5), (0.25, 0.25, 0.5), (0.5, 0.25, 0.25), (0.25, 0.25, 0.25, 0.25),
                      (0.75, 0.25), (0.25, 0.5, 0.25)),
        phrase_beats=8.0, rest_beats=(0.5, 1.0), pickups=(0.0, 0.5),
        vibrato_hz=0.0, vibrato_cents=0.0, portamento_s=0.02, jitter=0.01, shimmer_db=1.0,
        breathiness=0.06, brightness_hz=2200.0, vowels="aaeeiiou", consonants="tkpsSfhmn",
        consonant_prob=0.85, legato=0.72, timing_jitter_s=0.004, vocal_over_db=6.0, reverb_s=0.5,
        progressions=((0, 0, 5, 6), (0, 5, 3, 4), (0, 3, 0, 6), (0, 6, 5, 4)),
        titles=("Concrete Psalm", "Night Shift", "Gravel Road", "Basement Tapes", "Static Crown",
                "Iron Lung", "Late Transit", "Block Party Ghost"),
    ),
    ArtistStyle(
        name="Nico Sunray",
        description="bright tenor with light vibrato; 112 BPM major-key dance track, four-on-the-floor",
        voice="tenor", f0_range=(190.0, 400.0), delivery="sung", tempo_bpm=112.0, tonic="D",
        mode="major", instrumental="dance",
        rhythm_cells=((0.5, 0.5), (1.0,), (0.75, 0.75, 0.5), (0.5, 1.0, 0.5), (0.25, 0.25, 0.5),
                      (1.5, 0.5)),
        phrase_beats=8.0, rest_beats=(1.0, 1.5, 2.0), pickups=(0.0, 0.5, 1.0),
        vibrato_hz=5.0, vibrato_cents=25.0, portamento_s=0.04, jitter=0.005, shimmer_db=0.5,
        breathiness=0.05, brightness_hz=4000.0, vowels="aaeeioou", consonants="sStkpmnhf",
        consonant_prob=0.7, legato=0.86, timing_jitter_s=0.006, vocal_over_db=5.0, reverb_s=0.9,
        progressions=((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3)),
        titles=("Golden Hour", "Neon Pulse", "Summer Signal", "Dancing on Glass", "Satellite Heart",
                "Citrus Sky", "Afterglow", "Midnight Drive"),
    ),
)


@dataclass(frozen=True)
class Syllable:
    """One sung or rapped syllable: timing, pitch, vowel and onset consonant."""

    start: float  # s, onset of the consonant (or of the vowel when there is none)
    dur: float  # s, until the next note's nominal onset
    midi: float  # nominal pitch (fractional for rap intonation)
    glide: float  # semitones the pitch falls across the syllable (speech-like contour)
    vowel: str
    consonant: str  # "" for a vowel onset
    accent: float  # 0..1 loudness emphasis
    phrase_start: bool


@dataclass(frozen=True)
class TrackPlan:
    """The composed score of one track: harmony, tempo and the vocal line."""

    artist: str
    track_index: int
    title: str
    seconds: float
    tempo_bpm: float
    key: str
    progression: tuple[int, ...]
    chords: tuple[str, ...]
    syllables: tuple[Syllable, ...]
    variant: int  # drum/arpeggio pattern variant

    @property
    def folder(self) -> str:
        """Track folder name in the user layout."""
        return f"{self.track_index + 1:02d} {self.title}"

    def summary(self) -> dict[str, Any]:
        """JSON-friendly ground truth for captions and the book (tempo, key, chords, vocal stats)."""
        midis = np.array([s.midi for s in self.syllables]) if self.syllables else np.zeros(1)
        return {
            "artist": self.artist, "track": self.folder, "title": self.title, "seconds": self.seconds,
            "tempo_bpm": self.tempo_bpm, "key": self.key, "chords": list(self.chords),
            "n_syllables": len(self.syllables),
            "syllables_per_second": round(len(self.syllables) / max(self.seconds, 1e-9), 3),
            "median_f0_hz": round(float(midi_to_hz(float(np.median(midis)))), 2),
        }


# --------------------------------------------------------------------------- small helpers


def _artist_key(style: ArtistStyle) -> int:
    """A stable integer per artist name, so seeds do not depend on the order of ARTISTS."""
    return zlib.crc32(style.name.encode("utf-8"))


def _rng(seed: int, style: ArtistStyle, track_index: int, stream: int) -> np.random.Generator:
    """Independent generator per (seed, artist, track, purpose); track -1 is artist-wide."""
    return np.random.default_rng([int(seed), _artist_key(style), track_index + 1, stream])


def scale_notes(style: ArtistStyle, lo_hz: float, hi_hz: float) -> list[int]:
    """MIDI numbers of the artist's scale between two frequencies (inclusive)."""
    tonic = PITCH_CLASSES[style.tonic]
    pcs = {(tonic + iv) % 12 for iv in SCALES[style.mode]}
    lo, hi = math.ceil(hz_to_midi(lo_hz) - 1e-6), math.floor(hz_to_midi(hi_hz) + 1e-6)
    return [m for m in range(lo, hi + 1) if m % 12 in pcs]


def chord_pcs(style: ArtistStyle, degree: int) -> tuple[int, int, int]:
    """Pitch classes of the diatonic triad on a 0-based scale degree."""
    tonic, sc = PITCH_CLASSES[style.tonic], SCALES[style.mode]
    return tuple((tonic + sc[(degree + k) % 7]) % 12 for k in (0, 2, 4))  # type: ignore[return-value]


def chord_name(style: ArtistStyle, degree: int) -> str:
    """Lead-sheet name of the diatonic triad on ``degree`` (e.g. 'Am', 'F', 'Bdim')."""
    r, t, f = chord_pcs(style, degree)
    third, fifth = (t - r) % 12, (f - r) % 12
    return NOTE_NAMES[r] + ("dim" if fifth == 6 else "m" if third == 3 else "")


def _voice(pcs: Sequence[int], lo: int) -> list[int]:
    """Place pitch classes in the octave window [lo, lo + 12): closed voicings that voice-lead."""
    return sorted(lo + (pc - lo) % 12 for pc in pcs)


def _smooth_noise(rng: np.random.Generator, n: int, sr: int, rate_hz: float) -> np.ndarray:
    """Unit-variance random curve changing at about ``rate_hz``, linearly interpolated."""
    n_ctrl = int(n / sr * rate_hz) + 2
    ctrl = rng.standard_normal(n_ctrl)
    return np.interp(np.arange(n) * (rate_hz / sr), np.arange(n_ctrl), ctrl)


def _one_pole(x: np.ndarray, tau_s: float, sr: float, axis: int = -1) -> np.ndarray:
    """Exponential smoothing with time constant ``tau_s`` that starts settled at ``x[0]``."""
    a = math.exp(-1.0 / (max(tau_s, 1e-6) * sr))
    x0 = np.take(x, [0], axis=axis)
    return signal.lfilter([1.0 - a], [1.0, -a], x - x0, axis=axis) + x0


@lru_cache(maxsize=64)
def _band_sos(lo: float, hi: float, sr: int, order: int = 2) -> np.ndarray:
    """Butterworth band-, high- or low-pass sections; an edge of 0 or >= Nyquist drops that side."""
    nyq = 0.5 * sr
    hi = min(hi, 0.45 * sr) if hi > 0 else 0.0
    if lo > 0 and 0 < hi < nyq:
        return signal.butter(order, [lo, hi], btype="bandpass", fs=sr, output="sos")
    if lo > 0:
        return signal.butter(order, lo, btype="highpass", fs=sr, output="sos")
    return signal.butter(order, hi, btype="lowpass", fs=sr, output="sos")


def _raised_cos(n: int) -> np.ndarray:
    """A 0→1 half-cosine ramp of ``n`` samples."""
    return 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / max(n, 1))


def _polyblep(t: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """PolyBLEP residual that removes most aliasing from a naive sawtooth's jump."""
    out = np.zeros_like(t)
    m = t < dt
    x = t[m] / dt[m]
    out[m] = x + x - x * x - 1.0
    m = t > 1.0 - dt
    x = (t[m] - 1.0) / dt[m]
    out[m] = x * x + x + x + 1.0
    return out


def _saw(freq: np.ndarray | float, n: int, sr: int, phase0: float = 0.0) -> np.ndarray:
    """Band-limited sawtooth in [-1, 1] at a constant or per-sample frequency."""
    dt = np.broadcast_to(np.asarray(freq, dtype=np.float64) / sr, (n,))
    t = (phase0 + np.cumsum(dt)) % 1.0
    return 2.0 * t - 1.0 - _polyblep(t, np.ascontiguousarray(dt))


def glottal_source(f0: np.ndarray, sr: int, brightness_hz: float | None = None) -> np.ndarray:
    """Glottal-like pulse train for per-sample ``f0``: a band-limited sawtooth with optional extra tilt."""
    # a sawtooth's -6 dB/octave is roughly the glottal flow derivative including lip radiation
    x = -_saw(f0, f0.size, sr)
    if brightness_hz:
        x = signal.sosfilt(_band_sos(0.0, brightness_hz, sr, 1), x) * 1.5
    return x


def formant_cascade(x: np.ndarray, freqs: np.ndarray, bws: np.ndarray, sr: int, block: int = _BLOCK) -> np.ndarray:
    """Cascade of unity-DC-gain resonators (Klatt-style) whose ``[blocks, K]`` formants change per block."""
    nb, k = freqs.shape
    r = np.exp(-np.pi * bws / sr)
    a1 = -2.0 * r * np.cos(2.0 * np.pi * freqs / sr)
    a2 = r * r
    sos = np.zeros((nb, k, 6))
    sos[..., 0] = 1.0 + a1 + a2
    sos[..., 3] = 1.0
    sos[..., 4] = a1
    sos[..., 5] = a2
    y = np.zeros_like(x)
    zi = np.zeros((k, 2))
    for b in range(nb):
        seg = x[b * block:(b + 1) * block]
        if seg.size == 0:
            break
        if not zi.any() and not seg.any():
            continue  # silence in, silence out: skipping rests keeps the loop cheap
        y[b * block:b * block + seg.size], zo = signal.sosfilt(sos[b], seg, zi=zi)
        if b + 1 < nb:
            # all-pole sections keep only past outputs in their state: recover y[n], y[n-1] under the
            # old coefficients and rebuild the state for the new ones, so coefficient changes are click-free
            yn = -zo[:, 1] / a2[b]
            ynm1 = -(zo[:, 0] + a1[b] * yn) / a2[b]
            zi = np.stack([-a1[b + 1] * yn - a2[b + 1] * ynm1, -a2[b + 1] * yn], axis=1)
            if np.abs(zi).max() < 1e-10:
                zi[:] = 0.0
    return y


def render_vowel(voice: str, vowel: str, f0: float, seconds: float = 1.0, sr: int = 44100,
                 brightness_hz: float | None = 3000.0) -> np.ndarray:
    """A steady vowel (no vibrato) for illustrating source-filter synthesis; mono float32."""
    n = int(seconds * sr)
    src = glottal_source(np.full(n, float(f0)), sr, brightness_hz)
    f, b = FORMANTS[voice][vowel]
    nb = -(-n // _BLOCK)
    y = formant_cascade(src, np.tile(np.asarray(f, float), (nb, 1)), np.tile(np.asarray(b, float), (nb, 1)), sr)
    env = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.02 * sr))
    y *= env
    return (0.5 * y / (np.abs(y).max() + 1e-12)).astype(np.float32)


# --------------------------------------------------------------------------- composition


def _fill_rhythm(style: ArtistStyle, rng: np.random.Generator, beats: float) -> list[float]:
    """Concatenate random rhythm cells into note durations summing to ``beats``."""
    durs: list[float] = []
    while sum(durs) < beats - 1e-9:
        cell = style.rhythm_cells[int(rng.integers(len(style.rhythm_cells)))]
        durs.extend(cell)
    while sum(durs) > beats + 1e-9:  # trim the overshoot from the end
        over = sum(durs) - beats
        if durs[-1] <= over + 1e-9:
            durs.pop()
        else:
            durs[-1] -= over
    return durs


def _nearest_chord_tone(idx: int, notes: list[int], pcs: Sequence[int]) -> int:
    """Index of the scale note nearest to ``notes[idx]`` whose pitch class is in the chord."""
    cands = [j for j, m in enumerate(notes) if m % 12 in pcs]
    return min(cands, key=lambda j: (abs(j - idx), j)) if cands else idx


def _sung_melody(style: ArtistStyle, rng: np.random.Generator, onsets: list[float], notes: list[int],
                 chord_at: Any) -> list[int]:
    """Scale-index melody: a stepwise walk arching up then down, chord tones on strong beats and at the end."""
    n = len(notes)
    idx = int(rng.integers(n // 3, max(n // 3 + 1, 2 * n // 3)))
    out = []
    for k, beat in enumerate(onsets):
        if k:
            rising = k < len(onsets) / 2
            steps = np.array([-3, -2, -1, 0, 1, 2, 3, 4])
            p = np.array([1, 3, 5, 2, 5, 3, 1, 0.5]) if rising else np.array([1.5, 4, 6, 2, 3, 2, 0.5, 0.2])
            idx += int(rng.choice(steps, p=p / p.sum()))
            if idx < 0 or idx >= n:  # reflect at the edges of the singer's range
                idx = -idx if idx < 0 else 2 * (n - 1) - idx
            idx = min(max(idx, 0), n - 1)
        strong = abs(beat - round(beat)) < 1e-6
        if (strong and rng.random() < 0.6) or k == len(onsets) - 1:
            idx = _nearest_chord_tone(idx, notes, chord_at(beat))
        out.append(idx)
    return out


def plan_track(style: ArtistStyle, track_index: int, seconds: float, seed: int) -> TrackPlan:
    """Compose one track: chords, A/B phrase rhythms repeated with variation, melody, vowels, consonants."""
    rng = _rng(seed, style, track_index, 0)
    art = _rng(seed, style, -1, 0)
    progs = style.progressions
    # neighbouring tracks never share a progression; the offset only shuffles which gets which
    progression = progs[(track_index + int(art.integers(len(progs)))) % len(progs)]
    beat_s = 60.0 / style.tempo_bpm
    total_beats = seconds / beat_s
    notes = scale_notes(style, *style.f0_range)
    pickup = float(rng.choice(style.pickups))
    variant = int(rng.integers(4))

    def chord_at(beat: float) -> tuple[int, int, int]:
        return chord_pcs(style, progression[int(max(beat, 0.0) // 4) % len(progression)])

    motifs = []
    for _ in range(2):
        rest = float(rng.choice(style.rest_beats))
        motifs.append(_fill_rhythm(style, rng, style.phrase_beats - rest))
    end_beat = total_beats - 0.45 / beat_s  # leave the last ~0.5 s to the instrumental's tail
    syllables: list[Syllable] = []
    melodies: list[list[int]] = []
    k = 0
    while True:
        p0 = 4.0 - pickup + k * style.phrase_beats
        if p0 >= end_beat - 1.0:
            break
        durs = motifs[k % 2]
        onsets = list(p0 + np.concatenate([[0.0], np.cumsum(durs)[:-1]]))
        if style.delivery == "sung":
            if k >= 2 and rng.random() < 0.8:  # repeat the motif's melody with a note or two changed
                mel = list(melodies[k - 2])
                for j in rng.choice(len(mel), size=min(2, len(mel)), replace=False):
                    mel[j] = int(np.clip(mel[j] + rng.choice([-2, -1, 1, 2]), 0, len(notes) - 1))
                mel[-1] = _nearest_chord_tone(mel[-1], notes, chord_at(onsets[-1]))
            else:
                mel = _sung_melody(style, rng, onsets, notes, chord_at)
            melodies.append(mel)
            pitches = [float(notes[j]) for j in mel]
            glides = [0.0] * len(durs)
        else:
            melodies.append([])
            # speech intonation: a phrase pitch from the scale's lower half, declining, with accents
            base = notes[int(rng.integers(max(1, len(notes) // 4), max(2, len(notes) // 2 + 1)))]
            pitches, glides = [], []
            for j, on in enumerate(onsets):
                frac = (on - p0) / style.phrase_beats
                acc = 1.5 if abs(on - round(on)) < 1e-6 else 0.0
                pitches.append(base - 2.5 * frac + acc + float(rng.normal(0.0, 0.6)))
                glides.append(float(rng.uniform(0.5, 2.0)))
        lo, hi = hz_to_midi(style.f0_range[0]), hz_to_midi(style.f0_range[1])
        for j, (on, d) in enumerate(zip(onsets, durs)):
            if on >= end_beat - 0.25:
                break
            d = min(d, end_beat - on)
            strong = abs(on - round(on)) < 1e-6
            eighth = abs(on * 2 - round(on * 2)) < 1e-6
            cons = ""
            if rng.random() < style.consonant_prob:
                cons = style.consonants[int(rng.integers(len(style.consonants)))]
            syllables.append(Syllable(
                start=max(0.0, on * beat_s + float(rng.normal(0.0, style.timing_jitter_s))),
                dur=d * beat_s,
                midi=float(np.clip(pitches[j], lo, hi)),
                glide=glides[j],
                vowel=style.vowels[int(rng.integers(len(style.vowels)))],
                consonant=cons,
                accent=1.0 if strong else 0.7 if eighth else 0.5,
                phrase_start=(j == 0),
            ))
        k += 1
    title = style.titles[track_index] if track_index < len(style.titles) else f"Track {track_index + 1}"
    return TrackPlan(
        artist=style.name, track_index=track_index, title=title, seconds=float(seconds),
        tempo_bpm=style.tempo_bpm, key=f"{style.tonic} {style.mode}", progression=progression,
        chords=tuple(chord_name(style, d) for d in progression), syllables=tuple(syllables), variant=variant,
    )


# --------------------------------------------------------------------------- the voice


def _render_vocal(
    style: ArtistStyle, plan: TrackPlan, sr: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Mono dry vocal and its voicing envelope (for level measurement) for ``plan``."""
    n = int(round(plan.seconds * sr))
    nb = -(-n // _BLOCK)
    syl = plan.syllables
    midi_tgt = np.full(n, syl[0].midi if syl else 60.0)
    env = np.zeros(n)
    vib = np.zeros(n)
    form_f = np.zeros((nb, 5))
    form_b = np.zeros((nb, 5))
    table = FORMANTS[style.voice]
    cons_events: list[tuple[int, str, float]] = []
    starts = [int(s.start * sr) for s in syl] + [n]
    for i, s in enumerate(syl):
        i0, i_next = min(starts[i], n), min(max(starts[i + 1], starts[i]), n)
        cdur, _, _, ckind = _CONSONANTS[s.consonant] if s.consonant else (0.0, (0, 0), 0.0, "")
        v0 = i0 + (int(0.7 * cdur * sr) if ckind == "fricative" else int(cdur * sr) if ckind == "stop" else 0)
        v1 = min(i0 + int(style.legato * s.dur * sr), n)
        # pitch: the note (with its speech glide) from onset until the next onset; portamento comes later
        seg = i_next - i0
        if seg > 0:
            vlen = max(v1 - i0, 1)
            ramp = np.minimum(np.arange(seg) / vlen, 1.0)
            midi_tgt[i0:i_next] = s.midi + s.glide * (0.5 - ramp) + float(rng.normal(0.0, 0.06))
        if v1 - v0 > 8:
            m = v1 - v0
            att = min(int((0.012 if style.delivery == "rap" else 0.035) * sr), m // 3)
            if ckind == "nasal":
                att = min(int(cdur * sr), m // 2)
            rel = min(int((0.04 if style.delivery == "rap" else 0.07) * sr), m // 3)
            e = np.linspace(1.0, 0.82 if style.delivery == "sung" else 0.6, m)
            e[:att] *= _raised_cos(att)
            e[m - rel:] *= _raised_cos(rel)[::-1]
            env[v0:v1] += e * (0.75 + 0.25 * s.accent)
            if style.vibrato_cents > 0 and m > int(0.3 * sr):
                ramp_in = np.clip((np.arange(m) / sr - 0.12) / 0.25, 0.0, 1.0)
                vib[v0:v1] = ramp_in
        if ckind in ("fricative", "stop"):
            cons_events.append((i0, s.consonant, 0.75 + 0.25 * s.accent))
        # formants: this vowel (perturbed a little per syllable) from its onset block on
        f, b = (np.asarray(v, float) for v in table[s.vowel])
        f = f * (1.0 + rng.normal(0.0, 0.03, 5))
        f0n = float(midi_to_hz(s.midi))
        if style.delivery == "sung":
            f[0] = max(f[0], 1.1 * f0n)  # singers tune F1 above f0 on high notes
        f[1] = max(f[1], f[0] + 150.0)
        form_f[i0 // _BLOCK:] = f
        form_b[i0 // _BLOCK:] = b
    if not syl:
        form_f[:], form_b[:] = np.asarray(table["a"][0], float), np.asarray(table["a"][1], float)
    form_f = _one_pole(form_f, 0.03, sr / _BLOCK, axis=0)  # ~30 ms vowel transitions
    form_b = _one_pole(form_b, 0.03, sr / _BLOCK, axis=0)

    midi = _one_pole(midi_tgt, style.portamento_s, sr)
    if style.vibrato_cents > 0:
        rate = style.vibrato_hz * (1.0 + 0.05 * _smooth_noise(rng, n, sr, 2.0))
        depth = style.vibrato_cents / 100.0 * (1.0 + 0.15 * _smooth_noise(rng, n, sr, 1.5))
        midi += _one_pole(vib, 0.05, sr) * depth * np.sin(2 * np.pi * np.cumsum(rate) / sr)
    midi += 12.0 * math.log2(1.0 + style.jitter) * _smooth_noise(rng, n, sr, 60.0)
    f0 = midi_to_hz(midi)

    src = glottal_source(f0, sr, style.brightness_hz)
    phase = np.cumsum(f0 / sr) % 1.0
    asp = signal.sosfilt(_band_sos(400.0, 0.0, sr), rng.standard_normal(n)) * (0.35 + 0.65 * (phase < 0.5))
    shimmer = 10.0 ** (style.shimmer_db / 20.0 * _smooth_noise(rng, n, sr, 40.0))
    b = style.breathiness
    x = env * shimmer * ((1.0 - b) * src + b * 1.2 * asp)
    voice = formant_cascade(x, form_f, form_b, sr)
    voice /= np.sqrt(np.mean(voice[env > 0.5] ** 2)) if np.any(env > 0.5) else 1.0

    # unvoiced consonants and breaths: short filtered-noise bursts, levels relative to the vowel RMS
    for i0, c, acc in cons_events:
        cdur, (lo, hi), lvl, kind = _CONSONANTS[c]
        m = min(int(cdur * sr), n - i0)
        if m <= 8:
            continue
        burst = signal.sosfilt(_band_sos(lo, hi, sr), rng.standard_normal(m + 256))[256:]
        if kind == "stop":
            shape = np.exp(-np.arange(m) / (0.3 * m))
            shape[: m // 10 + 1] *= _raised_cos(m // 10 + 1)
        else:
            shape = np.sin(np.pi * np.arange(m) / m) ** 0.7
        voice[i0:i0 + m] += 1.6 * lvl * acc * shape * burst / (burst.std() + 1e-12)
    prev_end = 0
    for i, s in enumerate(syl):
        if s.phrase_start:
            gap = starts[i] - prev_end
            m = min(int(0.35 * sr), int(0.8 * gap))
            b0 = starts[i] - m - int(0.03 * sr)
            if m > int(0.08 * sr) and b0 >= 0:
                br = signal.sosfilt(_band_sos(700.0, 2600.0, sr), rng.standard_normal(m + 256))[256:]
                voice[b0:b0 + m] += 0.10 * np.sin(np.pi * np.arange(m) / m) ** 2 * br / (br.std() + 1e-12)
        prev_end = starts[i] + int(style.legato * s.dur * sr)
    return voice, env


# --------------------------------------------------------------------------- the band


class _Bus:
    """A stereo accumulation buffer with constant-power panning."""

    def __init__(self, n: int, sr: int) -> None:
        self.x = np.zeros((2, n))
        self.sr = sr

    def add(self, sig: np.ndarray, t: float, gain: float = 1.0, pan: float = 0.0) -> None:
        """Mix mono ``sig`` (or stereo ``[2, m]``) in at ``t`` seconds."""
        i0 = int(round(t * self.sr))
        n = self.x.shape[1]
        if i0 >= n:
            return
        sig = sig if sig.ndim == 2 else np.stack([sig * math.cos((pan + 1) * math.pi / 4) * math.sqrt(2),
                                                   sig * math.sin((pan + 1) * math.pi / 4) * math.sqrt(2)])
        m = min(sig.shape[1], n - i0)
        self.x[:, i0:i0 + m] += gain * sig[:, :m]


def _decay(n: int, sr: int, tau: float) -> np.ndarray:
    """Exponential decay envelope with time constant ``tau`` seconds."""
    return np.exp(-np.arange(n) / (tau * sr))


def _kick(sr: int, rng: np.random.Generator, f_hi: float = 150.0, f_lo: float = 48.0, tau: float = 0.18) -> np.ndarray:
    """Sine kick with a falling pitch sweep and a click."""
    n = int(0.6 * sr)
    f = f_lo + (f_hi - f_lo) * _decay(n, sr, 0.035)
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * _decay(n, sr, tau)
    click = signal.sosfilt(_band_sos(1500.0, 8000.0, sr), rng.standard_normal(n)) * _decay(n, sr, 0.004)
    return body + 0.25 * click


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    """Two-mode tone plus band-passed noise."""
    n = int(0.4 * sr)
    t = np.arange(n) / sr
    tone = (np.sin(2 * np.pi * 185 * t) + 0.5 * np.sin(2 * np.pi * 330 * t)) * _decay(n, sr, 0.06)
    noise = signal.sosfilt(_band_sos(1200.0, 9000.0, sr), rng.standard_normal(n)) * _decay(n, sr, 0.11)
    return 0.5 * tone + 1.2 * noise


def _clap(sr: int, rng: np.random.Generator) -> np.ndarray:
    """Three quick noise bursts and a short tail, band-passed."""
    n = int(0.35 * sr)
    env = _decay(n, sr, 0.09)
    for d in (0.0, 0.011, 0.022):
        i = int(d * sr)
        env[i:] += 0.8 * _decay(n - i, sr, 0.006)
    return signal.sosfilt(_band_sos(900.0, 4000.0, sr), rng.standard_normal(n)) * env * 1.4


def _hat(sr: int, rng: np.random.Generator, tau: float) -> np.ndarray:
    """High-passed noise hi-hat; a long ``tau`` makes it open."""
    n = int(min(6 * tau, 0.6) * sr)
    return signal.sosfilt(_band_sos(7000.0, 0.0, sr), rng.standard_normal(n)) * _decay(n, sr, tau)


def _rim(sr: int, rng: np.random.Generator) -> np.ndarray:
    """Short wooden click."""
    n = int(0.06 * sr)
    t = np.arange(n) / sr
    noise = signal.sosfilt(_band_sos(2000.0, 6000.0, sr), rng.standard_normal(n))
    return (np.sin(2 * np.pi * 1700 * t) + 0.5 * noise) * _decay(n, sr, 0.008)


@lru_cache(maxsize=32)  # ~0.5 MB per note; one track uses about a dozen pitches
def _pluck(f: float, sr: int, seconds: float = 1.4) -> np.ndarray:
    """Piano-like pluck: slightly inharmonic partials, higher ones decaying faster."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = np.zeros(n)
    for k in range(1, 11):
        fk = k * f * math.sqrt(1 + 0.0004 * k * k)
        if fk > 0.45 * sr:
            break
        out += (k ** -1.3) * np.sin(2 * np.pi * fk * t + 0.3 * k) * np.exp(-t * (1.2 + 0.9 * k))
    out[: int(0.003 * sr)] *= _raised_cos(int(0.003 * sr))
    out.flags.writeable = False  # cached: the same note recurs in every bar
    return out


@lru_cache(maxsize=16)
def _bell(f: float, sr: int, seconds: float = 1.2) -> np.ndarray:
    """FM bell: a 3.5:1 modulator whose index decays."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = np.sin(2 * np.pi * f * t + 2.0 * np.exp(-t / 0.25) * np.sin(2 * np.pi * 3.5 * f * t)) * np.exp(-t / 0.5)
    out.flags.writeable = False
    return out


def _pad(midis: Sequence[int], seconds: float, sr: int, cutoff: float, detune_cents: float = 8.0,
         attack: float = 0.35, release: float = 0.5) -> np.ndarray:
    """Stereo chord of detuned band-limited saws through a low-pass, with slow attack/release."""
    n = int((seconds + release) * sr)
    out = np.zeros((2, n))
    for m in midis:
        f = float(midi_to_hz(float(m)))
        for ch, sgn in ((0, 1.0), (1, -1.0)):
            out[ch] += _saw(f * 2 ** (sgn * detune_cents / 1200), n, sr, 0.37 * ch + 0.1 * m)
            out[ch] += 0.6 * _saw(f * 2 ** (-sgn * detune_cents / 2400), n, sr, 0.71 * ch)
    out = signal.sosfilt(_band_sos(0.0, cutoff, sr), out, axis=1)
    env = np.ones(n)
    a, r = int(attack * sr), int(release * sr)
    env[:a] = _raised_cos(a)
    env[n - r:] = _raised_cos(r)[::-1]
    return out * env / max(len(midis), 1)


def _saw_note(f: float, seconds: float, sr: int, cutoff: float, tau: float) -> np.ndarray:
    """Plucky saw (bass or stab): low-passed, exponentially decaying, de-clicked."""
    n = int(seconds * sr)
    x = _saw(f, n, sr) + 0.7 * np.sin(2 * np.pi * (f / 2 if f > 80 else f) * np.arange(n) / sr)
    x = signal.sosfilt(_band_sos(0.0, cutoff, sr), x) * _decay(n, sr, tau)
    r = min(int(0.01 * sr), n // 2)
    x[:r] *= _raised_cos(r)
    x[n - r:] *= _raised_cos(r)[::-1]
    return x


def _sub(f: float, seconds: float, sr: int, tau: float, drive: float = 0.0, sweep: float = 0.0) -> np.ndarray:
    """Sine bass / 808: optional downward pitch sweep at onset and tanh drive for audible harmonics."""
    n = int(seconds * sr)
    fr = f * (1.0 + sweep * _decay(n, sr, 0.02))
    x = np.sin(2 * np.pi * np.cumsum(fr) / sr) * _decay(n, sr, tau)
    if drive:
        x = np.tanh(drive * x) / math.tanh(drive)
    r = min(int(0.008 * sr), n // 2)
    x[:int(0.003 * sr)] *= _raised_cos(int(0.003 * sr))
    x[n - r:] *= _raised_cos(r)[::-1]
    return x


def _reverb_ir(sr: int, rng: np.random.Generator, rt60: float) -> np.ndarray:
    """Decorrelated stereo impulse response: exponentially decaying low-passed noise after a 20 ms gap."""
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal((2, n)) * np.exp(-6.9 * t / rt60)
    ir = signal.sosfilt(_band_sos(0.0, 5000.0, sr), ir, axis=1)
    pre = int(0.02 * sr)
    ir = np.concatenate([np.zeros((2, pre)), ir], axis=1)
    return ir / np.sqrt(np.sum(ir ** 2, axis=1, keepdims=True))


def _reverb(x: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Convolve mono ``[N]`` or stereo ``[2, N]`` with a stereo IR, truncated to N samples."""
    x2 = np.broadcast_to(x, (2, x.shape[-1]))
    return signal.fftconvolve(x2, ir, mode="full", axes=1)[:, : x.shape[-1]]


def _render_band(style: ArtistStyle, plan: TrackPlan, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Stereo instrumental: drums, bass and chords in the plan's key/tempo; bar 0 is an intro."""
    n = int(round(plan.seconds * sr))
    beat = 60.0 / style.tempo_bpm
    step = beat / 4
    n_bars = int(math.ceil(plan.seconds / (4 * beat)))
    dry, send, pump_bus = _Bus(n, sr), _Bus(n, sr), _Bus(n, sr)
    v = plan.variant
    kick, snare, clap, rim = _kick(sr, rng), _snare(sr, rng), _clap(sr, rng), _rim(sr, rng)
    hat_c, hat_o = _hat(sr, rng, 0.018), _hat(sr, rng, 0.12)
    vel = lambda: float(rng.uniform(0.85, 1.0))  # noqa: E731 - humanised velocity
    kicks: list[float] = []

    for bar in range(n_bars):
        t_bar = bar * 4 * beat
        deg = plan.progression[bar % len(plan.progression)]
        pcs = chord_pcs(style, deg)
        root = pcs[0]
        intro = bar == 0
        if style.instrumental == "ballad":
            send.add(_pad(_voice(pcs, 55), 4 * beat, sr, 1400.0), t_bar, 0.22)
            arps = ((0, 1, 2, 1, 0, 1, 2, 1), (0, 2, 1, 2, 0, 2, 1, 2),
                    (0, 1, 2, 3, 2, 1, 0, 1), (2, 1, 0, 1, 2, 1, 0, 1))[v]
            tones = _voice(pcs, 57) + [_voice(pcs, 57)[0] + 12]
            for j, a in enumerate(arps):
                send.add(_pluck(float(midi_to_hz(float(tones[a]))), sr), t_bar + j * beat / 2,
                         0.22 * vel() * (1.0 if j % 2 == 0 else 0.5), pan=-0.3 + 0.2 * (a % 3))
            if intro:
                continue
            bass_f = float(midi_to_hz(float(36 + (root - 36) % 12)))
            for j in (0, 2):
                dry.add(_sub(bass_f, 2 * beat, sr, 1.2), t_bar + j * beat, 0.45)
                dry.add(_sub(2 * bass_f, 2 * beat, sr, 0.4), t_bar + j * beat, 0.08)
            ksteps = (0, 8) + (((6,), (10,), (), (6, 14))[v] if bar % 2 else ())
            for s in ksteps:
                dry.add(_kick(sr, rng, 110.0, 45.0, 0.2), t_bar + s * step, 0.55 * vel())
                kicks.append(t_bar + s * step)
            for s in (4, 12):
                send.add(rim, t_bar + s * step, 0.25 * vel(), pan=0.1)
                dry.add(snare, t_bar + s * step, 0.12 * vel())
            for s in range(0, 16, 2):
                dry.add(hat_c, t_bar + s * step, 0.05 * vel(), pan=0.35)
        elif style.instrumental == "trap":
            send.add(_pad(_voice(pcs, 53), 4 * beat, sr, 700.0, 12.0, 0.2, 0.3), t_bar, 0.16)
            motif = ((0, 4, 6, 10), (0, 4, 8, 12, 14), (0, 6, 8, 12), (2, 4, 8, 12))[v]
            bell_notes = _voice(pcs, 72)
            for j, s in enumerate(motif):
                send.add(_bell(float(midi_to_hz(float(bell_notes[(j + bar) % 3]))), sr),
                         t_bar + s * step, 0.10 * vel(), pan=0.4 if j % 2 else -0.4)
            if intro:
                continue
            pat = ((0, 10, 12), (0, 4, 10, 11), (0, 6, 8, 12), (0, 8, 10))[(v + bar) % 4]
            f808 = float(midi_to_hz(float(29 + (root - 29) % 12)))
            for j, s in enumerate(pat):
                nxt = pat[j + 1] if j + 1 < len(pat) else 16
                dur = min((nxt - s) * step, 1.2)
                dry.add(_sub(f808 * (2.0 if s == 11 else 1.0), dur, sr, 0.9, drive=2.5, sweep=1.0),
                        t_bar + s * step, 0.55 * vel())
                dry.add(kick, t_bar + s * step, 0.35 * vel())
                kicks.append(t_bar + s * step)
            dry.add(clap, t_bar + 8 * step, 0.5 * vel())
            dry.add(snare, t_bar + 8 * step, 0.25 * vel())
            send.add(clap, t_bar + 8 * step, 0.15)
            hits = [s * step for s in range(0, 16, 2)]
            if bar % 2 == 1:  # a 16th/32nd hi-hat roll over beat 4 leads into the next bar
                roll = np.arange(12 * step if v % 2 else 14 * step, 16 * step - 1e-9, step / 2)
                hits = [h for h in hits if h < roll[0] - 1e-9] + list(roll)
            for h in hits:
                on_beat = abs(h / beat - round(h / beat)) < 1e-6  # accents keep the 140 BPM pulse clear
                dry.add(hat_c, t_bar + h, 0.16 * vel() * (1.0 if on_beat else 0.55), pan=0.25)
        else:  # dance
            chord = _voice(pcs, 57)
            stab_steps = ((2, 6, 10, 14), (0, 3, 6, 10, 12), (2, 5, 8, 11, 14), (3, 6, 10, 14))[v]
            for s in stab_steps:
                pump_bus.add(np.stack([_saw_note(float(midi_to_hz(float(m))), 0.22, sr, 2600.0, 0.12)
                                       for m in chord]).sum(axis=0) / 3, t_bar + s * step, 0.30, pan=0.0)
            pump_bus.add(_pad(_voice(pcs, 62), 4 * beat, sr, 2200.0, 10.0, 0.05, 0.2), t_bar, 0.12)
            for s in range(0, 16):
                dry.add(hat_c, t_bar + s * step, 0.05 * vel() * (1.0 if s % 2 else 0.6), pan=0.3)
            if intro:
                continue
            bass_f = float(midi_to_hz(float(36 + (root - 36) % 12)))
            for s in (2, 6, 10, 14) if v % 2 == 0 else (2, 6, 7, 10, 14, 15):
                pump_bus.add(_saw_note(bass_f * (2.0 if s in (7, 15) else 1.0), 0.9 * step * 2, sr, 650.0, 0.15),
                             t_bar + s * step, 0.45 * vel())
            for s in (0, 4, 8, 12):
                dry.add(kick, t_bar + s * step, 0.75 * vel())
                kicks.append(t_bar + s * step)
            for s in (4, 12):
                dry.add(clap, t_bar + s * step, 0.40 * vel())
                send.add(clap, t_bar + s * step, 0.12)
            for s in (2, 6, 10, 14):
                dry.add(hat_o, t_bar + s * step, 0.12 * vel(), pan=-0.2)
    if kicks:  # side-chain pumping: the chords and bass duck under every kick
        duck = np.ones(n)
        for t in kicks:
            i = int(t * sr)
            m = min(int(beat * sr), n - i)
            if m > 0:
                duck[i:i + m] = np.minimum(duck[i:i + m], 1.0 - 0.6 * _decay(m, sr, 0.09))
        pump_bus.x *= duck
    dry.x += pump_bus.x
    send.x += 0.25 * pump_bus.x
    ir = _reverb_ir(sr, rng, style.reverb_s)
    return dry.x + send.x + 0.35 * _reverb(send.x.mean(axis=0), ir)


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
    manifest = root / "corpus.json"
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
    return list(read_json(Path(root) / "corpus.json").get("tracks", []))
