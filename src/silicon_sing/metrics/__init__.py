"""Stage 04 metrics: KL divergence (PaSST label distributions) and FAD (VGGish embeddings), honestly.

Modules:

- :mod:`.backends` — label-distribution and embedding backends: "passt", "vggish" (paper profile,
  real models) and "spectral-classes", "mel-stats" (smoke profile, model-free stand-ins).
- :mod:`.kl` — KL(original ‖ generated) in audiocraft's convention.
- :mod:`.frechet` — Fréchet distance (reference sqrtm algorithm), FAD, FAD-∞ (fadtk).
- :mod:`.cache` — per-file cache of embeddings/distributions under ``<run_dir>/metrics/cache``.
- :mod:`.stats` — bootstrap intervals, paired deltas, :class:`CellResult`, :class:`DeltaResult`.
- :mod:`.evaluation` — file pairs → cells and deltas → metrics JSON.
- :mod:`.table` — Table 1 in the paper's layout with the published figures; tidy frames for plots.

Typical use (notebook 04)::

    from silicon_sing import metrics as M
    kl_b, fad_b = M.backends_from_params(params.evaluate)
    report = M.evaluate(pairs, kl_b, fad_b, M.default_cache_dir(params.run_dir),
                        n_boot=params.evaluate.bootstrap, seed=params.seed,
                        out=params.run.metrics / "metrics.json")   # a rerun with unchanged inputs reads it back
    # or, equivalently: report = M.evaluate_with_params(pairs, params)
    M.table1(report.cells, ci=True); M.delta_table(report.deltas); M.cells_frame(report.cells)
"""

from .backends import (
    EMBEDDING_BACKENDS,
    PASST_WEIGHTS,
    PROBABILITY_BACKENDS,
    VGGISH_WEIGHTS,
    EmbeddingBackend,
    MelStatsEmbedding,
    MissingWeightsError,
    PasstBackend,
    ProbabilityBackend,
    SpectralClassesBackend,
    VggishBackend,
    get_embedding_backend,
    get_probability_backend,
)
from .cache import cached_embed, cached_probs, cached_window_probs, default_cache_dir
from .evaluation import (
    BASELINE,
    FINETUNED,
    EvalPair,
    MetricsReport,
    PairFeatures,
    analyse_features,
    backends_from_params,
    cells_from_features,
    compute_features,
    deltas_from_features,
    evaluate,
    evaluate_cells,
    evaluate_deltas,
    evaluate_with_params,
    inputs_fingerprint,
    read_metrics,
    write_metrics,
)
from .frechet import (
    FadInfResult,
    FadResult,
    FrechetError,
    embedding_stats,
    fad_from_embeddings,
    fad_inf,
    frechet_distance,
    frechet_distance_eig,
)
from .kl import KL_EPS, kl_divergence, mean_kl, pair_kl, symmetric_kl
from .stats import (
    CellResult,
    DeltaResult,
    bootstrap_mean_ci,
    fad_bootstrap_ci,
    fad_delta_ci,
    paired_delta_ci,
)
from .table import PUBLISHED_TABLE1, cells_frame, delta_table, load_published_table1, table1

__all__ = [
    "BASELINE", "FINETUNED", "EMBEDDING_BACKENDS", "PROBABILITY_BACKENDS", "PASST_WEIGHTS", "VGGISH_WEIGHTS",
    "PUBLISHED_TABLE1", "KL_EPS",
    "EmbeddingBackend", "ProbabilityBackend", "MelStatsEmbedding", "SpectralClassesBackend", "PasstBackend",
    "VggishBackend", "MissingWeightsError", "get_embedding_backend", "get_probability_backend",
    "cached_embed", "cached_probs", "cached_window_probs", "default_cache_dir",
    "EvalPair", "MetricsReport", "PairFeatures", "analyse_features", "backends_from_params", "compute_features",
    "cells_from_features", "deltas_from_features", "evaluate", "evaluate_cells", "evaluate_deltas", "evaluate_with_params",
    "inputs_fingerprint",
    "read_metrics", "write_metrics",
    "FadInfResult", "FadResult", "FrechetError", "embedding_stats", "fad_from_embeddings", "fad_inf",
    "frechet_distance", "frechet_distance_eig",
    "kl_divergence", "mean_kl", "pair_kl", "symmetric_kl",
    "CellResult", "DeltaResult", "bootstrap_mean_ci", "fad_bootstrap_ci", "fad_delta_ci", "paired_delta_ci",
    "cells_frame", "delta_table", "load_published_table1", "table1",
]
