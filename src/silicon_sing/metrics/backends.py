"""The KL and FAD backends by name: the model-free smoke-profile stand-ins and the registry.

Notebook: notebooks/04_evaluate.ipynb

Interfaces in :mod:`.base` (``window_probs -> [windows, classes]``, ``embed -> [frames, dim]``),
the shared audio front end in :mod:`.spectral`, the paper's models in :mod:`.passt` and
:mod:`.vggish`, their weights in :mod:`.weights`; this module is the one address for all of them.

Paper profile (real models, weights from their hubs on the user's machine):

- ``"passt"`` — :class:`PasstBackend`: PaSST-S (``passt_s_swa_p16_128_ap476``, AudioSet, 527 classes)
  from hear21passt, 32 kHz mono, 10 s windows, softmax over logits — audiocraft's KL classifier.
- ``"vggish"`` — :class:`VggishBackend`: VGGish from torchvggish, 16 kHz mono, one raw 128-d
  embedding per 0.96 s with PCA/quantisation off and the final ReLU removed — fadtk's FAD setup.

Smoke profile (no model, no download; stand-ins with the same interfaces, *not* the paper's metrics):

- ``"spectral-classes"`` — :class:`SpectralClassesBackend`: a fixed "classifier" whose classes are
  64 mel bands; a window's distribution is its band energies compressed by a power law.
- ``"mel-stats"`` — :class:`MelStatsEmbedding`: per-frame log-mel + deltas through a fixed seeded
  random projection to 128 dims.

Weights: see :mod:`.weights` (never downloaded unless ``allow_download=True``; tensors-only loading).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audio import mel_filterbank
from .base import EmbeddingBackend, ProbabilityBackend, package_version
from .passt import PASST_MIN_SECONDS, PASST_WINDOW_SECONDS, PasstBackend, quiet
from .spectral import as_mono, pad_to, power_spectrogram, prepare_audio, split_windows
from .vggish import VGGISH_MIN_SECONDS, VggishBackend
from .weights import (
    PASST_WEIGHTS,
    VGGISH_WEIGHTS,
    MissingWeightsError,
    UntrustedCheckpointError,
    WeightsHashError,
    WeightsSpec,
    hub_checkpoint_dir,
    resolve_weights,
)

# names other modules and scripts import from here (rehearsal, preflight): the backends' one address
__all__ = [
    "ProbabilityBackend", "EmbeddingBackend", "SpectralClassesBackend", "MelStatsEmbedding", "PasstBackend",
    "VggishBackend", "PROBABILITY_BACKENDS", "EMBEDDING_BACKENDS", "get_probability_backend",
    "get_embedding_backend", "PASST_WEIGHTS", "VGGISH_WEIGHTS", "WeightsSpec", "MissingWeightsError",
    "WeightsHashError", "UntrustedCheckpointError", "hub_checkpoint_dir", "resolve_weights", "quiet",
    "PASST_WINDOW_SECONDS", "PASST_MIN_SECONDS", "VGGISH_MIN_SECONDS",
    "as_mono", "prepare_audio", "pad_to", "split_windows", "mel_filterbank", "power_spectrogram",
]


# --------------------------------------------------------------------------------------------
# smoke-profile, model-free backends


class SpectralClassesBackend(ProbabilityBackend):
    """Model-free stand-in for PaSST: a fixed soft "classifier" over mel bands (not AudioSet classes).

    Each of ``n_bands`` mel bands (30 Hz – 8 kHz at 16 kHz) is a class. For a window, the mean
    power E_k in band k is compressed by a power law and normalised:
    p_k = softmax(log(E_k + floor) / temperature) = E_k^(1/T) / Σ_j E_j^(1/T), with T = 3 (cube-root
    compression, roughly how loudness grows with power). The distribution therefore describes the
    spectral envelope, is invariant to overall gain, and gives KL = 0 for spectrally identical
    audio. It knows nothing about instruments or voices. Windows follow PaSST's (10 s, > 0.15 s).
    """

    name = "spectral-classes"

    def __init__(self, n_bands: int = 64, temperature: float = 3.0, sample_rate: int = 16000,
                 n_fft: int = 1024, hop: int = 256, fmin: float = 30.0,
                 window_seconds: float = PASST_WINDOW_SECONDS, min_seconds: float = PASST_MIN_SECONDS) -> None:
        self.n_bands, self.temperature, self.sample_rate = n_bands, temperature, sample_rate
        self.n_fft, self.hop, self.fmin = n_fft, hop, fmin
        self.window_seconds, self.min_seconds = window_seconds, min_seconds
        self.num_classes = n_bands
        self._fb = mel_filterbank(sample_rate, n_fft, n_bands, fmin, sample_rate / 2)

    @property
    def fingerprint(self) -> str:
        """Settings that change the output."""
        return (f"{self.name}:v1:bands={self.n_bands}:T={self.temperature}:sr={self.sample_rate}:"
                f"nfft={self.n_fft}:hop={self.hop}:fmin={self.fmin}:win={self.window_seconds}:"
                f"min={self.min_seconds}:librosa={package_version('librosa')}")

    def _window_dist(self, w: np.ndarray) -> np.ndarray:
        """Distribution over bands of one window."""
        band_power = (power_spectrogram(w, self.n_fft, self.hop) @ self._fb.T).mean(axis=0)
        logits = np.log(band_power.astype(np.float64) + 1e-10) / self.temperature
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def window_probs(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Band distributions ``[windows, n_bands]``."""
        x = prepare_audio(audio, sr, self.sample_rate)
        wins = split_windows(x, int(self.window_seconds * self.sample_rate), int(self.min_seconds * self.sample_rate))
        return np.stack([self._window_dist(w) for w in wins]).astype(np.float32)


