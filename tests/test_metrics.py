"""Tests for silicon_sing.metrics: Fréchet distance, KL, bootstrap, backends, cache, cells, Table 1."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import linalg

from silicon_sing.audio import save_audio
from silicon_sing.metrics.backends import (
    PASST_WEIGHTS,
    VGGISH_WEIGHTS,
    MelStatsEmbedding,
    MissingWeightsError,
    PasstBackend,
    SpectralClassesBackend,
    VggishBackend,
    get_embedding_backend,
    get_probability_backend,
    resolve_weights,
    split_windows,
)
from silicon_sing.metrics.cache import cache_key, cache_path, cached_embed, cached_probs, cached_window_probs
from silicon_sing.metrics.evaluation import EvalPair, evaluate, read_metrics, write_metrics
from silicon_sing.metrics.frechet import (
    embedding_stats,
    fad_from_embeddings,
    fad_inf,
    frechet_distance,
    frechet_distance_eig,
)
from silicon_sing.metrics.kl import kl_divergence, pair_kl
from silicon_sing.metrics.stats import (
    ClipMoments,
    bootstrap_fads,
    bootstrap_mean_ci,
    bootstrap_weights,
    detectable_change,
    fad_bootstrap_ci,
    fad_delta_ci,
    paired_delta_ci,
)
from silicon_sing.metrics.table import PUBLISHED_TABLE1, cells_frame, delta_table, load_published_table1, table1

SR = 32000


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    """A sine tone, float32 mono."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float = 1.0, sr: int = SR, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    """White noise, float32 mono."""
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def random_spd(d: int, rng: np.random.Generator, floor: float = 0.1) -> np.ndarray:
    """A random symmetric positive-definite matrix."""
    a = rng.standard_normal((d, d)) / np.sqrt(d)
    return a @ a.T + floor * np.eye(d)


# ----------------------------------------------------------------------------- Fréchet distance


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


# ----------------------------------------------------------------------------- KL


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


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_covers_true_mean_and_shrinks_with_n():
    rng = np.random.default_rng(7)
    covered = 0
    trials = 300
    for i in range(trials):
        x = rng.exponential(1.0, size=40)  # skewed, like KL values; true mean 1
        lo, hi = bootstrap_mean_ci(x, n_boot=1000, seed=i)
        covered += lo <= 1.0 <= hi
    assert 0.88 <= covered / trials <= 0.99
    widths = {}
    for n in (10, 100, 1000):
        lo, hi = bootstrap_mean_ci(rng.exponential(1.0, size=n), n_boot=1000, seed=0)
        widths[n] = hi - lo
    assert widths[1000] < widths[100] < widths[10]
    assert bootstrap_mean_ci([1.0, 2.0, 3.0], seed=3) == bootstrap_mean_ci([1.0, 2.0, 3.0], seed=3)


def test_paired_delta_is_narrower_than_unpaired_for_correlated_examples():
    rng = np.random.default_rng(8)
    difficulty = rng.exponential(1.0, size=30)  # per-example difficulty shared by both systems
    base = difficulty + rng.normal(0, 0.05, 30)
    ft = difficulty - 0.2 + rng.normal(0, 0.05, 30)
    delta, (lo, hi) = paired_delta_ci(base, ft, seed=0)
    assert delta == pytest.approx(float(np.mean(ft - base)))
    assert lo < -0.2 < hi and hi < 0  # the paired interval resolves the improvement
    b_lo, b_hi = bootstrap_mean_ci(base, seed=0)
    assert hi - lo < (b_hi - b_lo) / 3


def test_vectorised_fad_bootstrap_matches_explicit_resample():
    rng = np.random.default_rng(9)
    orig = [rng.standard_normal((20, 5)) + i for i in range(4)]
    gen = [rng.standard_normal((25, 5)) * 1.5 for _ in range(4)]
    centre = np.concatenate(orig).mean(axis=0)
    m = ClipMoments.from_frames(orig, centre)
    mu, cov = m.pooled(np.array([[2.0, 0.0, 1.0, 1.0]]))
    explicit = np.concatenate([orig[0], orig[0], orig[2], orig[3]])
    np.testing.assert_allclose(mu[0] + centre, explicit.mean(axis=0), atol=1e-10)
    np.testing.assert_allclose(cov[0], np.cov(explicit, rowvar=False), atol=1e-10)
    # a replicate equals FAD of the explicitly resampled, pooled clips
    reps = bootstrap_fads(orig, [gen], n_boot=50, seed=1)
    w = np.random.default_rng(1).multinomial(4, np.full(4, 0.25), size=50)
    idx = np.repeat(np.arange(4), w[7].astype(int))
    explicit_fad = fad_from_embeddings(np.concatenate([orig[i] for i in idx]), np.concatenate([gen[i] for i in idx]))
    assert reps[0, 7] == pytest.approx(explicit_fad.value, rel=1e-6)
    lo, hi = fad_bootstrap_ci(orig, gen, n_boot=200, seed=0)
    assert lo <= hi


def clustered(n_tracks: int, per_track: int, track_sd: float, seg_sd: float, rng: np.random.Generator):
    """Values with a shared effect per track plus segment noise, and their track labels."""
    effect = np.repeat(rng.normal(0.0, track_sd, n_tracks), per_track)
    tracks = [f"t{i:02d}" for i in range(n_tracks) for _ in range(per_track)]
    return effect + rng.normal(0.0, seg_sd, n_tracks * per_track), tracks


def width(ci: tuple[float, float]) -> float:
    return ci[1] - ci[0]


def test_bootstrap_weights_keep_every_segment_of_a_drawn_track():
    tracks = ["a", "a", "a", "b", "c", "c"]
    w = bootstrap_weights(6, 500, np.random.default_rng(0), tracks)
    assert w.shape == (500, 6)
    # segments of one track always share their multiplicity; 3 tracks are drawn per replicate
    assert (w[:, 0] == w[:, 1]).all() and (w[:, 1] == w[:, 2]).all() and (w[:, 4] == w[:, 5]).all()
    np.testing.assert_array_equal(w[:, [0, 3, 4]].sum(axis=1), 3)
    assert (w[:, 0] != w[:, 3]).any()


def test_track_bootstrap_is_wider_than_segment_bootstrap_for_correlated_segments():
    rng = np.random.default_rng(21)
    v, tracks = clustered(6, 5, track_sd=1.0, seg_sd=0.05, rng=rng)  # segments of a track nearly identical
    seg = bootstrap_mean_ci(v, n_boot=2000, seed=1)
    trk = bootstrap_mean_ci(v, n_boot=2000, seed=1, groups=tracks)
    assert width(trk) > 1.8 * width(seg)  # ≈ √5: five segments of a track are one observation
    assert trk[0] <= v.mean() <= trk[1]
    # paired deltas: the change differs by track, not by segment
    base = rng.exponential(1.0, v.size)
    d_seg = paired_delta_ci(base, base + v, n_boot=2000, seed=2)[1]
    d_trk = paired_delta_ci(base, base + v, n_boot=2000, seed=2, groups=tracks)[1]
    assert width(d_trk) > 1.8 * width(d_seg)
    # FAD: each track's clips share an offset in embedding space (one song = one place)
    offsets = {t: rng.normal(0, 2.0, 4) for t in dict.fromkeys(tracks)}
    orig = [rng.standard_normal((30, 4)) + offsets[t] for t in tracks]
    gen = [rng.standard_normal((30, 4)) * 1.3 + 0.5 * offsets[t] for t in tracks]
    f_seg = fad_bootstrap_ci(orig, gen, n_boot=400, seed=3)
    f_trk = fad_bootstrap_ci(orig, gen, n_boot=400, seed=3, groups=tracks)
    assert width(f_trk) > 1.5 * width(f_seg)
    better = [g * 0.9 + 0.1 * o for g, o in zip(gen, orig)]
    assert width(fad_delta_ci(orig, gen, better, 400, seed=4, groups=tracks)) > \
        1.3 * width(fad_delta_ci(orig, gen, better, 400, seed=4))


def test_track_bootstrap_equals_segment_bootstrap_when_segments_are_independent():
    rng = np.random.default_rng(22)
    # one segment per track: the very same draws, so identical intervals for one seed
    v = rng.exponential(1.0, 12)
    tracks = [f"artist/track{i:02d}" for i in range(12)]
    assert bootstrap_mean_ci(v, seed=5, groups=tracks) == bootstrap_mean_ci(v, seed=5)
    b = rng.exponential(1.0, 12)
    assert paired_delta_ci(b, v, seed=6, groups=tracks) == paired_delta_ci(b, v, seed=6)
    orig = [rng.standard_normal((20, 3)) for _ in range(12)]
    gen = [rng.standard_normal((20, 3)) + 0.3 for _ in range(12)]
    assert fad_bootstrap_ci(orig, gen, 200, seed=7, groups=tracks) == fad_bootstrap_ci(orig, gen, 200, seed=7)
    np.testing.assert_array_equal(bootstrap_fads(orig, [gen], 50, seed=8, groups=tracks),
                                  bootstrap_fads(orig, [gen], 50, seed=8))
    # several i.i.d. segments per track: no within-track correlation, so the same width on average
    w_trk, w_seg = [], []
    for i in range(40):
        v, tracks = clustered(30, 3, track_sd=0.0, seg_sd=1.0, rng=rng)
        w_trk.append(width(bootstrap_mean_ci(v, 1000, seed=i, groups=tracks)))
        w_seg.append(width(bootstrap_mean_ci(v, 1000, seed=i)))
    assert 0.92 < np.mean(w_trk) / np.mean(w_seg) < 1.08


def test_one_track_gives_no_interval_and_detectable_change_is_the_half_width():
    assert all(math.isnan(x) for x in bootstrap_mean_ci([1.0, 2.0, 3.0], groups=["t", "t", "t"]))
    frames = [np.random.default_rng(i).standard_normal((10, 2)) for i in range(3)]
    assert all(math.isnan(x) for x in fad_bootstrap_ci(frames, frames, 50, groups=["t"] * 3))
    assert detectable_change((-0.3, 0.1)) == pytest.approx(0.2)
    assert math.isnan(detectable_change((math.nan, math.nan)))


# ----------------------------------------------------------------------------- model-free backends


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


def test_split_windows_follows_audiocraft():
    x = np.arange(25, dtype=np.float32)
    assert [len(w) for w in split_windows(x, 10, 3)] == [10, 10, 5]
    assert [len(w) for w in split_windows(x[:22], 10, 3)] == [10, 10]  # tail of 2 ≤ min dropped
    assert [len(w) for w in split_windows(x[:2], 10, 3)] == [4]  # nothing usable: padded to min + 1


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


# ----------------------------------------------------------------------------- PaSST / VGGish (random init)


@pytest.fixture(scope="module")
def passt() -> PasstBackend:
    return PasstBackend(pretrained=False, seed=0, window_seconds=0.5, device="cpu")


@pytest.fixture(scope="module")
def vggish() -> VggishBackend:
    return VggishBackend(pretrained=False, seed=0, device="cpu")


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


@pytest.mark.parametrize("sr", [16000, 32000, 44100])
def test_vggish_random_init_sample_rates_stereo_short(vggish, sr):
    x = tone(seconds=3.0, sr=sr)
    e = vggish.embed(x, sr)
    assert e.shape == (3, 128) and e.dtype == np.float32
    assert (e < 0).any()  # final ReLU removed, as fadtk does
    np.testing.assert_allclose(vggish.embed(np.stack([x, x]), sr), e, atol=1e-4)
    assert vggish.embed(x[: int(0.3 * sr)], sr).shape == (1, 128)  # padded to 1 s
    np.testing.assert_array_equal(vggish.embed(x, sr), e)


def test_weights_loading_path_roundtrip(tmp_path, vggish, passt):
    import torch

    path = tmp_path / "vggish.pth"
    torch.save(vggish.model.state_dict(), path)
    loaded = VggishBackend(pretrained=True, weights=path, seed=123, device="cpu")
    x = tone(seconds=2.0)
    np.testing.assert_allclose(loaded.embed(x, SR), vggish.embed(x, SR), atol=1e-5)
    assert loaded.fingerprint != vggish.fingerprint and "vggish.pth" in loaded.fingerprint
    path = tmp_path / "passt.pt"
    torch.save(passt.model.net.state_dict(), path)
    loaded_p = PasstBackend(pretrained=True, weights=path, seed=123, window_seconds=0.5, device="cpu")
    np.testing.assert_allclose(loaded_p.window_probs(x[:16000], SR), passt.window_probs(x[:16000], SR), atol=1e-5)
    assert "passt.pt" in loaded_p.fingerprint


def test_missing_weights_raise_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(PASST_WEIGHTS.env_var, raising=False)
    monkeypatch.delenv(VGGISH_WEIGHTS.env_var, raising=False)
    for cls, spec in ((PasstBackend, PASST_WEIGHTS), (VggishBackend, VGGISH_WEIGHTS)):
        with pytest.raises(MissingWeightsError) as e:
            cls(pretrained=True)
        msg = str(e.value)
        assert spec.url in msg and spec.filename in msg and spec.env_var in msg and "allow_download" in msg
        assert str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    monkeypatch.setenv(VGGISH_WEIGHTS.env_var, str(tmp_path / "nope.pth"))
    with pytest.raises(MissingWeightsError, match="nope.pth"):
        VggishBackend(pretrained=True)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / PASST_WEIGHTS.filename).write_bytes(b"x")
    assert resolve_weights(PASST_WEIGHTS, None, allow_download=False) == hub / PASST_WEIGHTS.filename


def test_weight_urls_match_the_libraries():
    from hear21passt.models.passt import default_cfgs
    from torchvggish import torchvggish

    assert default_cfgs[PasstBackend.arch]["url"] == PASST_WEIGHTS.url
    assert torchvggish.VGGISH_WEIGHTS == VGGISH_WEIGHTS.url
    assert PASST_WEIGHTS.url.endswith(PASST_WEIGHTS.filename) and VGGISH_WEIGHTS.url.endswith(VGGISH_WEIGHTS.filename)


# ----------------------------------------------------------------------------- cache


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


# ----------------------------------------------------------------------------- cells, deltas, Table 1


def make_pairs(root: Path) -> list[EvalPair]:
    """2 artists × 1 category × 2 systems × 4 examples; fine-tuned = original + a little noise."""
    pairs = []
    rng = np.random.default_rng(10)
    for artist, f0 in (("juice_wrld", 220.0), ("Synth Singer", 330.0)):
        for i in range(4):
            orig = tone(f0 * (1 + 0.05 * i), seconds=1.0) + noise(1.0, seed=i, amp=0.01)
            o = save_audio(root / artist / f"orig{i}.wav", orig, SR)
            ft = save_audio(root / artist / f"ft{i}.wav", orig + noise(1.0, seed=100 + i, amp=0.01), SR)
            base = save_audio(root / artist / f"base{i}.wav", noise(1.0, seed=200 + i, amp=0.1)
                              + tone(rng.uniform(1000, 3000), 1.0, amp=0.1), SR)
            pairs.append(EvalPair(str(o), str(base), artist, "instrumental", "baseline", f"ex{i}"))
            pairs.append(EvalPair(str(o), str(ft), artist, "instrumental", "fine-tuned", f"ex{i}"))
    return pairs


def test_evaluate_cells_deltas_json_and_table1(tmp_path):
    pairs = make_pairs(tmp_path / "audio")
    report = evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=200, seed=0)
    assert len(report.cells) == 4 and len(report.deltas) == 4
    for c in report.cells:
        assert c.n == 4 and c.kl_ci[0] <= c.kl <= c.kl_ci[1] and c.fad_ci[0] <= c.fad_ci[1]
        assert c.n_frames_original == c.n_frames_generated == 4 * 32 and math.isfinite(c.fad_inf)
        assert c.example_ids == ["ex0", "ex1", "ex2", "ex3"] and len(c.kl_values) == 4
    by = {(c.artist, c.system): c for c in report.cells}
    for artist in ("juice_wrld", "Synth Singer"):
        assert by[(artist, "fine-tuned")].kl < by[(artist, "baseline")].kl
        assert by[(artist, "fine-tuned")].fad < by[(artist, "baseline")].fad
    for d in report.deltas:
        assert d.n == 4 and d.delta < 0 and d.ci[0] <= d.ci[1] and d.delta == pytest.approx(d.finetuned - d.baseline)
    # a second run reads the cache and reproduces the numbers exactly
    again = evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=200, seed=0)
    assert [c.fad_ci for c in again.cells] == [c.fad_ci for c in report.cells]

    cell = {(c.artist, c.system): c for c in report.cells}
    d_fad = next(d for d in report.deltas if d.artist == "juice_wrld" and d.metric == "fad")
    assert d_fad.baseline == cell[("juice_wrld", "baseline")].fad  # same examples: the cells' FADs
    bad = pairs[:-1] + [EvalPair(pairs[0].original, *[getattr(pairs[-1], k) for k in
                                                      ("generated", "artist", "category", "system", "example_id")])]
    with pytest.raises(ValueError, match="two originals"):
        evaluate(bad, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=10)

    path = write_metrics(tmp_path / "metrics" / "metrics.json", report)
    back = read_metrics(path)
    assert back.cells == report.cells and back.deltas == report.deltas
    assert back.meta["kl_backend"] == "spectral-classes" and back.meta["n_boot"] == 200
    assert "NaN" not in path.read_text()

    t = table1(report.cells, ci=True)
    assert ("baseline", "KL", "published") in t.columns and ("fine-tuned", "FAD", "ci_high") in t.columns
    assert list(t.index.get_level_values("category").unique()) == ["instrumental", "acapella", "full"]
    row = t.loc[("instrumental", "Juice WRLD")]  # our juice_wrld matched to the published artist
    assert row[("baseline", "KL", "published")] == 0.75 and row[("baseline", "n", "ours")] == 4
    assert row[("fine-tuned", "KL", "ours")] == pytest.approx(by[("juice_wrld", "fine-tuned")].kl)
    assert math.isnan(t.loc[("instrumental", "Synth Singer"), ("baseline", "KL", "published")])
    assert math.isnan(t.loc[("acapella", "Kanye"), ("baseline", "KL", "ours")])
    assert str(t[("baseline", "n", "ours")].dtype) == "Int64"
    matched = table1(report.cells, published_rows="matched")
    assert len(matched) == 2
    assert table1(report.cells, published_csv=None).columns.get_level_values("source").unique().tolist() == ["ours"]
    assert len(delta_table(report.deltas)) == 2
    assert set(cells_frame(report.cells)["metric"]) == {"KL", "FAD", "FAD-inf"}


def test_metrics_cells_report_tracks_and_resample_them(tmp_path):
    """Segment ids name their track; cells and deltas carry n_tracks/n_segments and track-bootstrap intervals."""
    from silicon_sing.metrics.evaluation import _seed, as_pairs, pair_track, track_of

    assert track_of("kanye/02-song/acapella/003") == "kanye/02-song" and track_of("ex0") == "ex0"
    pairs = []
    for t in range(3):  # 3 tracks × 2 segments; the tracks differ much more than their segments
        for i in range(2):
            orig = tone(220.0 * (1 + 0.4 * t) * (1 + 0.01 * i), 1.0) + noise(1.0, seed=10 * t + i, amp=0.01)
            o = save_audio(tmp_path / f"o{t}{i}.wav", orig, SR)
            b = save_audio(tmp_path / f"b{t}{i}.wav", noise(1.0, seed=50 + t, amp=0.05 * (t + 1)), SR)
            f = save_audio(tmp_path / f"f{t}{i}.wav", orig + noise(1.0, seed=80 + t, amp=0.02 * (t + 1)), SR)
            ex = f"artist/{t:02d}-song/full/{i:03d}"
            pairs += [EvalPair(str(o), str(b), "artist", "full", "baseline", ex),
                      EvalPair(str(o), str(f), "artist", "full", "fine-tuned", ex)]
    report = evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=300, seed=4)
    assert report.meta["resampling_unit"] == "track"
    for c in report.cells + report.deltas:
        assert (c.n_tracks, c.n_segments, c.n) == (3, 6, 6)
    cell = report.cells[0]
    assert cell.track_ids == [pair_track(p) for p in pairs[::2]]
    groups = cell.track_ids
    assert cell.kl_ci == bootstrap_mean_ci(cell.kl_values, 300, 0.95, _seed(4, "artist", "full", "baseline"),
                                           groups=groups)
    assert cell.kl_ci != bootstrap_mean_ci(cell.kl_values, 300, 0.95, _seed(4, "artist", "full", "baseline"))
    # the JSON carries the counts; an explicit track_id wins over the one in the example id
    back = read_metrics(write_metrics(tmp_path / "m.json", report))
    assert back.cells[0].n_tracks == 3 and back.deltas[0].n_segments == 6
    explicit, = as_pairs([dict(original="o", generated="g", artist="a", category="full", system="baseline",
                               example_id="ex9", track_id="a/t1")])
    assert pair_track(explicit) == "a/t1"


def test_evaluate_with_out_skips_unchanged_reruns(tmp_path, monkeypatch):
    import silicon_sing.metrics.evaluation as ev

    pairs = make_pairs(tmp_path / "audio")[:4]
    out = tmp_path / "metrics" / "metrics.json"
    first = evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=50, out=out)
    assert out.exists() and first.meta["inputs_fingerprint"]

    def boom(*a, **k):
        raise AssertionError("recomputed although nothing changed")

    monkeypatch.setattr(ev, "analyse_features", boom)
    again = evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=50, out=out)
    assert again.cells == first.cells
    with pytest.raises(AssertionError, match="recomputed"):  # a changed setting recomputes
        evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=60, out=out)
    save_audio(pairs[0].generated, noise(1.0, seed=99), SR)  # changed audio recomputes
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(pairs, SpectralClassesBackend(), MelStatsEmbedding(), tmp_path / "cache", n_boot=50, out=out)


def test_published_table1_asset():
    pub = load_published_table1()
    assert len(pub) == 18 and set(pub["category"]) == {"instrumental", "acapella", "full"}
    assert set(pub["model"]) == {"baseline", "fine-tuned"}
    shared = Path(__file__).resolve().parents[2] / "shared" / "reference" / "table1_published.csv"
    if shared.exists():
        assert PUBLISHED_TABLE1.read_text() == shared.read_text()


def test_pairs_from_records_and_prompt_exclusion(tmp_path):
    from dataclasses import dataclass

    from silicon_sing.metrics.evaluation import as_pairs, compute_features

    @dataclass
    class Record:  # the fields of silicon_sing.generate.Generation that matter here
        example_id: str
        artist: str
        category: str
        system: str
        original: str
        generated: str
        prompt_seconds: float

    prompt = noise(0.5, seed=1)
    orig = save_audio(tmp_path / "o.wav", np.concatenate([prompt, tone(440, 1.0)]), SR)
    gen = save_audio(tmp_path / "g.wav", np.concatenate([prompt, noise(1.0, seed=2)]), SR)
    rec = Record("ex0", "a", "full", "baseline", str(orig), str(gen), 0.5)
    whole, = as_pairs([rec])
    cont, = as_pairs([rec], exclude_prompt=True)
    assert (whole.skip_seconds, cont.skip_seconds) == (0.0, 0.5)
    assert as_pairs([dict(vars(rec))])[0] == whole
    assert as_pairs([(str(orig), str(gen), "a", "full", "baseline", "ex0", 0.5)])[0] == cont
    with pytest.raises(ValueError, match="lacks"):
        as_pairs([{"original": str(orig)}])
    kl_b, emb_b = SpectralClassesBackend(), MelStatsEmbedding()
    f_whole, f_cont = compute_features([whole, cont], kl_b, emb_b, tmp_path / "cache")
    # scoring only the continuation removes the shared prompt: the pair looks less alike
    assert f_cont.kl > f_whole.kl
    from silicon_sing.audio import load_audio

    audio, sr = load_audio(orig)
    np.testing.assert_array_equal(f_cont.original_frames, emb_b.embed(audio[:, int(0.5 * sr):], sr))
    assert len(list((tmp_path / "cache" / "mel-stats").glob("*.npy"))) == 4  # trimmed and whole cached apart
