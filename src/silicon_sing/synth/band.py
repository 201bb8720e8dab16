"""The band: drums, bass and chords rendered note by note in the artist's key and tempo.

Notebook: notebooks/01_curate.ipynb (the smoke profile's input)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import signal

from ..music import midi_to_hz
from .dsp import _band_sos, _raised_cos, _reverb, _reverb_ir, _saw
from .plan import ArtistStyle, TrackPlan, _voice, chord_pcs

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
