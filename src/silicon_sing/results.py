"""What the evaluation chapter and the prose pages say about the metrics, computed not typed.

Formats Table 1 for reading (value and interval in one cell, published figures beside), and
turns the paired deltas into the counts and directions the analysis quotes via ``glue``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from .metrics.stats import CellResult, DeltaResult
from .params import CATEGORIES


def _fmt(x: Any, digits: int) -> str:
    """A number with ``digits`` decimals, or an em dash for missing values."""
    try:
        if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
            return "—"
    except (TypeError, ValueError):
        pass
    return f"{float(x):.{digits}f}"


def table1_display(t1: pd.DataFrame, digits: dict[str, int] | None = None) -> pd.DataFrame:
    """Table 1 with 'value [low, high]' cells, n per system, and a 'published' column per metric."""
    digits = digits or {"KL": 3, "FAD": 2}
    out = pd.DataFrame(index=t1.index)
    systems = list(dict.fromkeys(t1.columns.get_level_values("system")))
    for s in systems:
        if (s, "n", "ours") in t1.columns:
            out[(s, "n")] = t1[(s, "n", "ours")].map(lambda v: "—" if pd.isna(v) else str(int(v)))
        for m, d in digits.items():
            if (s, m, "ours") not in t1.columns:
                continue
            ours = t1[(s, m, "ours")]
            if (s, m, "ci_low") in t1.columns:
                lo, hi = t1[(s, m, "ci_low")], t1[(s, m, "ci_high")]
                out[(s, m)] = [f"{_fmt(v, d)} [{_fmt(a, d)}, {_fmt(b, d)}]" if not pd.isna(v) else "—"
                               for v, a, b in zip(ours, lo, hi)]
            else:
                out[(s, m)] = ours.map(lambda v: _fmt(v, d))
            if (s, m, "published") in t1.columns:
                out[(s, f"{m} (paper)")] = t1[(s, m, "published")].map(lambda v: _fmt(v, 2))
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["system", "column"])
    return out


def delta_summary(deltas: Iterable[DeltaResult]) -> dict[str, dict[str, Any]]:
    """Per category and metric: cells, how many improved (delta < 0), how many with CI below/above 0."""
    out: dict[str, dict[str, Any]] = {}
    for d in deltas:
        s = out.setdefault(f"{d.category}_{d.metric}", {"cells": 0, "lower": 0, "sig_lower": 0, "sig_higher": 0,
                                                        "mean_delta": 0.0})
        s["cells"] += 1
        s["lower"] += d.delta < 0
        s["sig_lower"] += d.ci[1] < 0
        s["sig_higher"] += d.ci[0] > 0
        s["mean_delta"] += d.delta
    for s in out.values():
        s["mean_delta"] /= max(s["cells"], 1)
    return out


def direction_sentence(summary: dict[str, Any], metric: str) -> str:
    """How many cells moved which way, e.g. 'KL fell for 2 of 3 artists (for 1 the whole interval is below zero)'."""
    if not summary:
        return f"no {metric} comparison was possible"
    n, lower = summary["cells"], summary["lower"]
    extra = []
    if summary["sig_lower"]:
        extra.append(f"for {summary['sig_lower']} the whole interval is below zero")
    if summary["sig_higher"]:
        extra.append(f"for {summary['sig_higher']} it rose, the whole interval above zero")
    tail = f" ({'; '.join(extra)})" if extra else " (no interval excludes zero)"
    return f"{metric} fell for {lower} of {n} artists{tail}"


def glue_values(cells: list[CellResult], deltas: list[DeltaResult]) -> dict[str, str]:
    """Every number the prose quotes about the results, as display strings keyed by glue name."""
    vals: dict[str, str] = {}
    summ = delta_summary(deltas)
    for cat in CATEGORIES:
        for metric, label in (("kl", "KL"), ("fad", "FAD")):
            s = summ.get(f"{cat}_{metric}", {})
            vals[f"{cat}_{metric}_direction"] = direction_sentence(s, label)
            vals[f"{cat}_{metric}_mean_delta"] = _fmt(s.get("mean_delta", float("nan")), 3 if metric == "kl" else 2)
    ns = [c.n for c in cells]
    vals["n_min"] = str(min(ns)) if ns else "0"
    vals["n_max"] = str(max(ns)) if ns else "0"
    vals["n_cells"] = str(len({(c.artist, c.category) for c in cells}))
    return vals


def voicing_table(generations: Iterable[Any], sr: int = 32000) -> pd.DataFrame:
    """Voiced-frame fraction and median f0 of the continuation part: original vs each system.

    A crude, honest proxy for 'does it still sing': a continuation that keeps a pitched voice has
    voiced frames near the original's fraction and a median f0 near the artist's register.
    """
    import numpy as np

    from . import audio as au
    from .synth import estimate_f0

    def stats(path: str, skip: float) -> tuple[float, float]:
        x, file_sr = au.load_audio(path)
        y = au.resample(au.to_mono(x), file_sr, sr)[int(round(skip * sr)):]
        f0 = estimate_f0(y, sr)
        voiced = f0[np.isfinite(f0)]
        return (len(voiced) / max(len(f0), 1), float(np.median(voiced)) if len(voiced) else float("nan"))

    rows, seen = [], set()
    for g in generations:
        if g.example_id not in seen:
            seen.add(g.example_id)
            v, f = stats(g.original, g.prompt_seconds)
            rows.append(dict(category=g.category, artist=g.artist, source="original", voiced=v, f0=f))
        v, f = stats(g.generated, g.prompt_seconds)
        rows.append(dict(category=g.category, artist=g.artist, source=g.system, voiced=v, f0=f))
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    out = df.groupby(["category", "artist", "source"]).agg(voiced=("voiced", "mean"), f0_median=("f0", "median"),
                                                           n=("voiced", "size"))
    return out.reset_index()
