"""Figures shared by the chapters: spectrogram grids and count plots (matplotlib).

Notebooks: notebooks/01_curate.ipynb (count plots, spectrograms), notebooks/04_evaluate.ipynb (metric figures).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from .audio import log_mel
from .generate import BASELINE, FINETUNED
from .metrics.musicality import ROUND_TRIP
from .params import CATEGORY_ORDER


def spectrogram_grid(clips: dict[tuple[str, str], tuple[np.ndarray, int]], rows: Sequence[str],
                     cols: Sequence[str], title: str | None = None, cell_size: tuple[float, float] = (3.2, 1.8)) -> Figure:
    """A rows × cols grid of log-mel spectrograms sharing one colour scale; returns the figure."""
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(cell_size[0] * len(cols), cell_size[1] * len(rows)),
                             squeeze=False, sharex=True, sharey=True, constrained_layout=True)
    image = None
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axes[i][j]
            clip = clips.get((r, c))
            if clip is not None:
                x, sr = clip
                spec = log_mel(x, sr)
                image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0,
                                  extent=(0, len(x) / sr, 0, spec.shape[0]))
            else:
                ax.text(0.5, 0.5, "—", ha="center", va="center", transform=ax.transAxes)
            if i == 0:
                ax.set_title(c, fontsize=10)
            if j == 0:
                ax.set_ylabel(f"{r}\nmel band", fontsize=9)
            if i == len(rows) - 1:
                ax.set_xlabel("time (s)", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="dB")
    if title:
        fig.suptitle(title)
    return fig


def grouped_counts(counts: pd.DataFrame, title: str, ylabel: str) -> Figure:
    """Bar chart of a DataFrame indexed by (artist, category) with one column per split."""
    fig, ax = plt.subplots(figsize=(8, 3.2), constrained_layout=True)
    counts.plot(kind="bar", stacked=True, ax=ax, width=0.75, colormap="viridis")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    ax.set_xticklabels([" / ".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in counts.index],
                       rotation=30, ha="right")
    ax.legend(title="split", frameon=False)
    return fig


SYSTEM_COLORS = {BASELINE: "#7f7f7f", FINETUNED: "#d62728"}


def metric_bars(cells: pd.DataFrame, metric: str, title: str | None = None) -> Figure:
    """Per (category, artist) bars of ``metric`` for each system with their bootstrap intervals."""
    df = cells[cells["metric"] == metric]
    cats = [c for c in CATEGORY_ORDER if c in set(df["category"])]
    fig, axes = plt.subplots(1, max(len(cats), 1), figsize=(3.6 * max(len(cats), 1), 3.0), sharey=True,
                             squeeze=False, constrained_layout=True)
    systems = [s for s in SYSTEM_COLORS if s in set(df["system"])]
    width = 0.8 / max(len(systems), 1)
    for ax, cat in zip(axes[0], cats):
        sub = df[df["category"] == cat]
        artists = sorted(set(sub["artist"]))
        for k, s in enumerate(systems):
            rows = sub[sub["system"] == s].set_index("artist").reindex(artists)
            xs = [i + (k - (len(systems) - 1) / 2) * width for i in range(len(artists))]
            err = [(rows["value"] - rows["ci_low"]).clip(lower=0), (rows["ci_high"] - rows["value"]).clip(lower=0)]
            ax.bar(xs, rows["value"], width=width, color=SYSTEM_COLORS[s], label=s, yerr=err, capsize=3)
        ax.set_xticks(range(len(artists)), artists, rotation=20, ha="right")
        ax.set_title(cat)
    axes[0][0].set_ylabel(metric)
    axes[0][-1].legend(frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def delta_forest(deltas: pd.DataFrame, title: str | None = None) -> Figure:
    """Paired deltas (fine-tuned − baseline) with 95 % intervals, one panel per metric; left of 0 = closer."""
    metrics = [m for m in ("KL", "FAD") if m in set(deltas.columns.get_level_values(0))]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 0.45 * len(deltas) + 1.2),
                             squeeze=False, constrained_layout=True)
    labels = [f"{c} / {a}" for c, a in deltas.index]
    for ax, m in zip(axes[0], metrics):
        d, lo, hi = deltas[(m, "delta")], deltas[(m, "ci_low")], deltas[(m, "ci_high")]
        ys = list(range(len(deltas)))[::-1]
        colors = ["#2ca02c" if h < 0 else "#d62728" if l > 0 else "#555555" for l, h in zip(lo, hi)]
        ax.hlines(ys, lo, hi, colors=colors)
        ax.scatter(d, ys, c=colors, zorder=3)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_yticks(ys, labels)
        ax.set_title(f"Δ{m} (fine-tuned − baseline)")
    if title:
        fig.suptitle(title)
    return fig


def loss_curves_figure(curves: dict[str, dict[str, list[tuple[int, float]]]]) -> Figure:
    """Train (per step) and validation (per epoch) cross-entropy, one panel per category.

    A validation point at step 0 (the starting model's loss) is also drawn as a dotted level across
    the panel, so how far fine-tuning moved the held-out loss reads off the figure.

    Args:
        curves: ``{category: {"train": [(step, loss)], "valid": [(step, loss)]}}``, as
            :func:`silicon_sing.train.loss_curves` returns for each category.

    Notebook: notebooks/03_finetune.ipynb
    """
    cats = list(curves)
    fig, axes = plt.subplots(1, len(cats), figsize=(4.2 * len(cats), 3.4), sharey=True,
                             constrained_layout=True, squeeze=False)
    for ax, c in zip(axes[0], cats):
        if curves[c]["train"]:
            ax.plot(*zip(*curves[c]["train"]), color="C0", lw=1.2, label="train (per step)")
        if curves[c]["valid"]:
            ax.plot(*zip(*curves[c]["valid"]), "o-", color="C3", label="valid (per epoch)")
            start = [loss for step, loss in curves[c]["valid"] if step == 0]
            if start:
                ax.axhline(start[0], ls=":", color="C3", lw=1, label="valid, before training")
        ax.set(title=c, xlabel="optimizer step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cross-entropy (nats, mean over codebooks)")
    axes[0][0].legend(fontsize=8)
    return fig


SPLIT_COLORS = {"train": "C0", "valid": "C1", "test": "C3"}


def track_splits(tracks: pd.DataFrame) -> Figure:
    """Each track as a dot at its duration, one row per artist, coloured by split.

    Args:
        tracks: one row per track with columns ``artist``, ``duration_s``, ``split``.

    Notebook: notebooks/01_curate.ipynb
    """
    fig, ax = plt.subplots(figsize=(8, 2.6), constrained_layout=True)
    for i, (_, grp) in enumerate(tracks.groupby("artist")):
        ax.scatter(grp["duration_s"], [i] * len(grp), c=[SPLIT_COLORS[s] for s in grp["split"]], s=60)
    ax.set_yticks(range(tracks["artist"].nunique()), sorted(tracks["artist"].unique()))
    ax.set_xlabel("track duration (s)")
    ax.set_title("Tracks by artist (blue train, orange valid, red test)")
    return fig


def descriptor_overview(descriptors: pd.DataFrame, key_profile: str) -> Figure:
    """Tempo, the singer's pitch, key and moods per artist: the four views of stage 02's descriptors.

    Args:
        descriptors: one row per track with ``artist``, ``bpm``, ``octave_ambiguous``,
            ``vocal_pitch_hz``, ``key`` (None when withheld) and ``moods`` (comma-separated).
        key_profile: the KeyExtractor profile named in the key panel's title.

    Notebook: notebooks/02_caption.ipynb
    """
    D = descriptors
    fig, axes = plt.subplots(2, 2, figsize=(12, 6.5), constrained_layout=True)
    sns.stripplot(data=D, x="bpm", y="artist", hue="octave_ambiguous", palette={True: "C3", False: "C0"},
                  size=8, jitter=0.15, ax=axes[0, 0])
    axes[0, 0].set(title="Tempo (RhythmExtractor2013); red: octave-ambiguous", xlabel="BPM", ylabel="")
    sns.stripplot(data=D, x="vocal_pitch_hz", y="artist", size=8, jitter=0.15, color="C2", ax=axes[0, 1])
    axes[0, 1].set(xscale="log", title="Singer's median pitch (acapella, YIN)", xlabel="Hz", ylabel="")
    keys = D.assign(key=D["key"].fillna("withheld")).groupby(["artist", "key"]).size().unstack(fill_value=0)
    sns.heatmap(keys, annot=True, cbar=False, cmap="Blues", ax=axes[1, 0])
    axes[1, 0].set(title=f"Key (KeyExtractor, {key_profile}): tracks", xlabel="", ylabel="")
    moods = D.assign(mood=D["moods"].str.split(", ")).explode("mood").groupby(["artist", "mood"]).size()
    sns.heatmap(moods.unstack(fill_value=0), annot=True, cbar=False, cmap="Greens", ax=axes[1, 1])
    axes[1, 1].set(title="Moods: tracks tagged", xlabel="", ylabel="")
    axes[0, 0].legend(title="octave-ambiguous", loc="lower right", fontsize=8)
    for ax in axes[1]:
        ax.tick_params(axis="y", rotation=0)
    return fig


MUSICALITY_PANELS = (("keeps_tempo", "tempo kept", 100.0, "%"), ("keeps_key", "key kept", 100.0, "%"),
                     ("voiced", "voiced frames", 100.0, "%"), ("pitch_error_st", "pitch error", 1.0, "semitones"),
                     ("harmonic_lines", "harmonic lines", 1.0, "per frame, 1–8 kHz"))


def musicality_dots(summary: pd.DataFrame, title: str | None = None) -> Figure:
    """One panel per musicality measure: mean and 95 % track-level interval per stem (rows) and source (colour).

    ``summary`` is ``metrics.musicality.summarise_musicality``; the originals are drawn as the reference
    (black), the originals through the codec (when measured) in blue, unmeasured panels are left empty.
    """
    colors = {"original": "#000000", ROUND_TRIP: "#1f77b4", **SYSTEM_COLORS}
    offsets = {"original": -0.27, ROUND_TRIP: -0.09, BASELINE: 0.09, FINETUNED: 0.27}
    cats = [c for c in CATEGORY_ORDER if c in set(summary.get("category", []))]
    fig, axes = plt.subplots(1, len(MUSICALITY_PANELS), figsize=(3.0 * len(MUSICALITY_PANELS), 0.7 + 0.8 * max(len(cats), 1)),
                             sharey=True, constrained_layout=True, squeeze=False)
    for ax, (m, label, scale, unit) in zip(axes[0], MUSICALITY_PANELS):
        for src, off in offsets.items():
            rows = summary[summary["source"] == src].set_index("category").reindex(cats)
            if rows.empty or rows[m].isna().all():
                continue
            ys = np.arange(len(cats)) + off
            v, lo, hi = (rows[c].to_numpy(dtype=float) * scale for c in (m, f"{m}_lo", f"{m}_hi"))
            ax.hlines(ys, lo, hi, colors=colors[src], lw=1.5)
            ax.scatter(v, ys, color=colors[src], zorder=3, s=22, label=src)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(unit)
        if unit == "%":
            ax.set_xlim(-5, 105)
    axes[0][0].set_yticks(np.arange(len(cats)), cats)
    axes[0][0].invert_yaxis()
    # the legend of the panel that shows the most sources (pitch error has no originals' row)
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes[0]), key=lambda hl: len(hl[0]))
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=len(handles), frameon=False)
    if title:
        fig.suptitle(title)
    return fig
