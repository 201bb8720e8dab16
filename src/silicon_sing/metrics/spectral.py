"""The backends' shared audio front end: mono, resampling, windows, power spectrogram, mel filterbank.

Notebook: notebooks/04_evaluate.ipynb

Arrays are numpy; ``audio`` is ``[N]`` or channels-first ``[C, N]``. :func:`silicon_sing.audio.mel_filterbank` is
the one mel filterbank of the package (the metric backends and :func:`silicon_sing.audio.log_mel` use it).
"""

from __future__ import annotations

import numpy as np

from ..audio import resample


def as_mono(audio: np.ndarray) -> np.ndarray:
    """``[N]`` or channels-first ``[C, N]`` audio → float32 ``[N]`` (channel mean, as audiocraft/fadtk)."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        return a
    if a.ndim != 2:
        raise ValueError(f"expected audio of shape [N] or [C, N], got {a.shape}")
    if a.shape[0] > 8 and a.shape[1] <= 8:
        # soundfile's default layout is [N, C]; averaging the wrong axis would silently destroy the clip
        raise ValueError(f"audio of shape {a.shape} looks like [N, C]; pass channels first, [C, N]")
    return a.mean(axis=0)


def prepare_audio(audio: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Mono float32 at ``target_sr`` (soxr HQ resampling)."""
    return resample(as_mono(audio), int(sr), int(target_sr))


def pad_to(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad ``x`` at the end to at least ``n`` samples."""
    return x if x.shape[-1] >= n else np.pad(x, (0, n - x.shape[-1]))


def split_windows(x: np.ndarray, window: int, min_len: int) -> list[np.ndarray]:
    """Consecutive non-overlapping windows, dropping those of ``min_len`` samples or fewer (audiocraft).

    audiocraft gives a clip with no usable window no distribution at all; we zero-pad such a clip
    to ``min_len + 1`` samples instead, so every pair gets a KL.
    """
    wins = [x[i:i + window] for i in range(0, x.shape[-1], window)]
    wins = [w for w in wins if w.shape[-1] > min_len]
    return wins or [pad_to(x, min_len + 1)]


def power_spectrogram(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred, Hann-windowed power spectrogram ``[frames, n_fft // 2 + 1]`` in numpy."""
    x = pad_to(np.asarray(x, dtype=np.float32), n_fft)  # at least one full frame; reflect padding needs it
    xp = np.pad(x, (n_fft // 2, n_fft // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop]
    spec = np.fft.rfft(frames * np.hanning(n_fft + 1)[:-1].astype(np.float32), axis=-1)  # periodic Hann
    return (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
