"""The pre-training corpus: synthetic stems of the smoke artists under a seed no profile uses, captioned as stage 02 would.

Notebook: notebooks/03_finetune.ipynb (the pre-trained nano baseline that fine-tuning starts from)
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..audio import to_mono
from ..caption import AnalysisConfig, analyse_signal, describe_track, make_caption
from ..curate import shared_gain_db
from ..names import slugify
from ..params import CATEGORY_ORDER
from ..synth import ARTISTS, ArtistStyle, TrackPlan, plan_track, synth_track
from .config import CorpusSpec

# --------------------------------------------------------------------------- corpus


@dataclass
class Clip:
    """One mono stem of one synthetic track, loudness-normalised, with its pre-training caption (no UUID)."""

    artist: str
    track_index: int
    category: str
    caption: str
    audio: np.ndarray  # float32 [N] at the corpus rate


def stage_captions(plan: TrackPlan, stems: dict[str, np.ndarray], sample_rate: int, seed: int) -> dict[str, str]:
    """Per stem, the caption stage 02 would write for this track, without the run UUID.

    The same measurements (:func:`silicon_sing.caption.analyse_signal`, model-free), decisions and
    templates (:func:`silicon_sing.caption.make_caption`) as ``notebooks/02_caption.ipynb``: the
    baseline is later prompted with exactly such captions (plus the UUID), and a caption unlike any
    it was trained on, amplified by classifier-free guidance, turned its continuations into noise
    (measured: key kept 56 % with training-style captions, 0 % with stage-02 captions).
    """
    config = AnalysisConfig()
    measured = {c: analyse_signal(stems[c], sample_rate, c, config) for c in CATEGORY_ORDER}
    track = {"track_id": f"{slugify(plan.artist)}/{slugify(plan.title)}", "artist": plan.artist, "track": plan.title,
             "duration_s": plan.seconds}
    td = describe_track(track, measured, config)
    return {c: make_caption(td, c, uuid="", seed=seed).caption for c in CATEGORY_ORDER}


def _track_stems(style: ArtistStyle, index: int, spec: CorpusSpec) -> tuple[TrackPlan, dict[str, np.ndarray]]:
    """Render one track's stems as mono at the corpus rate, gained like stage 01 (shared gain)."""
    plan = plan_track(style, index, spec.seconds, spec.seed)
    stems = {k: to_mono(v).astype(np.float32) for k, v in synth_track(style, index, spec.seconds, spec.sample_rate,
                                                                       spec.seed).items()}
    gain_db, _ = shared_gain_db(stems, spec.sample_rate, spec.target_lufs)
    g = np.float32(10.0 ** (gain_db / 20.0))
    return plan, {k: v * g for k, v in stems.items()}


def _render_clips(style: ArtistStyle, index: int, spec: CorpusSpec, wanted: Sequence[str]) -> list[Clip]:
    """The ``wanted`` stems of one track, each with its stage-02 caption (a process-pool job)."""
    plan, stems = _track_stems(style, index, spec)
    captions = stage_captions(plan, stems, spec.sample_rate, spec.seed)
    return [Clip(style.name, index, c, captions[c], stems[c]) for c in wanted]


# below this many tracks, starting worker processes costs more than it saves (measured: the 3-track test corpus took
# 24 s with 2 spawned workers, 5 s in-process)
SPAWN_MIN_TRACKS = 8


def synth_corpus(spec: CorpusSpec, categories: Sequence[str] = CATEGORY_ORDER, all_stems: bool = False,
                 progress: bool = True, workers: int = 1) -> list[Clip]:
    """Render the corpus in memory: per artist and track (up to ``spec.tracks_per_artist``), the stems the
    codec or the LM hears (:meth:`CorpusSpec.tracks_for`), in artist, track, category order.

    ``all_stems`` keeps every category of every track (the held-out sets). ``workers`` > 1 renders tracks in
    that many processes when there are more than :data:`SPAWN_MIN_TRACKS` (a spawned worker takes ~10 s to import
    its modules, a track ~3 s to render); each track depends only on (artist, index, seed), so the clips are the same.
    """
    jobs = [(a, i, [c for c in categories if all_stems or i < spec.tracks_for(c)])
            for a in ARTISTS for i in range(spec.tracks_per_artist)]
    jobs = [j for j in jobs if j[2]]
    bar = tqdm(total=len(jobs), desc=f"synthesising (seed {spec.seed})", unit="track", disable=not progress)
    clips: list[Clip] = []
    if workers <= 1 or len(jobs) <= SPAWN_MIN_TRACKS:
        for style, i, wanted in jobs:
            clips += _render_clips(style, i, spec, wanted)
            bar.update()
    else:
        # spawn, not fork: the parent holds torch's thread pools, which a forked child may deadlock on
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for part in pool.map(_render_clips, *zip(*[(a, i, spec, w) for a, i, w in jobs]), chunksize=4):
                clips += part
                bar.update()
    bar.close()
    return clips
