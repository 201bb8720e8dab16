"""Fréchet distance between Gaussians fitted to embeddings: FAD, its sample-size bias, FAD-∞.

FAD (Kilgour et al., 2019) fits one Gaussian to the per-frame embeddings of a reference set and
one to those of an evaluated set, pooled over all clips, and reports

    d² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½).

:func:`frechet_distance` follows the reference implementations (pytorch-fid → fadtk and
frechet-audio-distance): ``scipy.linalg.sqrtm`` of the product, an ``eps`` offset on both diagonals
when the product is singular, and a check that any imaginary part left by round-off is negligible.
:func:`frechet_distance_eig` computes the same quantity through symmetric eigendecompositions,
``Tr((Σ₁Σ₂)^½) = Σ √λ(Fᵀ Σ₂ F)`` for any factor Σ₁ = F Fᵀ (Cholesky or Σ₁^½); it is
batched and used by the bootstrap and FAD-∞.

FAD depends on how many frames were used (it is biased upward at small n), so every result carries
its sample counts, and :func:`fad_inf` extrapolates to n → ∞ as fadtk does (Gui et al., 2024).

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg

log = logging.getLogger(__name__)

FRECHET_EPS = 1e-6  # diagonal offset for a singular product, as in pytorch-fid / fadtk
IMAG_ATOL = 1e-3  # largest imaginary part on the diagonal of sqrtm accepted as round-off (reference value)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run BLAS/LAPACK on one thread: for many small (128×128) matrices, OpenBLAS threads only spin.

    Measured here: a 200-replicate FAD bootstrap took 13 s with OpenBLAS's default threads on a
    busy 2-core machine and 1.4 s single-threaded.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn (librosa); without it, just run
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class FrechetError(ValueError):
    """The Fréchet distance could not be computed reliably (e.g. a large imaginary component)."""


@dataclass(frozen=True)
class FadResult:
    """A Fréchet distance and the sample sizes it was computed from (FAD is biased by n)."""

    value: float
    n_a: int  # frames in the first (reference) set
    n_b: int  # frames in the second (evaluated) set
    dim: int

    def __float__(self) -> float:
        """The distance itself."""
        return self.value


@dataclass(frozen=True)
class FadInfResult:
    """FAD extrapolated to infinitely many frames (fadtk's FAD-∞): intercept of FAD against 1/n."""

    value: float  # the intercept, FAD-∞
    slope: float  # the bias coefficient: FAD_n ≈ value + slope / n
    r2: float  # goodness of the linear fit; low values mean the extrapolation is not trustworthy
    points: list[tuple[int, float]] = field(default_factory=list)  # (n frames, FAD_n) used in the fit


def embedding_stats(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of ``[n_frames, dim]`` embeddings (rows are observations)."""
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected embeddings of shape [frames, dim], got {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 frames to estimate a covariance, got {x.shape[0]}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _check_shapes(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> None:
    """Raise if the two Gaussians do not live in the same space."""
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors differ in length: {mu1.shape} vs {mu2.shape}")
    if sigma1.shape != sigma2.shape or sigma1.shape != (mu1.shape[0], mu1.shape[0]):
        raise ValueError(f"covariances {sigma1.shape}, {sigma2.shape} do not match the mean {mu1.shape}")


def _sqrtm_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> np.ndarray:
    """Real square root of Σ₁Σ₂, offsetting both diagonals by ``eps`` when the product is singular."""
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    bad_imag = np.iscomplexobj(covmean) and not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAG_ATOL)
    if not np.isfinite(covmean).all() or bad_imag:
        # The reference retries with the offset only for non-finite results; rank-deficient
        # covariances (fewer frames than dimensions) can also leave a large imaginary part, which
        # the same offset cures, so we retry then too before giving up.
        log.info("Fréchet distance: singular product; adding %g to the covariance diagonals", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAG_ATOL):
            m = float(np.max(np.abs(covmean.imag)))
            raise FrechetError(f"sqrtm(Σ₁Σ₂) has an imaginary component of {m:.3g}; covariances are ill-conditioned")
        covmean = covmean.real
    return covmean


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = FRECHET_EPS) -> float:
    """Squared Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂), computed as the reference implementations do."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    _check_shapes(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    with single_threaded_blas():
        covmean = _sqrtm_product(sigma1, sigma2, eps)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of (a batch of) positive semi-definite matrices via eigh."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


def psd_factor(sigma: np.ndarray) -> np.ndarray:
    """A factor F with Σ = F Fᵀ: Cholesky (cheap) of Σ + tiny jitter, or the eigh square root if that fails."""
    d = sigma.shape[-1]
    scale = np.trace(sigma, axis1=-2, axis2=-1)[..., None, None] / d
    try:
        # the jitter only makes exactly singular (rank-deficient) covariances factorisable; its
        # effect on the trace term is below the bootstrap's resolution
        return np.linalg.cholesky(sigma + 1e-12 * scale * np.eye(d))
    except np.linalg.LinAlgError:
        return psd_sqrt(sigma)


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, factor1: np.ndarray | None = None) -> np.ndarray:
    """Tr((Σ₁Σ₂)^½) for (batches of) PSD matrices, as Σ √λ(Fᵀ Σ₂ F) with Σ₁ = F Fᵀ (same spectrum as Σ₁Σ₂).

    Pass ``factor1`` (from :func:`psd_factor` or :func:`psd_sqrt`) to reuse it across several Σ₂.
    """
    f = psd_factor(sigma1) if factor1 is None else factor1
    # numpy's stacked @ reaches BLAS per matrix: 8.8 ms for 64 products of 128x128 against 20.6 for a loop of 2-D
    # products (one thread); the bootstrap's replicates are the same to the bit either way
    m = np.swapaxes(f, -1, -2) @ (sigma2 @ f)
    m = 0.5 * (m + np.swapaxes(m, -1, -2))  # symmetrise away round-off so eigvalsh sees a symmetric matrix
    return np.sqrt(np.clip(np.linalg.eigvalsh(m), 0.0, None)).sum(axis=-1)


