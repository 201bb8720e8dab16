"""What the evaluation chapter and the prose pages say about the metrics, computed not typed.

Kept as one module of ~630 lines: every sentence and table the chapters quote about stage 04's
numbers lives here, so a reader checks each claim against one file.

Formats Table 1 for reading — ours in the paper's layout (KL and FAD per system, the paired change
with its interval), the published table as its own table, and one comparison of directions — and
turns the paired deltas into the counts, directions, detectable changes and verdicts the analysis
quotes via ``glue``; states the musicality targets (:mod:`silicon_sing.metrics.musicality`)
and whether they were met. Every interval is over test *tracks* (see :mod:`silicon_sing.metrics.stats`).
The voicing check tracks f0 with :func:`silicon_sing.music.estimate_f0` (via :mod:`silicon_sing.metrics.musicality`).

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from .generate import SYSTEMS, Generation
from .metrics.evaluation import track_of
from .metrics.musicality import FADES_DB, ROUND_TRIP, SOURCES, continuation, voicing
from .metrics.null_control import METRICS, NullCell, NullControl, median_abs_change
from .metrics.stats import CellResult, DeltaResult, bootstrap_mean_ci, detectable_change
from .params import CATEGORIES, CATEGORY_ORDER

METRIC_LABELS = {"kl": "KL", "fad": "FAD"}
DIGITS = {"kl": 3, "fad": 1}
PUBLISHED_DIGITS = {"kl": 2, "fad": 2}
REAL_BACKENDS = {"kl": "passt", "fad": "vggish"}  # the paper's classifiers: only then are our units its units
MINUS = "\u2212"
PCT = "\u00a0%"  # a number and its per-cent sign never part at a line break


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
                out[(s, m)] = ours.map(lambda v, d=d: _fmt(v, d))
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
    fell = f"for none of the {n} artists" if lower == 0 else f"for {lower} of {n} artists"
    return f"{metric} fell {fell}{tail}"


def count_phrase(counts: Iterable[int], unit: str, plural: str | None = None) -> str:
    """'4 examples', '1 example' or 'between 3 and 6 examples' — never 'between 4 and 4'."""
    ns = sorted(int(n) for n in counts)
    many = plural or f"{unit}s"
    if not ns:
        return f"no {many}"
    lo, hi = ns[0], ns[-1]
    if lo == hi:
        return f"{lo} {unit if lo == 1 else many}"
    return f"between {lo} and {hi} {many}"


def signed(x: float, digits: int) -> str:
    """A signed number with a true minus sign (−0.012, +0.034); a dash when missing."""
    if x is None or not math.isfinite(x):
        return "—"
    text = f"{x:+.{digits}f}"
    return text.replace("-", MINUS)


def _interval(ci: tuple[float, float], digits: int) -> str:
    """'[−0.05, +0.03]'."""
    return f"[{signed(ci[0], digits)}, {signed(ci[1], digits)}]"


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
    vals["n_examples_phrase"] = count_phrase(ns, "example")
    vals["n_tracks_phrase"] = count_phrase([c.n_tracks for c in cells], "test track")
    vals["n_segments_phrase"] = count_phrase([c.n_segments for c in cells], "segment")
    return vals


# --------------------------------------------------------------------------- Table 1, three views


def _html_table(df: pd.DataFrame, caption: str, cls: str) -> str:
    """A DataFrame (cells already formatted, HTML allowed) as a captioned table of class ``cls``."""
    body = df.to_html(escape=False, border=0, classes=["silicon-table", cls], na_rep="—", index_names=False)
    body = body.replace("<table ", f"<table aria-label=\"{html.escape(caption)}\" ", 1)
    return (f'<div class="silicon-table-wrap"><p class="silicon-table-caption">{caption}</p>{body}</div>')


def _stem_artist_key(k: tuple[str, str]) -> tuple[int, str]:
    """The paper's order: instrumental, acapella, full; then artist."""
    return (CATEGORY_ORDER.index(k[0]) if k[0] in CATEGORY_ORDER else 99, k[1].lower())


