"""The listening room: prompt, original, baseline and fine-tuned continuations side by side.

Every held-out example gets one row: four players (the prompt, then the three continuations of it)
and a strip of small spectrograms under them, so a reader can compare by ear and by eye. The same
rows are rendered as static HTML for the book (no kernel needed: audio is compressed and inlined,
spectrograms are small PNGs) and as an ipywidgets panel for Jupyter.
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import audio as au
from .generate import Generation, load_generations
from .params import CATEGORIES, Params

COLUMNS = ("prompt", "original", "baseline", "fine-tuned")


@dataclass
class ListeningExample:
    """One held-out example with the four clips a reader compares."""

    example_id: str
    artist: str
    category: str
    caption: str
    sr: int
    clips: dict[str, np.ndarray]  # COLUMNS -> mono audio


def _mono(path: str, sr: int) -> np.ndarray:
    """Load ``path`` as mono at ``sr``."""
    x, file_sr = au.load_audio(path)
    return au.resample(au.to_mono(x), file_sr, sr)


def listening_examples(params: Params, per_cell: int = 2, generations: Sequence[Generation] | None = None,
                       sr: int = 32000) -> list[ListeningExample]:
    """Up to ``per_cell`` examples per (artist, category) that both systems continued, in a fixed order."""
    gens = list(generations) if generations is not None else load_generations(params.run_dir)
    pairs: dict[str, dict[str, Generation]] = defaultdict(dict)
    for g in gens:
        pairs[g.example_id][g.system] = g
    taken: dict[tuple[str, str], int] = defaultdict(int)
    out = []
    for ex_id in sorted(pairs, key=lambda i: (CATEGORIES.index(pairs[i][next(iter(pairs[i]))].category), i)):
        systems = pairs[ex_id]
        if set(systems) != {"baseline", "fine-tuned"}:
            continue
        g = systems["baseline"]
        key = (g.artist, g.category)
        if taken[key] >= per_cell:
            continue
        taken[key] += 1
        cut = int(round(g.prompt_seconds * sr))
        original = _mono(g.original, sr)
        clips = {"prompt": original[:cut], "original": original[cut:],
                 "baseline": _mono(g.generated, sr)[cut:], "fine-tuned": _mono(systems["fine-tuned"].generated, sr)[cut:]}
        out.append(ListeningExample(ex_id, g.artist, g.category, g.caption, sr, clips))
    return out


def spectrogram_strip(ex: ListeningExample, width: float = 9.0, height: float = 1.3) -> bytes:
    """A PNG with one small log-mel spectrogram per column, on a shared colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import log_mel

    fig, axes = plt.subplots(1, len(COLUMNS), figsize=(width, height), dpi=80,
                             gridspec_kw={"wspace": 0.05}, constrained_layout=False)
    for ax, col in zip(axes, COLUMNS):
        x = ex.clips[col]
        if len(x):
            ax.imshow(log_mel(x, ex.sr, n_mels=48), origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=0)
        ax.set_axis_off()
    fig.subplots_adjust(left=0, right=1, top=1, bottom=0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def example_row_html(ex: ListeningExample) -> str:
    """One example as HTML: caption, four players, the spectrogram strip beneath."""
    players = "".join(f"<td>{au.player_html(ex.clips[c], ex.sr, f'{ex.example_id} {c}')}</td>" for c in COLUMNS)
    png = base64.b64encode(spectrogram_strip(ex)).decode("ascii")
    return (
        f'<tr class="listen-caption"><td colspan="{len(COLUMNS)}"><code>{html.escape(ex.example_id)}</code> — '
        f"<em>{html.escape(ex.caption or '(no caption)')}</em></td></tr>"
        f"<tr>{players}</tr>"
        f'<tr><td colspan="{len(COLUMNS)}"><img class="listen-spec" alt="log-mel spectrograms of {html.escape(ex.example_id)}"'
        f' src="data:image/png;base64,{png}" style="width:100%"/></td></tr>'
    )


def cell_table_html(examples: Sequence[ListeningExample]) -> str:
    """A player table for the examples of one (artist, category)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    rows = "".join(example_row_html(e) for e in examples)
    return f'<table class="silicon-players listen"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def listening_room_html(examples: Sequence[ListeningExample], category: str | None = None) -> str:
    """Static listening room: one collapsible section per (category, artist)."""
    groups: dict[tuple[str, str], list[ListeningExample]] = defaultdict(list)
    for e in examples:
        if category is None or e.category == category:
            groups[(e.category, e.artist)].append(e)
    parts = []
    for (cat, artist), exs in sorted(groups.items(), key=lambda kv: (CATEGORIES.index(kv[0][0]), kv[0][1])):
        parts.append(f'<details class="listen-cell" open><summary><strong>{html.escape(artist)}</strong> — '
                     f"{html.escape(cat)} ({len(exs)} examples)</summary>{cell_table_html(exs)}</details>")
    return "".join(parts) or "<p><em>No continuations yet: run the evaluation notebook.</em></p>"


def listening_panel(examples: Sequence[ListeningExample]):
    """An ipywidgets panel (artist, category, example) that shows the same rows in Jupyter."""
    import ipywidgets as w

    artists = sorted({e.artist for e in examples})
    cats = [c for c in CATEGORIES if any(e.category == c for e in examples)]
    artist = w.Dropdown(options=artists, description="artist")
    cat = w.Dropdown(options=cats, description="category")
    pick = w.Dropdown(description="example")
    out = w.HTML()

    def matching() -> list[ListeningExample]:
        return [e for e in examples if e.artist == artist.value and e.category == cat.value]

    def refresh_examples(*_: object) -> None:
        ids = [e.example_id for e in matching()]
        pick.options = ids
        pick.value = ids[0] if ids else None

    def show(*_: object) -> None:
        chosen = [e for e in matching() if e.example_id == pick.value]
        out.value = cell_table_html(chosen) if chosen else "<p>—</p>"

    artist.observe(refresh_examples, "value")
    cat.observe(refresh_examples, "value")
    pick.observe(show, "value")
    refresh_examples()
    show()
    return w.VBox([w.HBox([artist, cat, pick]), out])


def static_listening_pages(examples: Sequence[ListeningExample], out_dir: Path) -> list[Path]:
    """Write one standalone HTML file per category (for sharing outside the book)."""
    from .fsutil import atomic_write_text

    paths = []
    for cat in CATEGORIES:
        body = listening_room_html(examples, cat)
        path = out_dir / f"listening-{cat}.html"
        atomic_write_text(path, f"<!doctype html><meta charset='utf-8'><title>{cat}</title>{body}")
        paths.append(path)
    return paths