class MelStatsEmbedding(EmbeddingBackend):
    """Model-free stand-in for VGGish: log-mel + delta frames through a fixed random projection.

    Per 32 ms frame (16 kHz, n_fft 1024, hop 512): ``n_mels`` log-mel energies and their time
    derivative (``np.gradient``), a 2·n_mels vector, multiplied by a fixed Gaussian matrix drawn
    from ``seed`` (scaled by 1/√(2·n_mels)) to give ``dim`` = 128 values, like VGGish's width. It
    measures differences in timbre/spectral dynamics only; it has learned nothing. Clips shorter
    than 0.25 s are zero-padded.
    """

    name = "mel-stats"

    def __init__(self, n_mels: int = 96, dim: int = 128, sample_rate: int = 16000, n_fft: int = 1024,
                 hop: int = 512, fmin: float = 30.0, seed: int = 0, min_seconds: float = 0.25) -> None:
        self.n_mels, self.dim, self.sample_rate = n_mels, dim, sample_rate
        self.n_fft, self.hop, self.fmin, self.seed, self.min_seconds = n_fft, hop, fmin, seed, min_seconds
        self._fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, sample_rate / 2)
        rng = np.random.default_rng(seed)
        self._proj = (rng.standard_normal((2 * n_mels, dim)) / np.sqrt(2 * n_mels)).astype(np.float32)

    @property
    def fingerprint(self) -> str:
        """Settings that change the output."""
        return (f"{self.name}:v1:mels={self.n_mels}:dim={self.dim}:sr={self.sample_rate}:nfft={self.n_fft}:"
                f"hop={self.hop}:fmin={self.fmin}:seed={self.seed}:min={self.min_seconds}:"
                f"librosa={package_version('librosa')}")

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Projected log-mel + delta frames ``[frames, dim]``."""
        x = pad_to(prepare_audio(audio, sr, self.sample_rate), int(self.min_seconds * self.sample_rate))
        logmel = np.log(power_spectrogram(x, self.n_fft, self.hop) @ self._fb.T + 1e-6)
        delta = np.gradient(logmel, axis=0) if logmel.shape[0] > 1 else np.zeros_like(logmel)
        return (np.concatenate([logmel, delta], axis=1) @ self._proj).astype(np.float32)


# --------------------------------------------------------------------------------------------
# registry, keyed by the names used in params (evaluate.kl_backend / evaluate.fad_backend)

PROBABILITY_BACKENDS: dict[str, type[ProbabilityBackend]] = {
    "spectral-classes": SpectralClassesBackend,
    "passt": PasstBackend,
}
EMBEDDING_BACKENDS: dict[str, type[EmbeddingBackend]] = {
    "mel-stats": MelStatsEmbedding,
    "vggish": VggishBackend,
}


def get_probability_backend(name: str, **kwargs: Any) -> ProbabilityBackend:
    """Build the label-distribution backend registered as ``name`` (e.g. "passt", "spectral-classes")."""
    if name not in PROBABILITY_BACKENDS:
        raise ValueError(f"unknown KL backend {name!r}; known: {sorted(PROBABILITY_BACKENDS)}")
    return PROBABILITY_BACKENDS[name](**kwargs)


def get_embedding_backend(name: str, **kwargs: Any) -> EmbeddingBackend:
    """Build the embedding backend registered as ``name`` (e.g. "vggish", "mel-stats")."""
    if name not in EMBEDDING_BACKENDS:
        raise ValueError(f"unknown FAD backend {name!r}; known: {sorted(EMBEDDING_BACKENDS)}")
    return EMBEDDING_BACKENDS[name](**kwargs)
