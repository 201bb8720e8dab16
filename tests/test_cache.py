"""Tests for silicon_sing.metrics.cache: the per-file cache of embeddings and distributions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from silicon_sing.audio import save_audio
from silicon_sing.metrics.backends import MelStatsEmbedding, SpectralClassesBackend
from silicon_sing.metrics.cache import cache_key, cache_path, cached_embed, cached_probs, cached_window_probs
from stems import noise, tone

SR = 32000


def _tone_file(path: Path, seconds: float = 1.0, sr: int = 32000, f0: float = 440.0) -> Path:
    import numpy as np

    from silicon_sing.audio import save_audio

    t = np.arange(int(seconds * sr)) / sr
    save_audio(path, (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), sr)
    return path


class CountingMelStats(MelStatsEmbedding):
    """MelStatsEmbedding that counts how often it actually computes."""

    calls = 0

    def embed(self, audio, sr):
        type(self).calls += 1
        return super().embed(audio, sr)


def test_cache_hit_avoids_recomputation(tmp_path):
    wav = save_audio(tmp_path / "a.wav", tone(seconds=1.0), SR)
    cache = tmp_path / "metrics" / "cache"
    b = CountingMelStats()
    CountingMelStats.calls = 0
    first = cached_embed(b, wav, cache)
    second = cached_embed(b, wav, cache)
    assert CountingMelStats.calls == 1
    np.testing.assert_array_equal(first, second)
    key = cache_key(wav, f"embed|{b.fingerprint}")
    assert cache_path(cache, "mel-stats", key).exists()
    assert not [p for p in (cache / "mel-stats").iterdir() if p.name.startswith(".")]  # no temp files left
    cached_embed(CountingMelStats(seed=1), wav, cache)  # another fingerprint: recomputed
    assert CountingMelStats.calls == 2
    save_audio(wav, noise(1.0), SR)  # new content, same name: recomputed
    cached_embed(b, wav, cache)
    assert CountingMelStats.calls == 3
    p = cached_probs(SpectralClassesBackend(), wav, cache)
    assert p.shape == (64,) and cached_window_probs(SpectralClassesBackend(), wav, cache).shape == (1, 64)




def test_a_zero_byte_or_corrupt_metrics_cache_entry_is_recomputed_with_a_warning(tmp_path: Path) -> None:
    import types

    import numpy as np

    from silicon_sing.metrics.cache import cached_array

    wav = _tone_file(tmp_path / "clip.wav")
    backend = types.SimpleNamespace(name="fake", fingerprint="v1")
    calls = []

    def compute(audio, sr):
        calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(2, 3)

    first = cached_array(wav, backend, tmp_path / "cache", compute, "embed")
    (entry,) = (tmp_path / "cache" / "fake").glob("*.npy")
    header = bytearray(entry.read_bytes())
    header[11] = ord("(")  # inside the header's dict: numpy's parser raises a tokenizer error, not a ValueError
    for damage in (b"", b"\x93NUMPY garbage", bytes(header)):
        entry.write_bytes(damage)
        with pytest.warns(UserWarning, match=entry.name):
            again = cached_array(wav, backend, tmp_path / "cache", compute, "embed")
        assert np.array_equal(again, first)
    assert len(calls) == 4
    assert np.array_equal(np.load(entry), first)  # repaired on disk
