"""The listening room: prompt, original, baseline and fine-tuned continuations side by side.

Every held-out example gets one row: four clips (the prompt, then the three continuations of it),
each a player with its small spectrogram beneath, so a reader can compare by ear and by eye. The
same rows are rendered as static HTML for the book (no kernel needed: audio is compressed and
inlined, spectrograms are small PNGs on one colour scale) and as an ipywidgets panel for Jupyter.
The row is a CSS grid (``book/_static/silicon.css``): four equal columns that shrink with the page,
two by two on narrow screens, so no player is ever cut off. A last section plays, for one example of
each stem type, the original continuation beside the same audio through the baseline's codec alone:
the best any continuation in the room can sound (the evaluation's "codec round trip").

Notebook: notebooks/05_listen.ipynb
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import audio as au
from .fsutil import atomic_write_text
from .generate import Generation, load_generations
from .metrics.musicality import ROUND_TRIP
from .music import LINE_BANDS, harmonic_lines
from .params import CATEGORIES, Params

COLUMNS = ("prompt", "original", "baseline", "fine-tuned")
CODEC_COLUMNS = ("original", ROUND_TRIP)  # the codec section: what the decoder alone makes of the original
EMPTY_ROOM = "<p><em>No continuations yet: run the evaluation notebook.</em></p>"
LINES_TIP = "harmonic lines per 10 ms frame between 1 and 8 kHz, as the evaluation chapter counts them"


@dataclass
class ListeningExample:
    """One held-out example with the four clips a reader compares."""

    example_id: str
    artist: str
    category: str
    caption: str
    sr: int
    clips: dict[str, np.ndarray]  # COLUMNS (or CODEC_COLUMNS) -> mono audio, shown in this order


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
    def order(i: str) -> tuple[int, int, str]:
        """Category, then each track's first segment before any track's second: the room spans songs."""
        tail = i.rsplit("/", 1)[-1]
        return (CATEGORIES.index(pairs[i][next(iter(pairs[i]))].category), int(tail) if tail.isdigit() else 0, i)

    for ex_id in sorted(pairs, key=order):
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


SPEC_DB_RANGE = (-80.0, 0.0)  # one colour scale for every clip of the room


def spectrogram_png(x: np.ndarray, sr: int, n_mels: int = LINE_BANDS, pool: int = 2) -> bytes:
    """A small log-mel spectrogram of mono ``x`` ``[N]`` as a PNG: one pixel row per mel band and one column per
    ``pool`` 10 ms frames (a clip is shown at most ~200 px wide, so finer time steps would only add bytes).

    The bands are the ones :func:`silicon_sing.music.harmonic_lines` counts lines in, so a reader sees what each
    label counts: at 48 bands two harmonics 250 Hz apart near 2 kHz merged into one smear.
    """
    import matplotlib
    from PIL import Image  # matplotlib's own dependency

    img = au.log_mel(x, sr, n_mels=n_mels) if len(x) else np.full((n_mels, 1), SPEC_DB_RANGE[0])
    if pool > 1 and img.shape[1] >= pool:
        img = img[:, : img.shape[1] // pool * pool].reshape(img.shape[0], -1, pool).mean(axis=2)
    # a 256-colour palette PNG, not matplotlib's RGBA: one byte a pixel keeps 128 bands as light as 48 were
    # (the room inlines ~100 of them); the index is matplotlib's own lookup of a 256-entry colormap
    lo, hi = SPEC_DB_RANGE
    index = np.clip(((img[::-1] - lo) / (hi - lo) * 256).astype(np.int64), 0, 255).astype(np.uint8)
    palette = (matplotlib.colormaps["magma"](np.arange(256))[:, :3] * 255).round().astype(np.uint8)
    image = Image.frombytes("P", (index.shape[1], index.shape[0]), index.tobytes())
    image.putpalette(palette.ravel().tolist())
    buf = io.BytesIO()
    image.save(buf, format="png", optimize=True)
    return buf.getvalue()


def lines_label(x: np.ndarray, sr: int) -> str:
    """'1.2 lines/frame': the clip's harmonic lines between 1 and 8 kHz (:func:`silicon_sing.music.harmonic_lines`,
    the evaluation's measure), for its caption; empty for a clip too short to measure."""
    n = harmonic_lines(x, sr)
    return f"{n:.1f} lines/frame" if np.isfinite(n) else ""


