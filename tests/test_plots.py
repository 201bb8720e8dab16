"""Tests for silicon_sing.plots: each figure function on a tiny input; spectrograms unchanged by the shared filterbank."""

from __future__ import annotations

import librosa
import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from silicon_sing.audio import log_mel
from silicon_sing.plots import (
    delta_forest,
    descriptor_overview,
    grouped_counts,
    loss_curves_figure,
    metric_bars,
    spectrogram_grid,
    track_splits,
)

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def _reference_log_mel(x: np.ndarray, sr: int, n_mels: int = 64, hop: int = 320, n_fft: int = 1024) -> np.ndarray:
    """log_mel as it was before the filterbank moved: librosa's mel filters with its defaults."""
    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels).astype(np.float32)
    x = np.pad(x.astype(np.float32), (n_fft // 2, n_fft // 2))
    n_frames = 1 + max(0, (len(x) - n_fft) // hop)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n_frames]
    window = np.hanning(n_fft).astype(np.float32)
    power = (np.abs(np.fft.rfft(frames * window, axis=1)) / (window.sum() / 2)) ** 2
    return np.maximum(10 * np.log10(fb @ power.T + 1e-10), -80.0)


@pytest.mark.parametrize("sr", [16000, 32000])
def test_log_mel_is_unchanged_by_the_shared_filterbank(sr: int) -> None:
    """The spectrogram images are bit-identical to the ones drawn with plots' former private filterbank."""
    x = np.random.default_rng(0).standard_normal(sr // 2).astype(np.float32) * 0.1
    got = log_mel(x, sr)
    assert got.shape == (64, 1 + sr // 2 // 320)
    np.testing.assert_array_equal(got, _reference_log_mel(x, sr))


def test_spectrogram_grid_lays_out_rows_and_columns_with_labels() -> None:
    sr = 8000
    clip = (0.1 * np.sin(2 * np.pi * 440 * np.arange(sr // 2) / sr)).astype(np.float32), sr
    fig = spectrogram_grid({("A", "acapella"): clip, ("B", "full"): clip}, ["A", "B"], ["acapella", "full"],
                           title="grid")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4 + 1  # 2 × 2 panels and the colour bar
    assert fig.axes[4].get_ylabel() == "dB"
    panels = fig.axes[:4]
    assert [ax.get_title() for ax in panels[:2]] == ["acapella", "full"]
    assert panels[0].get_ylabel() == "A\nmel band" and panels[2].get_ylabel() == "B\nmel band"
    assert panels[2].get_xlabel() == "time (s)"
    assert any(t.get_text() == "—" for t in panels[1].texts)  # a missing clip is a dash
    assert fig.get_suptitle() == "grid"


def test_grouped_counts_is_a_stacked_bar_per_artist_and_category() -> None:
    idx = pd.MultiIndex.from_tuples([("A", "acapella"), ("B", "full")], names=["artist", "category"])
    counts = pd.DataFrame({"train": [3, 4], "test": [1, 2]}, index=idx)
    fig = grouped_counts(counts, "Segments", "segments")
    (ax,) = fig.axes
    assert isinstance(fig, Figure) and ax.get_title() == "Segments" and ax.get_ylabel() == "segments"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A / acapella", "B / full"]
    assert ax.get_legend().get_title().get_text() == "split"


def _cells() -> pd.DataFrame:
    rows = []
    for cat in ("full", "instrumental"):
        for artist in ("A", "B"):
            for system, v in (("baseline", 1.0), ("fine-tuned", 0.8)):
                rows.append(dict(category=cat, artist=artist, system=system, metric="KL", value=v,
                                 ci_low=v - 0.1, ci_high=v + 0.1))
    return pd.DataFrame(rows)


def test_metric_bars_has_one_panel_per_category_in_table_order() -> None:
    fig = metric_bars(_cells(), "KL", title="KL")
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["instrumental", "full"]
    assert fig.axes[0].get_ylabel() == "KL"
    assert [t.get_text() for t in fig.axes[-1].get_legend().get_texts()] == ["baseline", "fine-tuned"]


def test_delta_forest_has_one_panel_per_metric() -> None:
    cols = pd.MultiIndex.from_tuples([(m, f) for m in ("KL", "FAD") for f in ("delta", "ci_low", "ci_high")])
    idx = pd.MultiIndex.from_tuples([("acapella", "A"), ("full", "B")], names=["category", "artist"])
    deltas = pd.DataFrame([[-0.2, -0.3, -0.1, 0.5, 0.1, 0.9], [0.0, -0.1, 0.1, -1.0, -2.0, 0.5]],
                          index=idx, columns=cols)
    fig = delta_forest(deltas)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["ΔKL (fine-tuned − baseline)", "ΔFAD (fine-tuned − baseline)"]
    ax = fig.axes[0]
    by_height = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert by_height["acapella / A"] > by_height["full / B"]  # the first row is drawn on top


def test_loss_curves_figure_has_a_panel_per_category() -> None:
    curves = {"acapella": {"train": [(1, 5.0), (2, 4.0)], "valid": [(0, 4.8), (2, 4.5)]},
              "full": {"train": [(1, 5.5)], "valid": []}}
    fig = loss_curves_figure(curves)
    assert isinstance(fig, Figure) and [ax.get_title() for ax in fig.axes] == ["acapella", "full"]
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 1
    level = [ln for ln in fig.axes[0].lines if ln.get_label() == "valid, before training"]
    assert len(level) == 1 and set(level[0].get_ydata()) == {4.8}  # the starting model's loss, across the panel


def test_track_splits_colours_each_track_by_split() -> None:
    tracks = pd.DataFrame({"artist": ["A", "A", "B"], "duration_s": [30.0, 40.0, 35.0],
                           "split": ["train", "test", "valid"]})
    fig = track_splits(tracks)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B"] and len(ax.collections) == 2


def test_descriptor_overview_draws_the_four_views() -> None:
    D = pd.DataFrame({"artist": ["A", "B"], "bpm": [90.0, 140.0], "octave_ambiguous": [False, True],
                      "vocal_pitch_hz": [180.0, 320.0], "key": ["C major", None], "moods": ["calm", "dark, energetic"]})
    fig = descriptor_overview(D, "edma")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4 and any("edma" in t for t in titles)


def test_musicality_dots_has_a_panel_per_measure_and_the_originals_as_reference() -> None:
    """Five panels (tempo, key, voicing, pitch error, harmonic lines), one row per stem, the sources in the legend."""
    from silicon_sing.plots import musicality_dots
    from stems import musicality_summary

    fig = musicality_dots(musicality_summary())
    assert [ax.get_title() for ax in fig.axes] == ["tempo kept", "key kept", "voiced frames", "pitch error",
                                                   "harmonic lines"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["instrumental", "acapella"]
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"original", "baseline", "fine-tuned"}
    matplotlib.pyplot.close(fig)
    fig = musicality_dots(musicality_summary(round_trip=True))  # the codec's ceiling, drawn between the two
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["original", "codec round trip", "baseline", "fine-tuned"]
    matplotlib.pyplot.close(fig)
