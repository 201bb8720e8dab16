"""Tests for silicon_sing.metrics.stats: bootstrap intervals over tracks, paired deltas, detectable change."""

from __future__ import annotations

import math

import numpy as np
import pytest

from silicon_sing.metrics.frechet import fad_from_embeddings
from silicon_sing.metrics.stats import (
    ClipMoments,
    bootstrap_fads,
    bootstrap_mean_ci,
    bootstrap_weights,
    detectable_change,
    fad_bootstrap_ci,
    fad_delta_ci,
    paired_delta_ci,
    small_sample_ci,
)


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



def test_fad_replicates_computed_on_two_threads_are_the_ones_one_thread_computes() -> None:
    """The bootstrap's chunks of draws run on ``threads`` threads (LAPACK releases the GIL; each call stays on one BLAS
    thread): the same replicates, bit for bit, in the same places, chunks split unevenly or not."""
    rng = np.random.default_rng(3)
    orig = [rng.standard_normal((30, 6)) + i for i in range(5)]
    systems = [[rng.standard_normal((30, 6)) * s for _ in range(5)] for s in (1.0, 2.0)]
    one = bootstrap_fads(orig, systems, n_boot=150, seed=4, chunk=32, groups=[0, 0, 1, 1, 2], threads=1)
    two = bootstrap_fads(orig, systems, n_boot=150, seed=4, chunk=32, groups=[0, 0, 1, 1, 2], threads=2)
    np.testing.assert_array_equal(two, one)
    assert np.isfinite(one).all() and one.shape == (2, 150)

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


def test_intervals_over_three_tracks_exclude_zero_about_as_often_as_their_level_says_when_nothing_changed() -> None:
    """An artist has about three test tracks. Under no change (paired deltas with a track effect and
    segment noise, centred on zero), a 95 % interval must exclude zero in about 5 % of cells; the
    percentile bootstrap over three tracks did so in about a third."""
    rng = np.random.default_rng(7)
    tracks = [t for t in range(3) for _ in range(2)]  # 3 tracks x 2 segments, as the smoke cells
    excluded = []
    for i in range(400):
        deltas = np.repeat(rng.normal(0.0, 1.0, 3), 2) + rng.normal(0.0, 0.5, 6)
        lo, hi = bootstrap_mean_ci(deltas, n_boot=300, seed=i, groups=tracks)
        excluded.append(lo > 0 or hi < 0)
    assert np.mean(excluded) < 0.10


def test_small_sample_interval_is_the_t_interval_over_track_means_with_one_segment_per_track() -> None:
    from scipy.stats import t as student_t

    v = np.array([0.3, -0.1, 0.5, 0.2])
    lo, hi = bootstrap_mean_ci(v, n_boot=20000, seed=0)
    half = student_t.ppf(0.975, 3) * v.std(ddof=1) / math.sqrt(4)
    assert (lo + hi) / 2 == pytest.approx(v.mean()) and (hi - lo) / 2 == pytest.approx(half, rel=0.03)
    assert all(math.isnan(x) for x in small_sample_ci(0.1, np.array([0.0, 0.2]), 1))  # one track: no spread


def test_an_interval_stays_within_the_range_its_quantity_can_take() -> None:
    kept = [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]  # 5 of 6 continuations kept the key, over 3 tracks
    tracks = [0, 0, 1, 1, 2, 2]
    assert bootstrap_mean_ci(kept, 500, groups=tracks)[1] > 1.0  # Student's t tails know no range
    lo, hi = bootstrap_mean_ci(kept, 500, groups=tracks, bounds=(0.0, 1.0))
    assert 0.0 <= lo < 5 / 6 and hi == 1.0


def test_a_cells_fad_interval_holds_its_estimate_inside_not_at_its_lower_end() -> None:
    """A resample repeats clips, which only raises FAD, so the replicates' percentiles put a 3-track cell's FAD at
    the lower end of its own interval (16 of these 30 cells on the old code): the interval must surround it."""
    centred = 0
    for s in range(30):
        rng = np.random.default_rng(s)
        orig = [rng.normal(size=(40, 8)) + rng.normal(size=8) * 0.5 for _ in range(6)]
        gen = [rng.normal(size=(40, 8)) * 1.1 + 0.2 + rng.normal(size=8) * 0.5 for _ in range(6)]
        lo, hi = fad_bootstrap_ci(orig, gen, 500, 0.95, s, groups=[0, 0, 1, 1, 2, 2])
        point = fad_from_embeddings(np.concatenate(orig), np.concatenate(gen)).value
        assert 0.0 <= lo < point < hi  # a distance, so at or above 0
        centred += lo == 0.0 or (point - lo) / (hi - lo) == pytest.approx(0.5)  # centred, unless 0 clips it
        # and it is the rule every other interval follows: the estimate ± t(G−1)·√(G/(G−1))·sd of the replicates
        reps = bootstrap_fads(orig, [gen], 500, s, groups=[0, 0, 1, 1, 2, 2])[0]
        assert (lo, hi) == pytest.approx(small_sample_ci(point, reps, 3, 0.95, bounds=(0.0, np.inf)))
    assert centred == 30
