"""Artists and composition: the three fictional artists' styles and :func:`plan_track`.

A track is first *composed* — phrases, syllables with their notes, a chord per bar — from
``numpy.random.default_rng`` seeded by ``(seed, artist, track)``, then rendered by
:mod:`silicon_sing.synth.voice` and :mod:`silicon_sing.synth.band`.

Notebook: notebooks/01_curate.ipynb (the smoke profile's input)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..music import NOTE_NAMES, PITCH_CLASSES, SCALES, hz_to_midi, midi_to_hz


@dataclass(frozen=True)
class ArtistStyle:
    """Everything that makes one fictional artist recognisable: voice, delivery, band, harmony."""

    name: str  # also the artist folder name
    description: str
    voice: str  # key of synth.voice.FORMANTS
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
            for on in onsets:
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
