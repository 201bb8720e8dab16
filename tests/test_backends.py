"""Tests for silicon_sing.metrics.backends: the model-free backends and the registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from silicon_sing.metrics.backends import (
    MelStatsEmbedding,
    SpectralClassesBackend,
    get_embedding_backend,
    get_probability_backend,
)
from silicon_sing.metrics.frechet import fad_from_embeddings
from silicon_sing.metrics.kl import kl_divergence
from stems import noise, tone

SR = 32000


def test_model_free_backends_deterministic_and_discriminative():
    kl_b, emb_b = get_probability_backend("spectral-classes"), get_embedding_backend("mel-stats")
    t, n = tone(seconds=2.0), noise(seconds=2.0)
    p_t, p_n = kl_b.probs(t, SR), kl_b.probs(n, SR)
    assert p_t.shape == (64,) and p_t.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(p_t, SpectralClassesBackend().probs(t, SR))  # a fresh instance agrees
    assert kl_divergence(p_t, p_n) > 0.5
    assert abs(kl_divergence(p_t, kl_b.probs(0.5 * t, SR))) < 1e-3  # gain-invariant by construction
    e_t, e_n = emb_b.embed(t, SR), emb_b.embed(n, SR)
    assert e_t.shape[1] == 128 and e_t.dtype == np.float32
    np.testing.assert_array_equal(e_t, MelStatsEmbedding().embed(t, SR))
    same = fad_from_embeddings(e_t, emb_b.embed(tone(seconds=2.0) * 0.999, SR)).value
    assert fad_from_embeddings(e_t, e_n).value > 100 * max(same, 1e-3)


@pytest.mark.parametrize("sr", [16000, 32000, 44100])
def test_model_free_backends_sample_rates_stereo_short(sr):
    kl_b, emb_b = SpectralClassesBackend(), MelStatsEmbedding()
    x = tone(seconds=1.5, sr=sr)
    ref_p = kl_b.probs(tone(seconds=1.5), SR)
    # the same tone at any input rate lands in the same bands
    assert kl_divergence(ref_p, kl_b.probs(x, sr)) < 0.05
    np.testing.assert_allclose(kl_b.window_probs(np.stack([x, x]), sr), kl_b.window_probs(x, sr), atol=1e-6)
    np.testing.assert_allclose(emb_b.embed(np.stack([x, x]), sr), emb_b.embed(x, sr), atol=1e-4)
    assert emb_b.embed(x, sr).shape == (int(1.5 * 16000) // 512 + 1, 128)
    short = x[: int(0.05 * sr)]  # under PaSST's 0.15 s minimum: padded, still one distribution
    assert kl_b.window_probs(short, sr).shape == (1, 64)
    assert emb_b.embed(short, sr).shape[0] >= 2
    with pytest.raises(ValueError, match="channels first"):
        kl_b.probs(np.stack([x, x]).T, sr)




def test_registry_names_match_params():
    from silicon_sing.params import load_params

    for f in ("params/smoke.yaml", "params/paper.yaml"):
        ev = load_params(Path(__file__).resolve().parent.parent / f).evaluate
        from silicon_sing.metrics.backends import EMBEDDING_BACKENDS, PROBABILITY_BACKENDS

        assert ev.kl_backend in PROBABILITY_BACKENDS and ev.fad_backend in EMBEDDING_BACKENDS
    with pytest.raises(ValueError, match="unknown KL backend"):
        get_probability_backend("inception")
    with pytest.raises(ValueError, match="unknown FAD backend"):
        get_embedding_backend("clap")




def test_backend_choices_match_the_registries() -> None:
    from silicon_sing.metrics.backends import EMBEDDING_BACKENDS, PROBABILITY_BACKENDS
    from silicon_sing.params import RULES

    assert set(RULES["evaluate.kl_backend"]["choices"]) == set(PROBABILITY_BACKENDS)
    assert set(RULES["evaluate.fad_backend"]["choices"]) == set(EMBEDDING_BACKENDS)
