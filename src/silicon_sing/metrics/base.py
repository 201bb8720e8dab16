"""The two backend interfaces behind KL and FAD.

Notebook: notebooks/04_evaluate.ipynb

- :class:`ProbabilityBackend` — ``window_probs(audio, sr) -> [windows, classes]`` (what KL pairs up)
  and ``probs(audio, sr) -> [classes]`` (their mean, a clip-level distribution).
- :class:`EmbeddingBackend` — ``embed(audio, sr) -> [frames, dim]``; FAD pools the frames of all
  clips of a set, as fadtk and frechet-audio-distance do with VGGish.

``audio`` is float ``[N]`` (mono) or ``[C, N]`` (channels first, as :func:`silicon_sing.audio.load_audio`
returns); every backend averages channels to mono and resamples to its own rate
(:mod:`.spectral`). Implementations: :mod:`.backends` (model-free, smoke profile), :mod:`.passt`
and :mod:`.vggish` (paper profile).
"""

from __future__ import annotations

import importlib.metadata
from abc import ABC, abstractmethod

import numpy as np


class ProbabilityBackend(ABC):
    """A classifier giving a label distribution per analysis window of a clip."""

    name: str
    sample_rate: int
    num_classes: int

    @abstractmethod
    def window_probs(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Label distributions ``[windows, num_classes]`` of consecutive windows of the clip."""

    def probs(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """The clip's label distribution ``[num_classes]``: the mean over its windows."""
        return self.window_probs(audio, sr).mean(axis=0)

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Everything that changes the output (model, weights, settings); keys the cache."""


class EmbeddingBackend(ABC):
    """An embedding model giving one vector per frame of a clip."""

    name: str
    sample_rate: int
    dim: int

    @abstractmethod
    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Per-frame embeddings ``[frames, dim]`` (float32)."""

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Everything that changes the output (model, weights, settings); keys the cache."""


def package_version(dist: str) -> str:
    """Installed version of a distribution, or 'absent'."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"
