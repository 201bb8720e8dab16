"""Tests for silicon_sing.metrics.kl: KL divergence in audiocraft's convention."""

from __future__ import annotations

import math

import numpy as np
import pytest

from silicon_sing.metrics.kl import kl_divergence, pair_kl


def test_kl_zero_for_identical_hand_computed_and_asymmetric():
    p = np.array([0.5, 0.5])
    q = np.array([0.25, 0.75])
    assert kl_divergence(p, p, eps=0.0) == 0.0
    assert abs(kl_divergence(p, p)) < 2 * 1e-6  # audiocraft's ε on q only: |KL(p‖p)| ≤ C·ε
    hand = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence(p, q, eps=0.0) == pytest.approx(hand, rel=1e-12)
    assert kl_divergence(p, q) == pytest.approx(hand, abs=1e-5)
    reverse = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kl_divergence(q, p, eps=0.0) == pytest.approx(reverse, rel=1e-12)
    assert not math.isclose(hand, reverse)
    # 0·log 0 = 0 on the original's side; q = 0 is finite thanks to ε
    assert kl_divergence([1.0, 0.0], [1.0, 0.0], eps=0.0) == 0.0
    assert math.isfinite(kl_divergence([0.5, 0.5], [1.0, 0.0]))


def test_kl_matches_audiocraft_formula():
    import torch

    rng = np.random.default_rng(6)
    p = rng.dirichlet(np.ones(527), size=3)
    q = rng.dirichlet(np.ones(527) * 0.1, size=3)
    # audiocraft/metrics/kld.py: kl_div((pred_probs + eps).log(), target_probs).sum(-1), pred = generated
    ref = torch.nn.functional.kl_div((torch.tensor(q) + 1e-6).log(), torch.tensor(p), reduction="none").sum(-1)
    np.testing.assert_allclose(kl_divergence(p, q), ref.numpy(), rtol=1e-10)


def test_pair_kl_averages_aligned_windows():
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    q = np.array([[0.25, 0.75], [0.9, 0.1], [0.1, 0.9]])  # one extra window: ignored
    expected = (kl_divergence(p[0], q[0]) + kl_divergence(p[1], q[1])) / 2
    assert pair_kl(p, q) == pytest.approx(expected)
    assert pair_kl(p[0], q[0]) == pytest.approx(kl_divergence(p[0], q[0]))