def _grouped_html(df: pd.DataFrame, caption: str, cls: str, row_label: str = "artist") -> str:
    """A (stem, ``row_label``)-indexed frame as HTML, stems as full-width group rows (a stem column would
    cost the width the numbers need); two-level columns get a second header row for their groups."""
    cols = list(df.columns)
    head = []
    if isinstance(df.columns, pd.MultiIndex):
        top = list(dict.fromkeys(c[0] for c in cols))
        head.append("<th></th>" + "".join(
            f'<th colspan="{sum(c[0] == t for c in cols)}">{html.escape(t)}</th>' for t in top))
    leaves = [c[1] if isinstance(c, tuple) else c for c in cols]
    head.append(f"<th>{html.escape(row_label)}</th>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in leaves))
    body = []
    for stem in dict.fromkeys(df.index.get_level_values(0)):
        body.append(f'<tr class="group"><th colspan="{len(cols) + 1}">{html.escape(str(stem))}</th></tr>')
        for (_, label), row in df.loc[[stem]].iterrows():
            body.append(f"<tr><th>{html.escape(str(label))}</th>" + "".join(f"<td>{row[c]}</td>" for c in cols) + "</tr>")
    return (f'<div class="silicon-table-wrap"><p class="silicon-table-caption">{caption}</p>'
            f'<table class="silicon-table {cls}" aria-label="{html.escape(caption)}"><thead>'
            f"{''.join(f'<tr>{h}</tr>' for h in head)}</thead><tbody>{''.join(body)}</tbody></table></div>")


def _delta_cell(d: DeltaResult | NullCell | None, digits: int) -> str:
    """'−0.012' over its interval on a second, smaller line (keeps the column narrow)."""
    if d is None:
        return "—"
    return f'{signed(d.delta, digits)}<br><span class="ci">{_interval(d.ci, digits)}</span>'


def table1_ours(cells: Iterable[CellResult], deltas: Iterable[DeltaResult]) -> pd.DataFrame:
    """Our Table 1 in the paper's layout: per (stem, artist) KL and FAD of both systems, the paired change
    fine-tuned − baseline with its 95 % track-bootstrap interval, and the test tracks (segments) behind it.
    Cells are display strings (HTML for the change)."""
    by_cell = {(c.category, c.artist, c.system): c for c in cells}
    by_delta = {(d.category, d.artist, d.metric): d for d in deltas}
    keys = sorted({(c, a) for c, a, _ in by_cell}, key=_stem_artist_key)
    rows = []
    for cat, artist in keys:
        row: dict[tuple[str, str], str] = {}
        b, f = by_cell.get((cat, artist, "baseline")), by_cell.get((cat, artist, "fine-tuned"))
        ref = b or f
        row[("", "tracks (segments)")] = f"{ref.n_tracks} ({ref.n_segments})" if ref else "—"
        for m, label in METRIC_LABELS.items():
            row[(label, "baseline")] = _fmt(getattr(b, m), DIGITS[m]) if b else "—"
            row[(label, "fine-tuned")] = _fmt(getattr(f, m), DIGITS[m]) if f else "—"
            row[(label, "change [95 % CI]")] = _delta_cell(by_delta.get((cat, artist, m)), DIGITS[m])
        rows.append(row)
    idx = pd.MultiIndex.from_tuples(keys, names=["stem", "artist"])
    df = pd.DataFrame(rows, index=idx)
    if not df.empty:
        df.columns = pd.MultiIndex.from_tuples(df.columns)
    return df


def table1_ours_html(cells: Iterable[CellResult], deltas: Iterable[DeltaResult], caption: str) -> str:
    """:func:`table1_ours` as an HTML table that fits the book's content column."""
    return _grouped_html(table1_ours(cells, deltas), caption, "silicon-table1")


def published_table(published: pd.DataFrame) -> pd.DataFrame:
    """The published Table 1 in the same layout as ours: KL and FAD per system and their change."""
    rows, keys = [], []
    pivot = published.pivot_table(index=["category", "artist"], columns="model", values=["kl", "fad"])
    order = sorted(pivot.index, key=_stem_artist_key)
    for key in order:
        row = {}
        for m, label in METRIC_LABELS.items():
            b, f = pivot.loc[key, (m, "baseline")], pivot.loc[key, (m, "fine-tuned")]
            row[(label, "baseline")] = _fmt(b, PUBLISHED_DIGITS[m])
            row[(label, "fine-tuned")] = _fmt(f, PUBLISHED_DIGITS[m])
            row[(label, "change")] = signed(f - b, PUBLISHED_DIGITS[m])
        rows.append(row)
        keys.append(key)
    df = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(keys, names=["stem", "artist"]))
    df.columns = pd.MultiIndex.from_tuples(df.columns)
    return df


def published_table_html(published: pd.DataFrame, caption: str) -> str:
    """:func:`published_table` as HTML (a labelled reference, its own table)."""
    return _grouped_html(published_table(published), caption, "silicon-table1-published")


def _direction(deltas: Sequence[float]) -> str:
    """'fell' / 'rose' / 'mixed' / '—' for the per-artist changes of one category."""
    ds = [d for d in deltas if math.isfinite(d)]
    if not ds:
        return "—"
    if all(d < 0 for d in ds):
        return "fell"
    if all(d > 0 for d in ds):
        return "rose"
    return "mixed"


def _direction_text(deltas: Sequence[float]) -> str:
    """'fell (3 of 3)', 'mixed (fell 1 of 3)' …"""
    ds = [d for d in deltas if math.isfinite(d)]
    word = _direction(ds)
    if word == "—":
        return word
    fell = sum(d < 0 for d in ds)
    return f"{word} ({fell if word != 'rose' else len(ds) - fell} of {len(ds)})" if word != "mixed" else \
        f"mixed (fell {fell} of {len(ds)})"


def published_changes(published: pd.DataFrame) -> pd.DataFrame:
    """Published per-artist changes: category, artist, metric, baseline, finetuned, delta, relative."""
    rows = []
    for (cat, artist), g in published.groupby(["category", "artist"], sort=False):
        by = g.set_index("model")
        for m in METRIC_LABELS:
            b, f = float(by.loc["baseline", m]), float(by.loc["fine-tuned", m])
            rows.append(dict(category=cat, artist=artist, metric=m, baseline=b, finetuned=f, delta=f - b,
                             relative=(f - b) / abs(b) if b else math.nan))
    return pd.DataFrame(rows)


def direction_comparison(deltas: Iterable[DeltaResult], published: pd.DataFrame) -> pd.DataFrame:
    """Per stem and metric: how our artists' changes went, how the paper's went, and whether the same way."""
    ds = list(deltas)
    pub = published_changes(published)
    rows = []
    for cat in CATEGORY_ORDER:
        row: dict[tuple[str, str], str] = {}
        for m, label in METRIC_LABELS.items():
            ours = [d.delta for d in ds if d.category == cat and d.metric == m]
            theirs = pub[(pub.category == cat) & (pub.metric == m)]["delta"].tolist()
            o, t = _direction(ours), _direction(theirs)
            row[(label, "ours")] = _direction_text(ours)
            row[(label, "paper")] = _direction_text(theirs)
            row[(label, "same way?")] = "—" if "—" in (o, t) else ("yes" if o == t and o != "mixed" else
                                                                    "no" if {o, t} == {"fell", "rose"} else "unclear")
        rows.append(row)
    df = pd.DataFrame(rows, index=pd.Index(list(CATEGORY_ORDER), name="stem"))
    df.columns = pd.MultiIndex.from_tuples(df.columns)
    return df