def frechet_distance_eig(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> np.ndarray:
    """Squared Fréchet distance via a factor of Σ₁ and a symmetric eigenvalue problem; batches over leading axes."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    diff = mu1 - mu2
    tr = np.trace(sigma1, axis1=-2, axis2=-1) + np.trace(sigma2, axis1=-2, axis2=-1)
    return (diff * diff).sum(-1) + tr - 2.0 * trace_sqrt_product(sigma1, sigma2)


def fad_from_embeddings(a: np.ndarray, b: np.ndarray, eps: float = FRECHET_EPS) -> FadResult:
    """FAD between two pooled sets of per-frame embeddings ``[frames, dim]``, with the frame counts."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected two [frames, dim] arrays with the same dim, got {a.shape} and {b.shape}")
    if min(a.shape[0], b.shape[0]) < 2:
        return FadResult(float("nan"), int(a.shape[0]), int(b.shape[0]), int(a.shape[1]))
    mu_a, cov_a = embedding_stats(a)
    mu_b, cov_b = embedding_stats(b)
    value = frechet_distance(mu_a, cov_a, mu_b, cov_b, eps)
    return FadResult(value, int(a.shape[0]), int(b.shape[0]), int(a.shape[1]))


def _fad_curve(reference: np.ndarray, evaluated: np.ndarray, ns: list[int], seed: int) -> list[tuple[int, float]]:
    """FAD of all reference frames against ``n`` evaluated frames drawn with replacement, for each n."""
    mu_r, cov_r = embedding_stats(reference)
    factor_r = psd_factor(cov_r)
    rng = np.random.default_rng(seed)
    points = []
    for n in ns:
        sub = evaluated[rng.integers(0, evaluated.shape[0], size=n)].astype(np.float64)
        mu_e, cov_e = sub.mean(axis=0), np.cov(sub, rowvar=False)
        diff = mu_r - mu_e
        fd = diff @ diff + np.trace(cov_r) + np.trace(cov_e) - 2.0 * trace_sqrt_product(cov_r, cov_e, factor_r)
        points.append((n, float(fd)))
    return points


def fad_inf(reference: np.ndarray, evaluated: np.ndarray, steps: int = 25, min_n: int = 500,
            seed: int = 0) -> FadInfResult:
    """FAD-∞ as fadtk computes it: FAD at ``steps`` frame counts from ``min_n`` to all, linear fit in 1/n.

    As in fadtk, the reference statistics use all its frames; the evaluated frames are drawn with
    replacement at each n. Unlike fadtk the draw is seeded, and ``min_n`` is lowered to a fifth of
    the available frames (at least 2) when a cell has fewer than ``2 * min_n`` frames.
    """
    reference, evaluated = np.asarray(reference), np.asarray(evaluated)
    max_n = int(evaluated.shape[0])
    if reference.shape[0] < 2 or max_n < 4:
        return FadInfResult(float("nan"), float("nan"), float("nan"), [])
    lo = min_n if max_n >= 2 * min_n else max(2, max_n // 5)
    ns = sorted({int(n) for n in np.linspace(lo, max_n, steps)})
    with single_threaded_blas():
        points = _fad_curve(reference, evaluated, ns, seed)
    xs = 1.0 / np.array([p[0] for p in points], dtype=np.float64)
    ys = np.array([p[1] for p in points])
    if len(points) < 2:
        return FadInfResult(float(ys[0]), float("nan"), float("nan"), points)
    slope, intercept = np.polyfit(xs, ys, 1)
    ss_tot = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ys - (slope * xs + intercept)) ** 2)) / ss_tot if ss_tot > 0 else 1.0
    return FadInfResult(float(intercept), float(slope), r2, points)
