"""Stage 04 metrics: KL divergence (PaSST label distributions) and FAD (VGGish embeddings), honestly.

Notebook: notebooks/04_evaluate.ipynb

The package exports the entry points a reader needs (below); everything else is imported from its
module, one hop away:

- :mod:`.evaluation` — file pairs → cells and deltas → metrics JSON (:func:`evaluate_with_params`).
- :mod:`.kl` — KL(original ‖ generated) in audiocraft's convention.
- :mod:`.frechet` — Fréchet distance (reference sqrtm algorithm), FAD, FAD-∞ (fadtk).
- :mod:`.stats` — bootstrap intervals, paired deltas, :class:`~.stats.CellResult`, :class:`~.stats.DeltaResult`.
- :mod:`.table` — Table 1 in the paper's layout with the published figures; tidy frames for plots.
- :mod:`.cache` — per-file cache of embeddings/distributions under ``<run_dir>/metrics/cache``.
- :mod:`.backends` — the backends by name: "passt", "vggish" (paper profile, real models:
  :mod:`.passt`, :mod:`.vggish`, weights in :mod:`.weights`) and "spectral-classes", "mel-stats"
  (smoke profile, model-free stand-ins); interfaces in :mod:`.base`, audio front end in :mod:`.spectral`.

Typical use (notebook 04)::

    from silicon_sing.metrics import cells_frame, delta_table, evaluate_with_params
    report = evaluate_with_params(generations, params)  # writes params.run.metrics_json; a rerun reads it back
    table1(report.cells, ci=True); delta_table(report.deltas); cells_frame(report.cells)
"""

from .evaluation import EvalPair, MetricsReport, evaluate, evaluate_with_params, read_metrics
from .frechet import fad_from_embeddings
from .kl import kl_divergence
from .table import cells_frame, delta_table, load_published_table1, table1

__all__ = [
    "evaluate_with_params", "evaluate", "EvalPair", "MetricsReport", "read_metrics",
    "kl_divergence", "fad_from_embeddings",
    "table1", "delta_table", "cells_frame", "load_published_table1",
]
