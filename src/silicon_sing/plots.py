"""Figures shared by the chapters: spectrogram grids and count plots (matplotlib)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np


@functools.lru_cache(maxsize=8)
def _mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Slaney mel filterbank (librosa's filters are plain numpy, unlike its JIT-compiled STFT)."""
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels).astype(np.float32)


def log_mel(x: np.ndarray, sr: int, n_mels: int = 64, hop: int = 320, n_fft: int = 1024) -> np.ndarray:
    """Log-mel power spectrogram in dB re full scale (floored at −80 dB) of mono audio, for display."""
    x = np.pad(x.astype(np.float32), (n_fft // 2, n_fft // 2))
    n_frames = 1 + max(0, (len(x) - n_fft) // hop)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n_frames]
    window = np.hanning(n_fft).astype(np.float32)
    # scaled so that a full-scale sine peaks near 0 dB
    power = (np.abs(np.fft.rfft(frames * window, axis=1)) / (window.sum() / 2)) ** 2
    mel = _mel_filters(sr, n_fft, n_mels) @ power.T
    return np.maximum(10 * np.log10(mel + 1e-10), -80.0)


def spectrogram_grid(clips: dict[tuple[str, str], tuple[np.ndarray, int]], rows: Sequence[str],
                     cols: Sequence[str], title: str | None = None, cell_size: tuple[float, float] = (3.2, 1.8)):
    """A rows × cols grid of log-mel spectrograms sharing one colour scale; returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(cols), figsize=(cell_size[0] * len(cols), cell_size[1] * len(rows)),
                             squeeze=False, sharex=True, sharey=True, constrained_layout=True)
    image = None
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axes[i][j]
            clip = clips.get((r, c))
            if clip is not None:
                x, sr = clip
                spec = log_mel(x, sr)
                image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                                  extent=(0, len(x) / sr, 0, spec.shape[0]))
            else:
                ax.text(0.5, 0.5, "—", ha="center", va="center", transform=ax.transAxes)
            if i == 0:
                ax.set_title(c, fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{r}\nmel band", fontsize=9)
            if i == len(rows) - 1:
                ax.set_xlabel("time (s)", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="dB")
    if title:
        fig.suptitle(title)
    return fig


def grouped_counts(counts, title: str, ylabel: str):
    """Bar chart of a DataFrame indexed by (artist, category) with one column per split."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.2), constrained_layout=True)
    counts.plot(kind="bar", stacked=True, ax=ax, width=0.75, colormap="viridis")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    ax.set_xticklabels([" / ".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in counts.index],
                       rotation=30, ha="right")
    ax.legend(title="split", frameon=False)
    return fig
