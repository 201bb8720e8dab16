"""The voice: source-filter synthesis of sung or rapped syllables.

A band-limited (polyBLEP) glottal sawtooth following a pitch contour (portamento, vibrato or
speech-like intonation, jitter and shimmer) plus pulsed aspiration noise, shaped by a cascade of
five time-varying formant resonators (a/e/i/o/u tables per voice type), with filtered-noise
consonants at syllable onsets and breaths between phrases.

Notebook: notebooks/01_curate.ipynb (the smoke profile's input)
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from ..music import midi_to_hz
from .dsp import _band_sos, _one_pole, _raised_cos, _saw, _smooth_noise
from .plan import ArtistStyle, TrackPlan

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
    """A steady vowel (no vibrato) for illustrating source-filter synthesis; mono float32 ``[seconds * sr]``."""
    n = int(seconds * sr)
    src = glottal_source(np.full(n, float(f0)), sr, brightness_hz)
    f, b = FORMANTS[voice][vowel]
    nb = -(-n // _BLOCK)
    y = formant_cascade(src, np.tile(np.asarray(f, float), (nb, 1)), np.tile(np.asarray(b, float), (nb, 1)), sr)
    env = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.02 * sr))
    y *= env
    return (0.5 * y / (np.abs(y).max() + 1e-12)).astype(np.float32)


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
    f0 = np.asarray(midi_to_hz(midi))

    src = glottal_source(f0, sr, style.brightness_hz)
    phase = np.cumsum(f0 / sr) % 1.0
    asp = signal.sosfilt(_band_sos(400.0, 0.0, sr), rng.standard_normal(n)) * (0.35 + 0.65 * (phase < 0.5))
    shimmer = 10.0 ** (style.shimmer_db / 20.0 * _smooth_noise(rng, n, sr, 40.0))
    breath = style.breathiness
    x = env * shimmer * ((1.0 - breath) * src + breath * 1.2 * asp)
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
