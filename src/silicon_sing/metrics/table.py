"""Table 1 in the paper's layout, with the published figures beside ours, and tidy frames for plots.

The published Table 1 (KL and FAD per model, category and artist) ships with the package as
``silicon_sing/assets/table1_published.csv``; its categories use our names (the paper's
"Complete" and "Full Song" rows are both ``full``). The paper states neither n, the split nor
the prompt length, so its numbers are a reference, not a like-for-like comparison.

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..generate import SYSTEMS
from ..names import match_key
from ..params import CATEGORY_ORDER
from .stats import CellResult, DeltaResult

PUBLISHED_TABLE1 = Path(__file__).resolve().parent.parent / "assets" / "table1_published.csv"
METRICS = (("kl", "KL"), ("fad", "FAD"))


def load_published_table1(path: str | os.PathLike[str] = PUBLISHED_TABLE1) -> pd.DataFrame:
    """The published Table 1 as a frame with columns model, category, artist, kl, fad."""
    df = pd.read_csv(path)
    missing = {"model", "category", "artist", "kl", "fad"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    return df


def _category_key(c: str) -> tuple[int, str]:
    """Sort categories in the paper's order."""
    return (CATEGORY_ORDER.index(c) if c in CATEGORY_ORDER else len(CATEGORY_ORDER), c)


def _frame(rows: dict, index: list[tuple[str, str]], columns: Sequence[tuple[str, ...]], names: list[str]) -> pd.DataFrame:
    """A (category, artist) × MultiIndex-column frame; missing entries are NaN."""
    data = [[rows[i].get(col, np.nan) for col in columns] for i in index]
    idx = pd.MultiIndex.from_tuples(index, names=["category", "artist"]) if index else \
        pd.MultiIndex.from_arrays([[], []], names=["category", "artist"])
    df = pd.DataFrame(data, index=idx, columns=pd.MultiIndex.from_tuples(columns, names=names), dtype=float)
    for col in columns:
        if "n" in col:  # sample counts stay integers (nullable: a missing system has none)
            df[col] = df[col].astype("Int64")
    return df


def table1(cell_results: Iterable[CellResult], published_csv: str | os.PathLike[str] | None = PUBLISHED_TABLE1,
           ci: bool = False, include_n: bool = True, artist_aliases: dict[str, str] | None = None,
           published_rows: str = "all") -> pd.DataFrame:
    """Table 1: rows (category, artist), columns (system, metric, source) with source "ours"/"published".

    ``ci=True`` adds "ci_low"/"ci_high" beside "ours"; ``include_n`` adds (system, "n", "ours").
    Our artists are matched to the published ones by :func:`silicon_sing.names.match_key`, or through
    ``artist_aliases`` {our name: published name}. ``published_rows="all"`` keeps published artists
    we have no results for (their "ours" cells empty); "matched" keeps only our artists.
    ``published_csv=None`` leaves the published column out.
    """
    cells = list(cell_results)
    aliases = {match_key(k): match_key(v) for k, v in (artist_aliases or {}).items()}
    pub = load_published_table1(published_csv) if published_csv is not None else None
    pub_names = {match_key(a): a for a in pub["artist"]} if pub is not None else {}

    def label(artist: str) -> str:
        """Row label of one of our artists: the published spelling when it is a published artist."""
        s = aliases.get(match_key(artist), match_key(artist))
        return pub_names.get(s, artist)

    rows: dict[tuple[str, str], dict[tuple[str, str, str], float]] = {}
    for c in cells:
        row = rows.setdefault((c.category, label(c.artist)), {})
        for key, name in METRICS:
            row[(c.system, name, "ours")] = getattr(c, key)
            if ci:
                lo, hi = getattr(c, f"{key}_ci")
                row[(c.system, name, "ci_low")], row[(c.system, name, "ci_high")] = lo, hi
        if include_n:
            row[(c.system, "n", "ours")] = c.n
    if pub is not None:
        for r in pub.itertuples(index=False):
            if published_rows == "matched" and (r.category, r.artist) not in rows:
                continue
            row = rows.setdefault((r.category, r.artist), {})
            for key, name in METRICS:
                row[(r.model, name, "published")] = float(getattr(r, key))
    systems = list(SYSTEMS) + sorted({c.system for c in cells} - set(SYSTEMS))
    sources = ["ours"] + (["ci_low", "ci_high"] if ci else []) + (["published"] if pub is not None else [])
    columns = []
    for s in systems:
        if include_n:
            columns.append((s, "n", "ours"))
        columns += [(s, name, src) for _, name in METRICS for src in sources]
    index = sorted(rows, key=lambda k: (_category_key(k[0]), k[1].lower()))
    return _frame(rows, index, columns, ["system", "metric", "source"])


def cells_frame(cell_results: Iterable[CellResult]) -> pd.DataFrame:
    """Tidy frame for plots: one row per (cell, metric) with value, ci_low, ci_high, n, n_frames."""
    rows = []
    for c in cell_results:
        for metric, value, (lo, hi) in (("KL", c.kl, c.kl_ci), ("FAD", c.fad, c.fad_ci),
                                        ("FAD-inf", c.fad_inf, (np.nan, np.nan))):
            rows.append(dict(category=c.category, artist=c.artist, system=c.system, metric=metric, value=value,
                             ci_low=lo, ci_high=hi, n=c.n, n_frames_original=c.n_frames_original,
                             n_frames_generated=c.n_frames_generated))
    return pd.DataFrame(rows)


def delta_table(deltas: Iterable[DeltaResult]) -> pd.DataFrame:
    """Deltas fine-tuned − baseline: rows (category, artist), columns (metric, field)."""
    rows: dict[tuple[str, str], dict[tuple[str, str], float]] = {}
    for d in deltas:
        row = rows.setdefault((d.category, d.artist), {})
        name = dict(METRICS).get(d.metric, d.metric)
        row.update({(name, "n"): d.n, (name, "baseline"): d.baseline, (name, "fine-tuned"): d.finetuned,
                    (name, "delta"): d.delta, (name, "ci_low"): d.ci[0], (name, "ci_high"): d.ci[1]})
    columns = [(name, f) for _, name in METRICS for f in ("n", "baseline", "fine-tuned", "delta", "ci_low", "ci_high")]
    index = sorted(rows, key=lambda k: (_category_key(k[0]), k[1].lower()))
    return _frame(rows, index, columns, ["metric", "field"])
