"""Tests for silicon_sing.metrics.frechet: Fréchet distance, FAD and FAD-∞."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import linalg

from silicon_sing.metrics.frechet import (
    embedding_stats,
    fad_from_embeddings,
    fad_inf,
    frechet_distance,
    frechet_distance_eig,
)


def random_spd(d: int, rng: np.random.Generator, floor: float = 0.1) -> np.ndarray:
    """A random symmetric positive-definite matrix."""
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    return a @ a.T + floor * np.eye(d)



def test_frechet_closed_form_diagonal_and_commuting():
    rng = np.random.default_rng(1)
    d = 6
    a, b = rng.uniform(0.2, 3.0, d), rng.uniform(0.2, 3.0, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    # commuting covariances: Tr((Σ₁Σ₂)^½) = Σ √(a_i b_i), so d² = ‖Δμ‖² + Σ (√a_i − √b_i)²
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    # one dimension: (m₁ − m₂)² + (s₁ − s₂)²
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_frechet_matches_eigendecomposition_formula():
    rng = np.random.default_rng(2)
    for d in (3, 32, 128):
        s1, s2 = random_spd(d, rng), random_spd(d, rng, 0.01)
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        ref = frechet_distance(mu1, s1, mu2, s2)
        # independent: Tr((Σ₁Σ₂)^½) from the eigenvalues of the symmetric Σ₁^½ Σ₂ Σ₁^½
        r = linalg.sqrtm(s1).real
        tr = np.sqrt(np.clip(np.linalg.eigvalsh(r @ s2 @ r), 0, None)).sum()
        independent = float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * tr)
        assert ref == pytest.approx(independent, rel=1e-7, abs=1e-8)
        assert float(frechet_distance_eig(mu1, s1, mu2, s2)) == pytest.approx(ref, rel=1e-7, abs=1e-8)
        assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(ref, rel=1e-7)  # symmetric
        assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-7)


def test_frechet_rank_deficient_covariances_stay_finite():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((40, 64)), rng.standard_normal((50, 64)) + 0.3  # fewer frames than dims
    fad = fad_from_embeddings(x, y)
    assert math.isfinite(fad.value) and fad.value > 0
    assert (fad.n_a, fad.n_b, fad.dim) == (40, 50, 64)
    eig = float(frechet_distance_eig(*embedding_stats(x), *embedding_stats(y)))
    assert fad.value == pytest.approx(eig, rel=1e-4)
    assert math.isnan(fad_from_embeddings(x[:1], y).value)  # one frame has no covariance


def test_sample_fad_converges_to_analytic_value():
    rng = np.random.default_rng(4)
    d = 4
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    s1, s2 = random_spd(d, rng, 0.5), random_spd(d, rng, 0.5)
    truth = frechet_distance(mu1, s1, mu2, s2)
    errors = []
    for n in (100, 1000, 50000):
        a = rng.multivariate_normal(mu1, s1, size=n)
        b = rng.multivariate_normal(mu2, s2, size=n)
        errors.append(abs(fad_from_embeddings(a, b).value - truth))
    assert errors[2] < errors[0]
    assert errors[2] < 0.05 * truth


def test_fad_inf_recovers_true_value_and_beats_small_n():
    rng = np.random.default_rng(0)
    d = 32  # enough dimensions that the covariance terms dominate the small-n bias, as with real embeddings
    mu1, mu2 = np.zeros(d), np.full(d, 0.1)
    s1, s2 = random_spd(d, rng, 0.3), random_spd(d, rng, 0.3)
    truth = frechet_distance(mu1, s1, mu2, s2)
    ref = rng.multivariate_normal(mu1, s1, size=100000)
    gen = rng.multivariate_normal(mu2, s2, size=20000)
    res = fad_inf(ref, gen, steps=15, min_n=200, seed=0)
    small = fad_from_embeddings(ref, gen[:200]).value
    assert res.value == pytest.approx(truth, rel=0.02)
    assert abs(res.value - truth) < abs(small - truth) / 5
    assert res.slope > 0 and res.r2 > 0.9  # FAD_n falls like 1/n
    assert len(res.points) == 15 and res.points[0][0] == 200 and res.points[-1][0] == 20000
    # a small cell lowers min_n instead of failing
    assert len(fad_inf(ref[:300], gen[:300], steps=5, min_n=500).points) == 5
