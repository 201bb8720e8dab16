"""KL divergence between a classifier's label distributions on original and generated audio.

Convention of audiocraft (``audiocraft/metrics/kld.py``), which MusicGen's paper used:

- the classifier (PaSST on AudioSet) sees 32 kHz mono audio cut into consecutive non-overlapping
  10 s windows; windows of 0.15 s or less are dropped (see :mod:`.backends`);
- each window's label distribution is the softmax over the 527 logits;
- KL(p_original ‖ q_generated) = Σ p · (log p − log(q + ε)) with ε = 1e-6 on the generated side
  only, and 0 · log 0 = 0 (``torch.nn.functional.kl_div(log(q + ε), p)``);
- windows of the original and the generation are paired in order and their KLs averaged.

audiocraft averages over all window pairs of all clips at once; we average the window KLs per
clip pair first and then over the pairs of a cell, which is the same when clips have equal length
and gives every example equal weight otherwise.

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy

KL_EPS = 1e-6  # audiocraft's epsilon, added to the generated distribution before the log


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = KL_EPS) -> np.ndarray:
    """KL(p ‖ q) over the last axis, audiocraft-style (ε on q only, 0·log 0 = 0); broadcasts.

    Args:
        p: distributions of the originals, ``[..., classes]``.
        q: distributions of the generations, ``[..., classes]`` (broadcastable against ``p``).
        eps: added to ``q`` only.

    Returns:
        KL per distribution, ``[...]`` (the broadcast leading shape; a 0-d array for two ``[classes]``).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"distributions have different numbers of classes: {p.shape[-1]} vs {q.shape[-1]}")
    # xlogy keeps 0·log(anything) = 0 on both terms, so eps=0 with q = p = 0 gives 0, not NaN
    return (xlogy(p, p) - xlogy(p, q + eps)).sum(axis=-1)


def pair_kl(p_windows: np.ndarray, q_windows: np.ndarray, eps: float = KL_EPS) -> float:
    """KL(original ‖ generated) of one clip pair: window-by-window KL, averaged over aligned windows.

    ``p_windows``/``q_windows`` are ``[windows, classes]`` (or ``[classes]`` for one window). If the
    two clips yield different numbers of windows (different lengths), only the first
    ``min(Wp, Wq)`` windows are paired — audiocraft would refuse such a pair.
    """
    p = np.atleast_2d(np.asarray(p_windows, dtype=np.float64))
    q = np.atleast_2d(np.asarray(q_windows, dtype=np.float64))
    w = min(p.shape[0], q.shape[0])
    if w == 0:
        raise ValueError("a clip produced no classifier windows")
    return float(kl_divergence(p[:w], q[:w], eps).mean())


def symmetric_kl(p_windows: np.ndarray, q_windows: np.ndarray, eps: float = KL_EPS) -> float:
    """KL(p‖q) + KL(q‖p) of one clip pair (audiocraft's ``kld_both``)."""
    return pair_kl(p_windows, q_windows, eps) + pair_kl(q_windows, p_windows, eps)


def mean_kl(values: np.ndarray | list[float]) -> float:
    """The cell's KL: the mean of its per-pair KLs (NaN for an empty cell)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()) if v.size else float("nan")
