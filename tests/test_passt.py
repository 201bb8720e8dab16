"""Tests for silicon_sing.metrics.passt: PaSST with random-init weights (no download)."""

from __future__ import annotations

import numpy as np
import pytest

from silicon_sing.metrics.passt import PasstBackend
from stems import noise, tone

SR = 32000


@pytest.mark.parametrize("sr", [16000, 44100])  # 32 kHz (native) is covered below
def test_passt_random_init_sample_rates_and_stereo(passt, sr):
    x = tone(seconds=0.7, sr=sr)
    w = passt.window_probs(x, sr)
    assert w.shape == (2, 527)  # a 0.5 s window and a 0.2 s tail (> 0.15 s minimum, kept)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(passt.window_probs(np.stack([x, x]), sr), w, atol=1e-5)


def test_passt_random_init_short_clip_and_determinism(passt):
    import torch

    x = tone(seconds=0.6)
    a, b = passt.window_probs(x, SR), passt.window_probs(x, SR)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (1, 527)  # 0.5 s window + 0.1 s tail (≤ 0.15 s, dropped as audiocraft does)
    np.testing.assert_allclose(passt.probs(x, SR), a.mean(axis=0))
    assert passt.window_probs(x[: int(0.05 * SR)], SR).shape == (1, 527)  # too short: padded
    assert not np.allclose(a, passt.window_probs(noise(0.6), SR))  # the output depends on the input
    other = PasstBackend(pretrained=False, seed=0, window_seconds=0.5, device="cpu")
    for (k, v), v2 in zip(passt.model.state_dict().items(), other.model.state_dict().values()):
        assert torch.equal(v, v2), k  # seeded init is reproducible, so the fingerprint may name the seed
    assert other.fingerprint == passt.fingerprint and "random-init:seed=0" in passt.fingerprint
