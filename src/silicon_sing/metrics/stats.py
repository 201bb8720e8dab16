"""Bootstrap intervals for KL and FAD per cell, paired intervals for fine-tuned − baseline deltas.

The unit of resampling is the **track**, not the segment (a cluster bootstrap): consecutive segments
of one song share its key, tempo, voice and arrangement, so they are not independent draws, and a
bootstrap over segments leaves out the variance that matters — another song by the same artist.
Each replicate draws the cell's tracks with replacement and keeps all segments of every drawn track
(a track drawn twice counts twice). When every track contributes one segment, this is exactly the
ordinary bootstrap over examples (same draws for the same seed).

- Few tracks: an artist has about three test tracks, and a percentile bootstrap over three units is
  far too narrow (its variance is (G−1)/G of the usual estimate, its tails are the normal's, and
  three units give only ten distinct resamples). Comparing the smoke baseline with *itself*, sampled
  under other seeds, percentile intervals of the KL change excluded zero in 11 of 27 cells and of the
  FAD change in 5 of 27, against a nominal 5 %. Means and deltas therefore use
  :func:`small_sample_ci`: the point estimate ± Student's t with G − 1 degrees of freedom times the
  bootstrap standard error rescaled by √(G/(G−1)) — the textbook t interval over track means when
  every track has one segment; on the same comparisons it excluded zero in 0 of 27 KL and 1 of 27
  FAD cells.
- KL: the cell's KL is the mean of per-example KLs; its interval is :func:`small_sample_ci` of that
  mean over the bootstrap replicates (ratio estimator Σ wᵢ·klᵢ / Σ wᵢ, wᵢ = how often segment i's
  track was drawn).
- FAD: not a mean over examples, so a replicate pools the frames of the drawn examples (clip pairs:
  an original and its continuation together) and recomputes FAD. Resampling with replacement
  repeats clips, which lowers the effective sample size, and FAD is biased upward at small n: the
  bootstrap distribution sits above the point estimate. A system's interval is therefore
  :func:`fad_cell_ci` — the estimate ± t times the replicates' standard error, like the means — not
  their percentiles, which put the estimate at the lower end of its own interval. Compare FAD only at
  equal n (or via FAD-∞).
- Deltas fine-tuned − baseline are paired: KL per example, FAD with the same drawn tracks for both
  systems (and their shared originals), so most of the small-n bias cancels in the delta; both
  delta intervals are :func:`small_sample_ci`.
- What the design can detect: half the width of a delta's interval is the smallest change whose
  interval would just exclude zero with the same spread (:func:`detectable_change`).

All draws are seeded (``numpy.random.default_rng``) and vectorised.

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..machine import usable_cpus
from .frechet import fad_from_embeddings, psd_factor, single_threaded_blas, trace_sqrt_product

NAN = float("nan")


@dataclass
class CellResult:
    """KL and FAD of one (artist, category, system) cell, with sample sizes and 95 % intervals."""

    artist: str
    category: str
    system: str
    n: int  # example pairs (original, continuation) in the cell (= n_segments)
    kl: float
    kl_ci: tuple[float, float]
    fad: float
    fad_ci: tuple[float, float]
    fad_inf: float  # FAD extrapolated to infinitely many frames (fadtk's FAD-∞)
    fad_inf_r2: float = NAN
    fad_inf_slope: float = NAN
    n_frames_original: int = 0  # embedding frames behind the FAD (FAD depends on these counts)
    n_frames_generated: int = 0
    kl_backend: str = ""
    fad_backend: str = ""
    example_ids: list[str] = field(default_factory=list)
    kl_values: list[float] = field(default_factory=list)  # per example, same order as example_ids
    n_tracks: int = 0  # distinct test tracks: the unit the intervals resample
    n_segments: int = 0  # segments (examples) of those tracks
    track_ids: list[str] = field(default_factory=list)  # per example, same order as example_ids


@dataclass
class DeltaResult:
    """Paired difference fine-tuned − baseline of one metric in one (artist, category)."""

    artist: str
    category: str
    metric: str  # "kl" or "fad"
    n: int  # examples present for both systems
    baseline: float  # the metric on those n examples
    finetuned: float
    delta: float  # finetuned − baseline (negative = fine-tuning brought generations closer)
    ci: tuple[float, float]
    baseline_system: str = "baseline"
    finetuned_system: str = "fine-tuned"
    n_tracks: int = 0  # distinct test tracks behind the n examples (the resampling unit)
    n_segments: int = 0  # = n


def small_sample_ci(point: float, replicates: np.ndarray, n_units: int, level: float = 0.95,
                    bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float]:
    """``point ± t(G−1) · √(G/(G−1)) · sd(replicates)``: an interval that stays honest with few units.

    Args:
        point: the estimate (a mean, or a difference of FADs).
        replicates: its bootstrap replicates ``[n_boot]`` over ``n_units`` resampled units (NaNs ignored).
        n_units: G, the number of resampled units (tracks).
        level: coverage.
        bounds: the range the quantity can take (a share: ``(0, 1)``); the interval is clipped to it.
    Returns:
        ``(low, high)``; NaN without two units or two finite replicates.
    """
    from scipy.stats import t as student_t  # lazy: scipy's import is slow and most callers never get here

    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if n_units < 2 or r.size < 2 or not np.isfinite(point):
        return (NAN, NAN)
    # the bootstrap variance of a mean over G units is (G−1)/G of s²/G: undo that, then use t's tails
    se = float(r.std(ddof=1)) * float(np.sqrt(n_units / (n_units - 1)))
    half = float(student_t.ppf(0.5 + level / 2.0, n_units - 1)) * se
    return (max(float(point) - half, bounds[0]), min(float(point) + half, bounds[1]))


def bootstrap_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n`` items is drawn in each of ``n_boot`` resamples, ``[n_boot, n]``."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)


def cluster_index(groups: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    """Each item's cluster number, clusters numbered in order of first appearance, and their count."""
    first: dict[Hashable, int] = {}
    idx = np.array([first.setdefault(g, len(first)) for g in groups], dtype=np.intp)
    return idx, len(first)