def direction_comparison_html(deltas: Iterable[DeltaResult], published: pd.DataFrame, caption: str) -> str:
    """:func:`direction_comparison` as HTML."""
    return _html_table(direction_comparison(deltas, published), caption, "silicon-directions")


# --------------------------------------------------------------------------- what the design can detect


def detectable_changes(deltas: Iterable[DeltaResult], published: pd.DataFrame,
                       backends: dict[str, str] | None = None) -> pd.DataFrame:
    """Per stem and metric: the smallest change our design could tell from zero, beside the paper's changes.

    The detectable change of one (artist, stem) is the half-width of its paired delta's 95 % interval
    over test tracks (:func:`~silicon_sing.metrics.stats.detectable_change`); per stem we report the
    median over artists, absolute and relative to the baseline. A published change counts as
    resolvable when it is larger: in absolute terms when our metric is the paper's (``backends`` names
    PaSST/VGGish), else relative to its baseline, since a stand-in metric has other units.
    """
    ds = list(deltas)
    pub = published_changes(published)
    backends = backends or {}
    rows = []
    for cat in CATEGORY_ORDER:
        for m in METRIC_LABELS:
            cell = [d for d in ds if d.category == cat and d.metric == m]
            hws = [detectable_change(d.ci) for d in cell]
            rels = [h / abs(d.baseline) for h, d in zip(hws, cell) if math.isfinite(h) and d.baseline]
            hws = [h for h in hws if math.isfinite(h)]
            same_scale = backends.get(m) == REAL_BACKENDS[m]
            detect = statistics.median(hws) if hws else math.nan
            detect_rel = statistics.median(rels) if rels else math.nan
            p = pub[(pub.category == cat) & (pub.metric == m)]
            sizes = p["delta"].abs() if same_scale else p["relative"].abs()
            limit = detect if same_scale else detect_rel
            resolvable = int((sizes > limit).sum()) if math.isfinite(limit) else 0
            rows.append(dict(category=cat, metric=m, n_artists=len(cell),
                             n_tracks=min((d.n_tracks for d in cell), default=0),
                             n_segments=min((d.n_segments for d in cell), default=0),
                             detectable=detect, detectable_relative=detect_rel, same_scale=same_scale,
                             published_n=len(p), published_resolvable=resolvable,
                             published=list(zip(p["artist"], p["baseline"], p["finetuned"], p["relative"]))))
    return pd.DataFrame(rows)


def _percent(x: float) -> str:
    """'31 %' (no sign); a dash when missing."""
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.0f}{PCT}"


def detectable_table(det: pd.DataFrame) -> pd.DataFrame:
    """A readable view of :func:`detectable_changes`: one row per stem and metric."""
    rows, keys = [], []
    for r in det.itertuples(index=False):
        d = DIGITS[r.metric]
        changes = "<br>".join(f"{html.escape(a)} {signed(f - b, PUBLISHED_DIGITS[r.metric])} ({signed(100 * rel, 0)}{PCT})"
                              for a, b, f, rel in r.published)
        keys.append((r.category, METRIC_LABELS[r.metric]))
        rows.append({"tracks": str(r.n_tracks), "smallest detectable change": f"±{_fmt(r.detectable, d)}",
                     "relative to baseline": f"±{_percent(r.detectable_relative)}",
                     "published changes (relative)": changes or "—",
                     "resolvable here": f"{r.published_resolvable} of {r.published_n}"})
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(keys, names=["stem", "metric"]))


def detectable_table_html(det: pd.DataFrame, caption: str) -> str:
    """:func:`detectable_table` as HTML."""
    return _html_table(detectable_table(det), caption, "silicon-detectable")


def detectable_glue(det: pd.DataFrame) -> dict[str, str]:
    """Sentences per stem and metric: what the design can resolve, and which published changes exceed it."""
    out: dict[str, str] = {}
    for r in det.itertuples(index=False):
        label, d = METRIC_LABELS[r.metric], DIGITS[r.metric]
        key = f"{r.category}_{r.metric}"
        if not math.isfinite(r.detectable):
            out[f"{key}_detectable"] = f"no {label} interval could be computed"
        else:
            out[f"{key}_detectable"] = (f"a {label} change smaller than about {_fmt(r.detectable, d)} "
                                        f"({_percent(r.detectable_relative)} of the baseline) cannot be told from zero "
                                        f"with {count_phrase([r.n_tracks], 'test track')} per artist")
        pub = "; ".join(f"{a} {_fmt(b, PUBLISHED_DIGITS[r.metric])} → {_fmt(f, PUBLISHED_DIGITS[r.metric])} "
                        f"({signed(100 * rel, 0)}{PCT})" for a, b, f, rel in r.published)
        out[f"{key}_published_changes"] = pub or "none published"
        scale = "in absolute terms" if r.same_scale else \
            f"relative to the baseline, since our {label} is a stand-in with its own units"
        if not math.isfinite(r.detectable):
            out[f"{key}_resolvable"] = "no comparison is possible"
        else:
            out[f"{key}_resolvable"] = (f"{r.published_resolvable} of the {r.published_n} published changes "
                                        f"{'is' if r.published_resolvable == 1 else 'are'} larger than that ({scale})")
    return out


