"""The A/A control: do the intervals of a change exclude zero when nothing changed?

The study's verdicts rest on paired intervals of fine-tuned − baseline over an artist's few test
tracks. Whether such an interval is honest can be checked without any theory: let the baseline
continue every test prompt a second time, under other seeds (:data:`silicon_sing.generate.RESEEDED`),
and run exactly the evaluation of fine-tuned − baseline on reseeded − baseline. Nothing differs but
the sampling noise, so an interval at level 95 % should exclude zero in about 5 % of the
(artist, stem type, metric) cells; many more means the real verdicts' intervals are too narrow too.
The size of these null changes is also the yardstick for the real ones: a fine-tune whose changes are
no larger than reseeding's has not been shown to do anything.

Run by notebook 04 for the stem types in ``evaluate.null_control`` (one more generation pass each),
or afterwards on a finished run::

    python -m silicon_sing.metrics.null_control --params params/paper.yaml [--categories instrumental]

It writes ``<run_dir>/metrics/null_control_metrics.json`` (the full report, as ``metrics.json``) and
``<run_dir>/metrics/null_control.json`` (:class:`NullControl`).

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data import held_out_examples
from ..fsutil import atomic_write_json, read_json, run_lock
from ..generate import BASELINE, RESEEDED, run_generation, stale_generations
from ..params import CATEGORIES, CATEGORY_ORDER, Params, load_params
from .evaluation import evaluate_with_params, jsonable
from .stats import DeltaResult

METRICS = ("kl", "fad")


@dataclass(frozen=True)
class NullCell:
    """One (artist, stem type, metric) of the control: the change reseeded − baseline and its interval."""

    artist: str
    category: str
    metric: str  # "kl" or "fad"
    delta: float
    ci: tuple[float, float]
    n_tracks: int

    @property
    def testable(self) -> bool:
        """Whether the cell has an interval (two test tracks or more)."""
        return all(math.isfinite(x) for x in self.ci)

    @property
    def excludes_zero(self) -> bool:
        """A false alarm: the interval lies wholly on one side of zero although nothing changed."""
        return self.testable and (self.ci[0] > 0 or self.ci[1] < 0)


@dataclass
class NullControl:
    """What the A/A control found, per metric: false alarms against what chance allows."""

    categories: list[str]
    level: float  # the intervals' level; 1 − level is the false-alarm rate an honest interval has
    cells: list[NullCell]
    real_median_abs_change: dict[str, float] = field(default_factory=dict)  # metric → fine-tuning's, if known

    def testable(self, metric: str) -> list[NullCell]:
        """The cells of ``metric`` that have an interval."""
        return [c for c in self.cells if c.metric == metric and c.testable]

    def false_alarms(self, metric: str) -> int:
        """How many of ``metric``'s intervals excluded zero."""
        return sum(c.excludes_zero for c in self.testable(metric))

    def p_value(self, metric: str) -> float:
        """Chance of at least this many false alarms if every interval were honest (binomial, 1 − level)."""
        return binomial_tail(self.false_alarms(metric), len(self.testable(metric)), 1 - self.level)

    def median_abs_change(self, metric: str) -> float:
        """Median |reseeded − baseline| over the cells of ``metric``: the size of a change that is only noise."""
        return median_abs_change(self.cells).get(metric, math.nan)

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON form (NaN → null) with the per-metric summary beside the cells."""
        summary = {m: {"testable": len(self.testable(m)), "false_alarms": self.false_alarms(m),
                       "expected_rate": 1 - self.level, "p_value": self.p_value(m),
                       "median_abs_change": self.median_abs_change(m),
                       "real_median_abs_change": self.real_median_abs_change.get(m, math.nan)} for m in METRICS}
        return jsonable({"categories": self.categories, "level": self.level, "summary": summary,
                         "cells": [dataclasses.asdict(c) for c in self.cells]})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NullControl:
        """Inverse of :meth:`to_dict` (JSON ``null`` → NaN)."""
        def num(v: Any) -> float:
            return math.nan if v is None else float(v)

        cells = [NullCell(c["artist"], c["category"], c["metric"], num(c["delta"]),
                          (num(c["ci"][0]), num(c["ci"][1])), int(c["n_tracks"])) for c in d["cells"]]
        real = {m: num(s.get("real_median_abs_change")) for m, s in d.get("summary", {}).items()}
        return cls(list(d["categories"]), float(d["level"]), cells,
                   {m: v for m, v in real.items() if math.isfinite(v)})


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p); 1 for k ≤ 0."""
    if k <= 0:
        return 1.0
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def median_abs_change(deltas: Sequence[DeltaResult | NullCell],
                      categories: Sequence[str] | None = None) -> dict[str, float]:
    """Median |delta| per metric over ``deltas`` (only ``categories``, when given), metrics with a finite one."""
    out = {}
    for m in METRICS:
        values = [abs(d.delta) for d in deltas if d.metric == m and math.isfinite(d.delta)
                  and (categories is None or d.category in categories)]
        if values:
            out[m] = statistics.median(values)
    return out


