"""Tests for silicon_sing.metrics.vggish: VGGish with random-init weights (no download)."""

from __future__ import annotations

import numpy as np
import pytest

from stems import tone

SR = 32000


@pytest.mark.parametrize("sr", [16000, 32000, 44100])
def test_vggish_random_init_sample_rates_stereo_short(vggish, sr):
    x = tone(seconds=3.0, sr=sr)
    e = vggish.embed(x, sr)
    assert e.shape == (3, 128) and e.dtype == np.float32
    assert (e < 0).any()  # final ReLU removed, as fadtk does
    np.testing.assert_allclose(vggish.embed(np.stack([x, x]), sr), e, atol=1e-4)
    assert vggish.embed(x[: int(0.3 * sr)], sr).shape == (1, 128)  # padded to 1 s
    np.testing.assert_array_equal(vggish.embed(x, sr), e)
