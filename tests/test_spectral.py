"""Tests for silicon_sing.metrics.spectral: the backends' audio front end and the one mel filterbank."""

from __future__ import annotations

import librosa
import numpy as np

from silicon_sing.metrics.spectral import mel_filterbank, split_windows


def test_split_windows_follows_audiocraft():
    x = np.arange(25, dtype=np.float32)
    assert [len(w) for w in split_windows(x, 10, 3)] == [10, 10, 5]
    assert [len(w) for w in split_windows(x[:22], 10, 3)] == [10, 10]  # tail of 2 ≤ min dropped
    assert [len(w) for w in split_windows(x[:2], 10, 3)] == [4]  # nothing usable: padded to min + 1


def test_mel_filterbank_is_librosas_with_explicit_edges() -> None:
    """One definition: Slaney by default, HTK on request, cached per argument set."""
    fb = mel_filterbank(16000, 1024, 64, 30.0, 8000.0)
    assert fb.shape == (64, 513) and fb.dtype == np.float32
    np.testing.assert_array_equal(fb, librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64, fmin=30.0,
                                                          fmax=8000.0).astype(np.float32))
    htk = mel_filterbank(16000, 1024, 64, 30.0, 8000.0, htk=True)
    assert not np.array_equal(fb, htk)
    assert mel_filterbank(16000, 1024, 64, 30.0, 8000.0) is fb