def summarise_null_control(deltas: Sequence[DeltaResult], level: float,
                           real: Sequence[DeltaResult] = ()) -> NullControl:
    """The control from the deltas reseeded − baseline (an :func:`~.evaluation.evaluate` of the two systems).

    ``real``: the run's fine-tuned − baseline deltas, for the sizes of the changes the study reports
    beside those of noise (same stem types only).
    """
    cells = [NullCell(d.artist, d.category, d.metric, d.delta, (float(d.ci[0]), float(d.ci[1])), d.n_tracks)
             for d in deltas]
    categories = [c for c in CATEGORY_ORDER if any(x.category == c for x in cells)]
    return NullControl(categories, level, cells, median_abs_change(real, categories))


def control_categories(params: Params, categories: Sequence[str] | None = None) -> list[str]:
    """The stem types to control: ``categories`` or ``evaluate.null_control``, in the paper's order."""
    chosen = set(params.evaluate.null_control if categories is None else categories)
    unknown = sorted(chosen - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown stem type(s) {unknown} for the null control: expected some of {list(CATEGORIES)}")
    return [c for c in CATEGORY_ORDER if c in chosen]


def run_null_control(params: Params, categories: Sequence[str] | None = None, real: Sequence[DeltaResult] = (),
                     progress: bool = True) -> NullControl:
    """Generate the reseeded baseline where missing, evaluate it against the baseline, write both JSON files.

    Baseline continuations already on disk are reused, never replaced: if any was made with other
    settings or another model than ``params`` give, this raises before generating anything. Missing
    ones are generated (a fresh run). The run's own ``metrics.json`` is not touched. Under
    ``evaluate.gen_nproc`` > 1 the generation runs over torchrun ranks like the study's own.
    """
    cats = control_categories(params, categories)
    if not cats:
        raise ValueError("no stem type to control: set evaluate.null_control (e.g. [instrumental]) in "
                         f"{params.source or 'the parameter file'}, or pass categories")
    stale = stale_generations(params, BASELINE, held_out_examples(params, cats))
    if stale:  # generating would overwrite the study's own baseline with another one
        raise ValueError(
            f"{len(stale)} baseline continuations under {params.run.generations} were made with other sampling "
            f"settings or another model than {params.source or 'these parameters'} (overrides {params.overrides}) "
            f"give, e.g. {stale[0]}: the control samples the run's own baseline again. Pass the run's own "
            "parameter file and overrides (make null-control PARAMS=... RUN_DIR=...), or rerun notebook 04 first")
    gens = run_generation(params, cats, systems=(BASELINE, RESEEDED), progress=progress)
    report = evaluate_with_params(gens, params, progress=progress, out=params.run.null_control_metrics,
                                  finetuned=RESEEDED)
    control = summarise_null_control(report.deltas, params.evaluate.ci_level, real)
    atomic_write_json(params.run.null_control, control.to_dict())
    return control


def read_null_control(params: Params) -> NullControl | None:
    """The control a run recorded, or None."""
    path = params.run.null_control
    return NullControl.from_dict(read_json(path)) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    """Run the control on a finished (or fresh) run and print its summary."""
    ap = argparse.ArgumentParser(prog="python -m silicon_sing.metrics.null_control", description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", required=True, help="the run's parameter file")
    ap.add_argument("--overrides", default="{}", help="dotted keys as JSON, as for the pipeline")
    ap.add_argument("--categories", nargs="+", default=None, choices=CATEGORIES,
                    help="stem types to control (default: evaluate.null_control, else all three)")
    args = ap.parse_args(argv)
    params = load_params(args.params, json.loads(args.overrides))
    cats = args.categories or params.evaluate.null_control or list(CATEGORIES)
    real = []
    if params.run.metrics_json.exists():
        from .evaluation import read_metrics

        real = read_metrics(params.run.metrics_json).deltas
    # notebook 04 writes the same files: one writer per run dir, as the pipeline's own lock says
    with run_lock(params.run.notebooks_lock, f"the A/A control on {params.run.root}"):
        control = run_null_control(params, cats, real)
    for m in METRICS:
        n = len(control.testable(m))
        real_size = control.real_median_abs_change.get(m)
        print(f"{m.upper()}: {control.false_alarms(m)} of {n} intervals excluded zero with nothing changed "
              f"(expected {100 * (1 - control.level):.0f} %; P(at least this many) = {control.p_value(m):.2f}); "
              f"median |change| {control.median_abs_change(m):.4g}, fine-tuning's "
              + (f"{real_size:.4g}" if real_size is not None else "unknown (no metrics.json yet)"))
    print(f"written: {params.run.null_control} (the book shows the control notebook 04 ran)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