# --------------------------------------------------------------------------- the A/A control


def null_control_sentence(control: NullControl | None) -> str:
    """What the A/A control found, as a clause the evaluation chapter quotes (or why there is none)."""
    if control is None:
        return ("no control was run: listing stem types under evaluate.null_control in the parameter file runs it, "
                "at the cost of one more generation pass per stem type")
    expected = f"{100 * (1 - control.level):.0f}{PCT}"
    if not any(control.testable(m) for m in METRICS):
        out = ("no cell had the two test tracks or more an interval needs, so the control could not test the "
               "intervals, only size the changes")
    else:
        parts = [f"{control.false_alarms(m)} of {len(control.testable(m))} {METRIC_LABELS[m]} intervals"
                 if control.testable(m) else f"no {METRIC_LABELS[m]} interval (none could be computed)"
                 for m in METRICS]
        out = f"with nothing changed, {' and '.join(parts)} excluded zero, where {expected} are expected by chance"
        alarms = [m for m in METRICS if control.false_alarms(m)]
        if alarms:  # how surprising that many false alarms would be if the intervals were honest
            p = ", ".join(f"{METRIC_LABELS[m]} {control.p_value(m):.2f}" for m in alarms)
            out += f" (the chance of at least as many with honest intervals: {p})"
    out += f"; reseeding alone changed a cell by a median of {_sizes(median_abs_change(control.cells))}"
    if control.real_median_abs_change:
        out += f", fine-tuning by {_sizes(control.real_median_abs_change)} in the same stem types"
    return out


def _sizes(sizes: dict[str, float], metrics: Sequence[str] = METRICS, against: dict[str, float] | None = None) -> str:
    """'0.004 KL and 30.5 FAD' for ``metrics`` (a metric ``sizes`` lacks reads as NaN); with ``against``, each size
    followed by its ratio to that one, '(0.2× that)', where that one is known and not zero."""
    return " and ".join(f"{_fmt(sizes.get(m, math.nan), DIGITS[m])} {METRIC_LABELS[m]}"
                        + (f" ({sizes[m] / against[m]:.1f}\u00d7 that)" if against and against.get(m) else "")
                        for m in metrics)


STEM_PLURALS = {"instrumental": "instrumentals", "acapella": "acapella stems", "full": "full mixes"}


def null_control_stem_sentence(control: NullControl | None, deltas: Iterable[DeltaResult], category: str) -> str:
    """For one stem type: how far reseeding alone moved an artist's cell (median |reseeded − baseline|), beside how
    far fine-tuning moved it (median |fine-tuned − baseline| over ``deltas`` of that stem type), as a clause."""
    if control is None or category not in control.categories:
        return (f"no A/A control was run for {STEM_PLURALS[category]}: listing {category} under evaluate.null_control "
                "in the parameter file runs it")
    noise = median_abs_change(control.cells, [category])
    real = median_abs_change(list(deltas), [category])
    out = f"sampled again under other seeds, the unchanged baseline moved an artist's cell by a median of {_sizes(noise)}"
    if real:
        out += f", fine-tuning by {_sizes(real, [m for m in METRICS if m in real], against=noise)}"
    return out


def null_control_stem_glue(control: NullControl | None, deltas: Iterable[DeltaResult]) -> dict[str, str]:
    """``{category}_null_control`` for every stem type: :func:`null_control_stem_sentence`, for the analysis page."""
    deltas = list(deltas)
    return {f"{c}_null_control": null_control_stem_sentence(control, deltas, c) for c in CATEGORY_ORDER}


def null_control_table(control: NullControl, deltas: Iterable[DeltaResult]) -> pd.DataFrame:
    """Per (stem, artist) and metric: the A/A change with its interval beside fine-tuning's (display strings)."""
    null = {(c.category, c.artist, c.metric): c for c in control.cells}
    real = {(d.category, d.artist, d.metric): d for d in deltas}
    keys = sorted({(c, a) for c, a, _ in null}, key=_stem_artist_key)
    rows = []
    for cat, artist in keys:
        row: dict[tuple[str, str], str] = {}
        for m in METRICS:
            c = null.get((cat, artist, m))
            row[(METRIC_LABELS[m], "reseeded − baseline")] = (_delta_cell(c, DIGITS[m])
                                                              + (" ⚠" if c is not None and c.excludes_zero else ""))
            row[(METRIC_LABELS[m], "fine-tuned − baseline")] = _delta_cell(real.get((cat, artist, m)), DIGITS[m])
        rows.append(row)
    df = pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(keys, names=["stem", "artist"]))
    if not df.empty:
        df.columns = pd.MultiIndex.from_tuples(df.columns)
    return df


def null_control_table_html(control: NullControl, deltas: Iterable[DeltaResult], caption: str) -> str:
    """:func:`null_control_table` as HTML (artists escaped; ⚠ marks an interval that excluded zero)."""
    return _grouped_html(null_control_table(control, deltas), caption, "silicon-null-control")


def voicing_examples(generations: Iterable[Generation], sr: int = 32000) -> pd.DataFrame:
    """Voiced-frame fraction and median f0 of the continuation part, one row per (example, source).

    Sources are "original" and each system. A crude, honest proxy for 'does it still sing': a
    continuation that keeps a pitched voice has voiced frames near the original's fraction and a
    median f0 near the artist's register.
    """
    def stats(path: str, skip: float) -> tuple[float, float]:
        return voicing(continuation(path, skip, sr), sr)

    rows, seen = [], set()
    for g in generations:
        base = dict(category=g.category, artist=g.artist, example_id=g.example_id, track=track_of(g.example_id))
        if g.example_id not in seen:
            seen.add(g.example_id)
            v, f = stats(g.original, g.prompt_seconds)
            rows.append(dict(base, source="original", voiced=v, f0=f))
        v, f = stats(g.generated, g.prompt_seconds)
        rows.append(dict(base, source=g.system, voiced=v, f0=f))
    return pd.DataFrame(rows)


