"""Tests for silicon_sing.metrics.spectral: the backends' audio front end and the one mel filterbank."""

from __future__ import annotations

import numpy as np

from silicon_sing.metrics.spectral import split_windows


def test_split_windows_follows_audiocraft():
    x = np.arange(25, dtype=np.float32)
    assert [len(w) for w in split_windows(x, 10, 3)] == [10, 10, 5]
    assert [len(w) for w in split_windows(x[:22], 10, 3)] == [10, 10]  # tail of 2 ≤ min dropped
    assert [len(w) for w in split_windows(x[:2], 10, 3)] == [4]  # nothing usable: padded to min + 1
