"""Small DSP pieces the voice and the band share: smooth noise, one-pole smoothing, band-pass
filters, raised-cosine ramps, a band-limited (polyBLEP) sawtooth and a noise-tail reverb.

Notebook: notebooks/01_curate.ipynb (the smoke profile's input)
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import signal


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