def summarise_voicing(per_example: pd.DataFrame) -> pd.DataFrame:
    """Mean voiced fraction, median f0 and n per (category, artist, source)."""
    if per_example.empty:
        return per_example
    out = per_example.groupby(["category", "artist", "source"]).agg(
        voiced=("voiced", "mean"), f0_median=("f0", "median"), n=("voiced", "size"))
    return out.reset_index()


def voicing_table(generations: Iterable[Generation], sr: int = 32000) -> pd.DataFrame:
    """Voiced-frame fraction and median f0 of the continuation part: original vs each system, per artist."""
    return summarise_voicing(voicing_examples(generations, sr))


KEEPS_VOICE = 0.5  # "kept the voice": voiced in at least half as many frames as the originals


def voicing_verdicts(per_example: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per category: voiced fractions, whether fine-tuning kept the voice, and whether it moved closer.

    *Kept*: the fine-tuned continuations are voiced in at least ``KEEPS_VOICE`` × the originals'
    fraction of frames. *Closer*: per example, the gap |fine-tuned − original| minus
    |baseline − original| in voiced fraction, averaged, with a 95 % interval over test tracks.
    """
    out: dict[str, dict[str, Any]] = {}
    if per_example.empty:
        return out
    for cat, g in per_example.groupby("category"):
        wide = g.pivot_table(index=["example_id", "track"], columns="source", values="voiced")
        if not {"original", "baseline", "fine-tuned"} <= set(wide.columns):
            continue
        wide = wide.dropna(subset=["original", "baseline", "fine-tuned"])
        o, b, f = wide["original"], wide["baseline"], wide["fine-tuned"]
        gap = ((f - o).abs() - (b - o).abs()).to_numpy()
        tracks = list(wide.index.get_level_values("track"))
        lo, hi = bootstrap_mean_ci(gap, n_boot, 0.95, seed, groups=tracks)
        out[cat] = dict(original=float(o.mean()), baseline=float(b.mean()), finetuned=float(f.mean()),
                        kept=bool(f.mean() >= KEEPS_VOICE * o.mean()) if o.mean() > 0 else False,
                        gap_change=float(gap.mean()), gap_ci=(lo, hi), n_tracks=len(set(tracks)),
                        n_examples=len(gap))
    return out


def voicing_sentence(v: dict[str, Any] | None, category: str = "acapella") -> str:
    """'the fine-tuned model kept the voice (voiced in 61 % of frames …); fine-tuning moved …'. In instrumentals what
    is voiced is the lead's pitched line, and the sentence says so."""
    line = "pitched line" if category == "instrumental" else "voice"
    if not v:
        return "no voicing comparison was possible"
    if v["original"] < 0.05:
        return f"the originals are hardly voiced ({_percent(v['original'])} of frames), so there is no {line} to keep"
    kept = f"kept the {line}" if v["kept"] else f"lost the {line}"
    head = (f"the fine-tuned model {kept}: its continuations are voiced in {_percent(v['finetuned'])} of frames, "
            f"the originals in {_percent(v['original'])}, the baseline's in {_percent(v['baseline'])}")
    lo, hi = v["gap_ci"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        tail = "with too few test tracks for an interval"
    elif hi < 0:
        tail = "fine-tuning brought the voicing closer to the originals', the interval over test tracks excluding zero"
    elif lo > 0:
        tail = "fine-tuning moved the voicing further from the originals', the interval over test tracks excluding zero"
    else:
        tail = "whether fine-tuning moved the voicing closer to the originals' is unclear (the interval includes zero)"
    return f"{head}; {tail}"


# --------------------------------------------------------------------------- musicality against the truth

# measure: (column label, "percent" or the number's decimals)
MUSICALITY_COLUMNS: dict[str, tuple[str, str | int]] = {
    "keeps_tempo": ("tempo kept", "percent"), "keeps_key": ("key kept", "percent"),
    "voiced": ("voiced frames", "percent"), "pitch_error_st": ("pitch error (st)", 1),
    "harmonic_lines": ("harmonic lines / frame", 2)}
TEMPO_KEY_TARGET = 2 / 3  # issue 14: baseline instrumental continuations keep tempo and key in >= 2/3 of examples
VOICED_TARGET = 0.5  # issue 14: fine-tuned acapella continuations voiced in >= half their frames
# issue 14's "the spectrograms show harmonic structure", as a number: baseline instrumental continuations draw at
# least half as many harmonic lines per frame as their originals (block-shuffled originals draw about a third)
LINES_TARGET = 0.5


def _value_and_interval(row: pd.Series, m: str, kind: str | int) -> tuple[str, str]:
    """('67 %', '[44 %, 89 %]') for ``kind`` "percent", ('2.0', '[1.2, 2.9]') for ``kind`` 1 (decimals);
    ('—', '') when unmeasured, no interval when unknown."""
    f = _percent if kind == "percent" else (lambda x: _fmt(x, int(kind)))
    if not math.isfinite(row[m]):
        return "—", ""
    lo, hi = row[f"{m}_lo"], row[f"{m}_hi"]
    return f(row[m]), (f"[{f(lo)}, {f(hi)}]" if math.isfinite(lo) and math.isfinite(hi) else "")


def _with_interval(row: pd.Series, m: str, kind: str | int) -> str:
    """'67 % [44 %, 89 %]' or '2.0 [1.2, 2.9]' for a sentence; a dash when unmeasured."""
    value, ci = _value_and_interval(row, m, kind)
    return f"{value} {ci}" if ci else value


def _table_cell(row: pd.Series, m: str, kind: str | int) -> str:
    """A table cell: the value, and its interval on a second line (as the Table 1 deltas), so the table fits the page."""
    value, ci = _value_and_interval(row, m, kind)
    return f'{value}<br><span class="ci">{ci}</span>' if ci else value


def musicality_table(summary: pd.DataFrame) -> pd.DataFrame:
    """A readable view of ``metrics.musicality.summarise_musicality``: one row per (stem, source), each interval under its value."""
    if summary.empty:
        return pd.DataFrame()
    order = {s: i for i, s in enumerate((*SOURCES, *SYSTEMS))}
    s = summary.assign(_c=summary["category"].map(lambda c: CATEGORY_ORDER.index(c) if c in CATEGORY_ORDER else 99),
                       _s=summary["source"].map(lambda x: order.get(x, 9))).sort_values(["_c", "_s"])
    lines = MUSICALITY_COLUMNS["harmonic_lines"][0]
    rows = {}
    for _, r in s.iterrows():
        row = {label: _table_cell(r, m, kind) for m, (label, kind) in MUSICALITY_COLUMNS.items()}
        if math.isfinite(r.get("lines_in_place", math.nan)):  # the round trip's, under its count (a column is too wide)
            row[lines] += f'<br><span class="ci">{_percent(r["lines_in_place"])} in place</span>'
        rows[(r["category"], r["source"])] = {**row, "n (tracks)": f"{int(r['n_examples'])} ({int(r['n_tracks'])})"}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out = out.loc[:, [c for c in out.columns if not (out[c] == "—").all()]]  # no truth: no tempo or key columns
    out.index = pd.MultiIndex.from_tuples(list(out.index), names=["stem", "source"])  # escaped where rendered
    return out


def musicality_table_html(summary: pd.DataFrame, caption: str) -> str:
    """:func:`musicality_table` as an escaped, captioned HTML table, stems as full-width group rows."""
    df = musicality_table(summary)
    return _grouped_html(df, caption, "musicality", "source") if not df.empty else _html_table(df, caption, "musicality")


def _cell(summary: pd.DataFrame, source: str, category: str) -> pd.Series | None:
    """The summary row of one (source, category), or None."""
    hit = summary[(summary["source"] == source) & (summary["category"] == category)] if not summary.empty else summary
    return None if hit.empty else hit.iloc[0]


def musicality_glue(summary: pd.DataFrame, has_truth: bool) -> dict[str, str]:
    """The issue's targets, stated and checked: ``musicality_truth``, ``musicality_tempo_key_target``,
    ``musicality_voicing_target``, ``musicality_lines_target`` (computed sentences)."""
    out = {"musicality_truth": "measured against the tempo and key the synthetic corpus records for each track"
           if has_truth else "the input stems record no tempo or key, so only voicing against the originals is measured"}
    b, o = _cell(summary, "baseline", "instrumental"), _cell(summary, "original", "instrumental")
    if not has_truth or b is None or not math.isfinite(b["keeps_tempo"]):
        out["musicality_tempo_key_target"] = ("whether baseline instrumental continuations keep the true tempo and key "
                                              "cannot be checked without a recorded tempo and key")
    else:
        met = b["keeps_tempo"] >= TEMPO_KEY_TARGET and b["keeps_key"] >= TEMPO_KEY_TARGET
        c = _cell(summary, ROUND_TRIP, "instrumental")
        ref = (f" (the originals: {_percent(o['keeps_tempo'])} and {_percent(o['keeps_key'])}" if o is not None else "")
        if c is not None and math.isfinite(c["keeps_tempo"]):  # the codec's ceiling on what any continuation can keep
            ref += (f"{'; ' if ref else ' ('}the originals through the codec alone: {_percent(c['keeps_tempo'])} "
                    f"and {_percent(c['keeps_key'])}")
        ref += ")" if ref else ""
        out["musicality_tempo_key_target"] = (
            f"baseline instrumental continuations keep the true tempo in {_with_interval(b, 'keeps_tempo', 'percent')} "
            f"of {int(b['n_examples'])} test examples and stay in the true key in {_with_interval(b, 'keeps_key', 'percent')}"
            f"{ref}; the target of at least two thirds for both is {'met' if met else 'not met'}")
    f, oa = _cell(summary, "fine-tuned", "acapella"), _cell(summary, "original", "acapella")
    if f is None or not math.isfinite(f["voiced"]):
        out["musicality_voicing_target"] = "there are no fine-tuned acapella continuations to check"
    else:
        ca = _cell(summary, ROUND_TRIP, "acapella")
        ref = f" (the originals: {_percent(oa['voiced'])}" if oa is not None else ""
        if ca is not None and math.isfinite(ca["voiced"]):
            ref += f"{'; ' if ref else ' ('}through the codec alone: {_percent(ca['voiced'])}"
        ref += ")" if ref else ""
        out["musicality_voicing_target"] = (
            f"acapella continuations after acapella fine-tuning are voiced in {_with_interval(f, 'voiced', 'percent')} "
            f"of their frames{ref}; the target of at least half is {'met' if f['voiced'] >= VOICED_TARGET else 'not met'}")
    out["musicality_lines_target"] = _lines_target(summary)
    return out


def _lines_target(summary: pd.DataFrame) -> str:
    """Do the baseline's instrumental continuations draw harmonic lines (:data:`LINES_TARGET`)? A computed sentence."""
    b, o = _cell(summary, "baseline", "instrumental"), _cell(summary, "original", "instrumental")
    if b is None or o is None or not math.isfinite(b["harmonic_lines"]):
        return "there are no baseline instrumental continuations to look for harmonic lines in"
    ref = f"the originals draw {_fmt(o['harmonic_lines'], 2)}"
    c = _cell(summary, ROUND_TRIP, "instrumental")
    codec = c["harmonic_lines"] if c is not None else math.nan
    if math.isfinite(codec):
        ref += f", the originals through the codec alone {_fmt(codec, 2)}"
    # the continuations reach what the decoder alone lets through: the codec, not the language model, is the limit.
    # "Reach" is decided by the baseline's interval over test tracks, not a fixed fraction of the round trip's count:
    # with three tracks a fixed rule flips on noise (stop 24: 0.37 against 0.9 × 0.42)
    hi = b["harmonic_lines_hi"]
    reach = hi if math.isfinite(hi) else b["harmonic_lines"]
    capped = math.isfinite(codec) and reach >= codec
    share = b["harmonic_lines"] / o["harmonic_lines"] if o["harmonic_lines"] > 0 else math.nan
    codec_share = codec / o["harmonic_lines"] if o["harmonic_lines"] > 0 else math.nan
    met = math.isfinite(share) and share >= LINES_TARGET
    text = (f"baseline instrumental continuations draw {_with_interval(b, 'harmonic_lines', 2)} harmonic lines per "
            f"frame between 1 and 8 kHz ({ref}), {_percent(share)} of the originals' count; the target of at least "
            f"half is {'met' if met else 'not met'}")
    if not met:
        if capped:
            text += ("; they draw as many as the codec alone lets through, so its decoder, not the language model, sets "
                     "this limit")
        if math.isfinite(codec_share) and codec_share < LINES_TARGET:
            text += (f"; the codec alone draws {_percent(codec_share)} of the originals' count, below the target, so no "
                     "language model on this codec can meet it")
    # a count is not a place: a codec can draw as many lines as the original, all of them elsewhere
    if c is not None and math.isfinite(c.get("lines_in_place", math.nan)):
        text += (f"; of the originals' own lines, the codec alone keeps {_with_interval(c, 'lines_in_place', 'percent')} "
                 "where they were")
    return text


def _kept_counts(groups: Any) -> dict[Any, tuple[int, int]]:
    """``(kept, n)`` per group of a grouped 0/1 series (``series.groupby(...)``)."""
    return {k: (int(v.sum()), int(v.count())) for k, v in groups}


def _kept_text(cell: tuple[int, int] | None) -> str:
    """A ``(kept, n)`` cell as '4 of 9' ('—' when nothing was measured)."""
    return "—" if cell is None else f"{cell[0]} of {cell[1]}"


def tempo_kept_by_bpm(per_example: pd.DataFrame, category: str = "instrumental") -> pd.DataFrame:
    """How many ``category`` continuations keep the true tempo, per recorded tempo and source.

    Args:
        per_example: :func:`silicon_sing.metrics.musicality.musicality_examples`.
    Returns:
        ``[n_tempi × n_sources]``, index ``true_bpm`` ascending, columns the references then the systems; each cell
        a ``(kept, n)`` pair of counts. Empty without recorded tempi.
    """
    d = per_example[(per_example["category"] == category) & per_example["true_bpm"].notna()
                    & per_example["keeps_tempo"].notna()] if not per_example.empty else per_example
    if d.empty:
        return pd.DataFrame()
    order = [s for s in (*SOURCES, *SYSTEMS) if s in set(d["source"])]
    g = d.groupby(["true_bpm", "source"])["keeps_tempo"]
    cells = _kept_counts(g)
    tempi = sorted(d["true_bpm"].unique())
    return pd.DataFrame({s: [cells.get((bpm, s)) for bpm in tempi] for s in order},
                        index=pd.Index(tempi, name="true_bpm"))


# where a test prompt starts: its song's first segment (index 000, 0 s: the synthetic songs' intro bar, without drums
# or bass) or a later one
PROMPT_PLACES = ("at the song's opening", "later in the song")
_PLACE_MEASURES = {"keeps_tempo": "tempo kept", "keeps_key": "key kept", "fades": "faded out"}
_KEPT = ("tempo kept", "key kept")  # the measures that need recorded truth; a fade needs none


def prompt_place(example_id: str) -> str:
    """:data:`PROMPT_PLACES` of an example: its segment index (the id's last part, ``…/<category>/003``) 0 or not."""
    return PROMPT_PLACES[0] if int(example_id.rsplit("/", 1)[-1]) == 0 else PROMPT_PLACES[1]


def kept_by_prompt_place(per_example: pd.DataFrame, category: str = "instrumental") -> pd.DataFrame:
    """How many ``category`` continuations keep the true tempo and key, and fade out, by where their prompt starts.

    Args:
        per_example: :func:`silicon_sing.metrics.musicality.musicality_examples`.
    Returns:
        ``[(measure, place), n_sources]``: index ("tempo kept" | "key kept" | "faded out", :data:`PROMPT_PLACES`) for
        the measures and places that occur (tempo and key need recorded truth, a fade does not), columns the
        references then the systems, cells ``(kept, n)`` (None where nothing was measured). Empty when nothing was.
    """
    if per_example.empty:
        return pd.DataFrame()
    d = per_example[(per_example["category"] == category)]
    d = d.assign(place=[prompt_place(e) for e in d["example_id"]])
    order = [s for s in (*SOURCES, *SYSTEMS) if s in set(d["source"])]
    places = [p for p in PROMPT_PLACES if p in set(d["place"])]
    cells: dict[tuple[str, str], dict[str, tuple[int, int] | None]] = {}
    for measure, label in _PLACE_MEASURES.items():
        m = d[d[measure].notna()] if measure in d.columns else d.iloc[:0]
        if m.empty:
            continue
        g = _kept_counts(m.groupby(["place", "source"])[measure])
        for place in places:
            cells[(label, place)] = {s: g.get((place, s)) for s in order}
    if not cells:
        return pd.DataFrame()
    return pd.DataFrame.from_dict(cells, orient="index").rename_axis(["measure", "prompt"])


def kept_by_prompt_place_html(by_place: pd.DataFrame, caption: str) -> str:
    """:func:`kept_by_prompt_place` as a captioned HTML table, '4 of 9' per cell (every label is ours)."""
    view = by_place.map(_kept_text)
    view.index = [f"{m}, {p}" for m, p in view.index]
    return _html_table(view, caption, "prompt-place")


def kept_by_prompt_place_sentence(by_place: pd.DataFrame, system: str = "baseline") -> str:
    """Tempo and key kept by ``system`` at the songs' openings and later, against the codec's round trip, and how many
    of its continuations fade out there, against the originals: a sentence."""
    if by_place.empty or system not in by_place.columns:
        return "the test tracks record no tempo or key to break it down by"
    places = list(dict.fromkeys(p for _, p in by_place.index))
    if len(places) < 2:
        return f"every test prompt is taken {places[0]}, so there is nothing to compare"

    def kept(source: str, label: str, place: str) -> str:
        return _kept_text(by_place[source].get((label, place)))

    opening, later = PROMPT_PLACES
    labels = [label for label in _KEPT if (label, opening) in by_place.index]
    if labels:
        first, *rest = labels
        noun = first.split()[0]  # "tempo kept" -> "tempo"
        text = (f"the {system} keeps the {noun} of {kept(system, first, opening)} test examples prompted with their "
                f"song's opening seconds and of {kept(system, first, later)} prompted later in the song")
        text += "".join(f", the {label.split()[0]} of {kept(system, label, opening)} and of "
                        f"{kept(system, label, later)}" for label in rest)
        if ROUND_TRIP in by_place.columns:
            text += (f"; through the codec alone the originals keep the {noun} of {kept(ROUND_TRIP, first, opening)} "
                     f"and of {kept(ROUND_TRIP, first, later)}")
    else:
        text = "the test tracks record no tempo or key to break it down by"
    faded = _PLACE_MEASURES["fades"]
    if (faded, opening) in by_place.index:
        whose = "its" if labels else f"the {system}'s"
        text += (f"; {kept(system, faded, opening)} of {whose} continuations of a song's opening fade out, and "
                 f"{kept(system, faded, later)} of those prompted later (the last second {FADES_DB:g} dB or more under "
                 f"the prompt; of the originals {kept('original', faded, opening)} and {kept('original', faded, later)})")
    return text


def tempo_kept_by_bpm_table(by_bpm: pd.DataFrame) -> pd.DataFrame:
    """A readable view of :func:`tempo_kept_by_bpm`: '5 of 6' per cell, rows named by tempo and beat length."""
    if by_bpm.empty:
        return by_bpm
    out = by_bpm.map(_kept_text)
    out.index = [f"{bpm:g} BPM (a beat every {60 / bpm:.2f} s)" for bpm in by_bpm.index]
    out.index.name = "song tempo"
    return out


def tempo_kept_by_bpm_html(by_bpm: pd.DataFrame, caption: str) -> str:
    """:func:`tempo_kept_by_bpm_table` as a captioned HTML table (every label is ours: BPM figures and source names)."""
    return _html_table(tempo_kept_by_bpm_table(by_bpm), caption, "tempo-by-bpm")


def tempo_kept_by_bpm_sentence(by_bpm: pd.DataFrame, system: str = "baseline") -> str:
    """Where ``system`` keeps the tempo best and worst, against the codec's round trip there: a computed sentence."""
    if by_bpm.empty or system not in by_bpm.columns:
        return "the test tracks record no tempo to break it down by"
    share = {bpm: c[0] / c[1] for bpm, c in by_bpm[system].items() if c is not None and c[1]}
    if len(share) < 2:
        return f"the test tracks share one tempo ({', '.join(f'{b:g} BPM' for b in share)}), so there is nothing to compare"
    best = max(share, key=lambda b: (share[b], -b))  # ties: the slower tempo counts as the better-kept one
    worst = min(share, key=lambda b: (share[b], -b))

    def kept(source: str, bpm: float) -> str:
        return _kept_text(by_bpm.at[bpm, source])

    if share[best] == share[worst]:
        return f"the {system} keeps the tempo equally often at every song tempo ({kept(system, best)} at {best:g} BPM)"
    text = (f"the {system} keeps the tempo of {kept(system, best)} test examples at {best:g} BPM (a beat every "
            f"{60 / best:.2f} s) and of {kept(system, worst)} at {worst:g} BPM (a beat every {60 / worst:.2f} s)")
    trip = by_bpm[ROUND_TRIP].get(worst) if ROUND_TRIP in by_bpm.columns else None
    if trip is not None and trip[1]:
        text += f"; the originals through the codec alone keep {kept(ROUND_TRIP, best)} and {kept(ROUND_TRIP, worst)}"
        # the codec alone keeps the worse-kept tempo at least as often as the system keeps its best: the LM's doing
        if trip[0] / trip[1] >= share[best]:
            text += ", so the language model, not the codec, loses the tempo there"
    return text