def n_clusters(n: int, groups: Sequence[Hashable] | None) -> int:
    """Number of resampling units among ``n`` items (each item its own unit when ``groups`` is None)."""
    return n if groups is None else len(set(groups))


def bootstrap_weights(n: int, n_boot: int, rng: np.random.Generator,
                      groups: Sequence[Hashable] | None = None) -> np.ndarray:
    """Per-item multiplicities ``[n_boot, n]`` of a (cluster) bootstrap.

    ``groups[i]`` is item i's cluster (its track): clusters are drawn with replacement and every
    item of a drawn cluster counts as often as its cluster was drawn. ``groups=None`` (or one item
    per cluster, in order) is the ordinary bootstrap over items, with the same draws for one ``rng``.
    """
    if groups is None:
        return bootstrap_counts(n, n_boot, rng)
    if len(groups) != n:
        raise ValueError(f"{len(groups)} group labels for {n} items")
    idx, k = cluster_index(groups)
    return np.ascontiguousarray(bootstrap_counts(k, n_boot, rng)[:, idx])  # same layout, same BLAS sums


def bootstrap_means(values: np.ndarray | list[float], n_boot: int = 1000, seed: int = 0,
                    groups: Sequence[Hashable] | None = None) -> np.ndarray:
    """Bootstrap replicates of the mean of ``values`` (resampling ``groups`` when given)."""
    v = np.asarray(values, dtype=np.float64)
    w = bootstrap_weights(v.size, n_boot, np.random.default_rng(seed), groups)
    return (w @ v) / w.sum(axis=1)