def clip_html(ex: ListeningExample, column: str) -> str:
    """One clip of an example: its label and harmonic lines per frame, a player and its spectrogram."""
    x = ex.clips[column]
    png = base64.b64encode(spectrogram_png(x, ex.sr)).decode("ascii")
    lines = lines_label(x, ex.sr)
    count = f' <span class="listen-lines" title="{LINES_TIP}">· {lines}</span>' if lines else ""
    return (f'<figure class="listen-clip"><figcaption>{html.escape(column)}{count}</figcaption>'
            f"{au.player_html(x, ex.sr, f'{ex.example_id} {column}', style='width: 100%')}"
            f'<img class="listen-spec" alt="log-mel spectrogram, {html.escape(column)}, {html.escape(ex.example_id)}"'
            f' src="data:image/png;base64,{png}"/></figure>')


def example_row_html(ex: ListeningExample) -> str:
    """One example as HTML: id and caption, then its clips side by side (four columns, or two of them)."""
    clips = "".join(clip_html(ex, c) for c in ex.clips)
    return (f'<div class="listen-example"><p class="listen-caption"><code>{html.escape(ex.example_id)}</code> — '
            f"<em>{html.escape(ex.caption or '(no caption)')}</em></p>"
            f'<div class="listen-grid">{clips}</div></div>')


def cell_table_html(examples: Sequence[ListeningExample]) -> str:
    """The examples of one (artist, category), one grid row each."""
    rows = "".join(example_row_html(e) for e in examples)
    return f'<div class="silicon-players listen">{rows}</div>'


def listening_room_html(examples: Sequence[ListeningExample], category: str | None = None) -> str:
    """Static listening room: one collapsible section per (category, artist)."""
    groups: dict[tuple[str, str], list[ListeningExample]] = defaultdict(list)
    for e in examples:
        if category is None or e.category == category:
            groups[(e.category, e.artist)].append(e)
    parts = []
    for (cat, artist), exs in sorted(groups.items(), key=lambda kv: (CATEGORIES.index(kv[0][0]), kv[0][1])):
        count = f"{len(exs)} example{'' if len(exs) == 1 else 's'}"
        parts.append(f'<details class="listen-cell" open><summary><strong>{html.escape(artist)}</strong> — '
                     f"{html.escape(cat)} ({count})</summary>{cell_table_html(exs)}</details>")
    return "".join(parts) or EMPTY_ROOM


def codec_examples(examples: Sequence[ListeningExample], round_trip: Callable[[np.ndarray, int], np.ndarray],
                   per_category: int = 1) -> list[ListeningExample]:
    """The first ``per_category`` examples of each category: original continuation and its codec round trip.

    Args:
        examples: the room's examples (:func:`listening_examples`), in their order.
        round_trip: ``f(y [N], sr) -> [N]``, mono audio through the baseline's compression model and
            back (``generate.codec_round_trip``). The prompt and the continuation go through together,
            as in the evaluation, and the prompt is cut afterwards.
        per_category: how many examples of each category.
    """
    taken: dict[str, int] = defaultdict(int)
    out = []
    for ex in examples:
        if taken[ex.category] >= per_category:
            continue
        taken[ex.category] += 1
        cut = len(ex.clips["prompt"])
        whole = np.concatenate([ex.clips["prompt"], ex.clips["original"]])
        through = np.asarray(round_trip(whole, ex.sr), dtype=np.float32)[cut:]
        out.append(ListeningExample(ex.example_id, ex.artist, ex.category, ex.caption, ex.sr,
                                    {"original": ex.clips["original"], ROUND_TRIP: through}))
    return out


def codec_room_html(examples: Sequence[ListeningExample]) -> str:
    """The codec section: one row per example of :func:`codec_examples`, in category order."""
    ordered = sorted(examples, key=lambda e: CATEGORIES.index(e.category))
    return cell_table_html(ordered) if ordered else EMPTY_ROOM


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
    paths = []
    for cat in CATEGORIES:
        body = listening_room_html(examples, cat)
        path = out_dir / f"listening-{cat}.html"
        atomic_write_text(path, f"<!doctype html><meta charset='utf-8'><title>{cat}</title>{body}")
        paths.append(path)
    return paths
