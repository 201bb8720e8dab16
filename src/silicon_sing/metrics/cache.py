"""Per-file cache of embeddings and label distributions.

``<cache_dir>/<backend name>/<key>.npy`` with ``key = sha1(sha1(file bytes) + backend fingerprint)``
and ``cache_dir`` normally ``<run_dir>/metrics/cache`` (:func:`default_cache_dir`). A file whose
bytes or whose backend settings/weights change gets a new key, so a stale entry is never read;
entries are written atomically (:func:`silicon_sing.fsutil.kept_array`), so an interrupted run leaves
no half-written array, and an unreadable one is recomputed with a warning.

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..audio import load_audio
from ..fsutil import file_sha1, kept_array, text_sha1
from ..params import RunPaths
from .backends import EmbeddingBackend, ProbabilityBackend


def default_cache_dir(run_dir: str | os.PathLike[str]) -> Path:
    """``<run_dir>/metrics/cache`` (:attr:`silicon_sing.params.RunPaths.metrics_cache`)."""
    return RunPaths(Path(run_dir)).metrics_cache


def cache_key(path: str | os.PathLike[str], fingerprint: str) -> str:
    """SHA-1 of the file's content hash and the backend fingerprint."""
    return text_sha1(file_sha1(path) + "\n" + fingerprint)


def cache_path(cache_dir: str | os.PathLike[str], backend_name: str, key: str) -> Path:
    """Where the array for ``key`` lives."""
    return Path(cache_dir) / backend_name / f"{key}.npy"


def cached_array(path: str | os.PathLike[str], backend: ProbabilityBackend | EmbeddingBackend,
                 cache_dir: str | os.PathLike[str] | None, compute: Callable[[np.ndarray, int], np.ndarray],
                 kind: str) -> np.ndarray:
    """Return ``compute(audio, sr)`` for the audio file ``path``, from the cache when present.

    ``kind`` separates outputs of one backend that differ in meaning (e.g. "embed", "window_probs").
    ``cache_dir=None`` computes without caching.
    """
    if cache_dir is None:
        audio, sr = load_audio(path)
        return compute(audio, sr)
    target = cache_path(cache_dir, backend.name, cache_key(path, f"{kind}|{backend.fingerprint}"))
    return kept_array(target, lambda: compute(*load_audio(path)), path)


def _trimmed(fn: Callable[[np.ndarray, int], np.ndarray], skip_seconds: float) -> Callable[[np.ndarray, int], np.ndarray]:
    """``fn`` applied to the audio after its first ``skip_seconds`` (e.g. to score only a continuation)."""
    if skip_seconds <= 0:
        return fn
    return lambda audio, sr: fn(audio[..., int(round(skip_seconds * sr)):], sr)


def _kind(kind: str, skip_seconds: float) -> str:
    """Cache kind, with the trim recorded only when there is one (so untrimmed keys never change)."""
    return f"{kind}|skip={skip_seconds:g}" if skip_seconds > 0 else kind


def cached_embed(backend: EmbeddingBackend, path: str | os.PathLike[str],
                 cache_dir: str | os.PathLike[str] | None, skip_seconds: float = 0.0) -> np.ndarray:
    """Per-frame embeddings ``[frames, dim]`` of the audio file ``path`` (after ``skip_seconds``), cached."""
    return cached_array(path, backend, cache_dir, _trimmed(backend.embed, skip_seconds), _kind("embed", skip_seconds))


def cached_window_probs(backend: ProbabilityBackend, path: str | os.PathLike[str],
                        cache_dir: str | os.PathLike[str] | None, skip_seconds: float = 0.0) -> np.ndarray:
    """Per-window label distributions ``[windows, classes]`` of the audio file ``path`` (after ``skip_seconds``), cached."""
    return cached_array(path, backend, cache_dir, _trimmed(backend.window_probs, skip_seconds),
                        _kind("window_probs", skip_seconds))


def cached_probs(backend: ProbabilityBackend, path: str | os.PathLike[str],
                 cache_dir: str | os.PathLike[str] | None, skip_seconds: float = 0.0) -> np.ndarray:
    """The clip's label distribution ``[classes]`` (mean over windows), from the cached windows."""
    return cached_window_probs(backend, path, cache_dir, skip_seconds).mean(axis=0)