def bootstrap_mean_ci(values: np.ndarray | list[float], n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0, groups: Sequence[Hashable] | None = None,
                      bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float]:
    """Interval of the mean of ``values`` (:func:`small_sample_ci`, clipped to ``bounds``); with ``groups``,
    over clusters.

    Needs at least two resampling units (one track says nothing about the spread between tracks).
    """
    v = np.asarray(values, dtype=np.float64)
    units = n_clusters(v.size, groups)
    if v.size < 2 or n_boot < 1 or units < 2:
        return (NAN, NAN)
    return small_sample_ci(float(v.mean()), bootstrap_means(v, n_boot, seed, groups), units, level, bounds)


def paired_delta_ci(baseline: np.ndarray | list[float], finetuned: np.ndarray | list[float],
                    n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                    groups: Sequence[Hashable] | None = None) -> tuple[float, tuple[float, float]]:
    """Mean of ``finetuned − baseline`` over paired examples and its (cluster) bootstrap interval."""
    d = np.asarray(finetuned, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if d.size == 0:
        return NAN, (NAN, NAN)
    return float(d.mean()), bootstrap_mean_ci(d, n_boot, level, seed, groups)


def detectable_change(ci: tuple[float, float]) -> float:
    """Half-width of a delta's interval: the smallest change whose interval would exclude zero at this spread."""
    lo, hi = ci
    return float((hi - lo) / 2.0) if np.isfinite(lo) and np.isfinite(hi) else NAN


@dataclass
class ClipMoments:
    """Per-clip sufficient statistics of embedding frames, so a resample's pooled moments are sums."""

    counts: np.ndarray  # [clips] frames per clip
    sums: np.ndarray  # [clips, dim] Σ (x − centre)
    outer: np.ndarray  # [clips, dim, dim] Σ (x − centre)(x − centre)ᵀ

    @classmethod
    def from_frames(cls, clips: list[np.ndarray], centre: np.ndarray) -> ClipMoments:
        """Moments of each clip's ``[frames, dim]`` array about ``centre`` (centring keeps float64 exact)."""
        xs = [np.asarray(c, dtype=np.float64) - centre for c in clips]
        return cls(np.array([x.shape[0] for x in xs], dtype=np.float64),
                   np.stack([x.sum(axis=0) for x in xs]),
                   np.stack([x.T @ x for x in xs]))

    def pooled(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pooled mean ``[B, dim]`` and unbiased covariance ``[B, dim, dim]`` for clip multiplicities ``[B, clips]``."""
        n = weights @ self.counts
        d = self.sums.shape[1]
        mu = (weights @ self.sums) / n[:, None]
        second = (weights @ self.outer.reshape(len(self.counts), d * d)).reshape(-1, d, d)
        cov = (second - n[:, None, None] * mu[:, :, None] * mu[:, None, :]) / (n - 1)[:, None, None]
        return mu, cov


def bootstrap_fads(originals: list[np.ndarray], systems: list[list[np.ndarray]], n_boot: int = 1000,
                   seed: int = 0, chunk: int = 64, groups: Sequence[Hashable] | None = None,
                   threads: int | None = None) -> np.ndarray:
    """FAD replicates ``[len(systems), n_boot]`` from resampling examples (or their tracks) shared by all sets.

    ``originals[i]`` and ``systems[s][i]`` are the frames of example i's original and of system s's
    continuation of it; each replicate draws examples — or, with ``groups`` (example i's track), whole
    tracks — with replacement, pools their frames and computes FAD(originals, system) for every system
    with the same draw. Chunks of ``chunk`` draws run on ``threads`` threads (None: every usable core),
    each LAPACK call on one BLAS thread: the replicates do not depend on ``threads``. Two threads halve the
    smoke book's 9 bootstraps (17 s on one core; ``benchmarks/bench_metrics.py``).
    """
    n = len(originals)
    if n < 2 or any(len(s) != n for s in systems) or n_clusters(n, groups) < 2:
        raise ValueError("need ≥ 2 examples from ≥ 2 tracks, and the same examples for the originals and every system")
    centre = np.concatenate(originals).astype(np.float64).mean(axis=0)
    ref = ClipMoments.from_frames(originals, centre)
    sys_moments = [ClipMoments.from_frames(s, centre) for s in systems]
    weights = bootstrap_weights(n, n_boot, np.random.default_rng(seed), groups)
    out = np.empty((len(systems), n_boot))
    starts = range(0, n_boot, chunk)  # chunks bound memory: B·dim² floats per covariance batch
    workers = max(1, min(usable_cpus() if threads is None else threads, len(starts)))
    with single_threaded_blas():
        if workers == 1:
            for start in starts:
                _fill_fads(out, weights, ref, sys_moments, start, chunk)
        else:
            from concurrent.futures import ThreadPoolExecutor

            # numpy's LAPACK and BLAS calls release the GIL; each chunk writes its own columns of out
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda start: _fill_fads(out, weights, ref, sys_moments, start, chunk), starts))
    return out


def _fill_fads(out: np.ndarray, weights: np.ndarray, ref: ClipMoments, sys_moments: list[ClipMoments],
               start: int, chunk: int) -> None:
    """Write FAD(originals, system k) of the weighted draws ``start`` to ``start + chunk`` into ``out[k]``."""
    w = weights[start:start + chunk]
    mu_r, cov_r = ref.pooled(w)
    factor_r = psd_factor(cov_r)  # shared by all systems of this draw
    tr_r = np.trace(cov_r, axis1=-2, axis2=-1)
    for k, m in enumerate(sys_moments):
        mu_s, cov_s = m.pooled(w)
        diff = mu_r - mu_s
        out[k, start:start + len(w)] = ((diff * diff).sum(-1) + tr_r + np.trace(cov_s, axis1=-2, axis2=-1)
                                        - 2.0 * trace_sqrt_product(cov_r, cov_s, factor_r))


def fad_bootstrap_ci(originals: list[np.ndarray], generated: list[np.ndarray], n_boot: int = 1000,
                     level: float = 0.95, seed: int = 0, groups: Sequence[Hashable] | None = None) -> tuple[float, float]:
    """One cell's FAD interval (:func:`fad_cell_ci`), resampling examples or (``groups``) tracks."""
    units = n_clusters(len(originals), groups)
    if len(originals) < 2 or n_boot < 1 or units < 2:
        return (NAN, NAN)
    point = fad_from_embeddings(np.concatenate(originals), np.concatenate(generated)).value
    return fad_cell_ci(point, bootstrap_fads(originals, [generated], n_boot, seed, groups=groups)[0], units, level)


def fad_cell_ci(point: float, replicates: np.ndarray, n_units: int, level: float = 0.95) -> tuple[float, float]:
    """A system's FAD ± t · bootstrap SE (:func:`small_sample_ci`), at or above 0.

    Not the replicates' percentiles: a replicate repeats clips, which only raises FAD, so at a few
    tracks the draw that is the sample itself is near the bottom of the distribution and the point
    estimate sat at the lower end of its own percentile interval (in 16 of 30 simulated 3-track cells).
    """
    return small_sample_ci(point, replicates, n_units, level, bounds=(0.0, np.inf))


def fad_delta_ci(originals: list[np.ndarray], baseline: list[np.ndarray], finetuned: list[np.ndarray],
                 n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                 groups: Sequence[Hashable] | None = None) -> tuple[float, float]:
    """Paired interval of FAD(fine-tuned) − FAD(baseline) (:func:`small_sample_ci`), same example (or track)
    draws for both."""
    units = n_clusters(len(originals), groups)
    if len(originals) < 2 or n_boot < 1 or units < 2:
        return (NAN, NAN)
    reps = bootstrap_fads(originals, [baseline, finetuned], n_boot, seed, groups=groups)
    ref = np.concatenate(originals)
    point = fad_from_embeddings(ref, np.concatenate(finetuned)).value - fad_from_embeddings(ref, np.concatenate(baseline)).value
    return small_sample_ci(point, reps[1] - reps[0], units, level)

