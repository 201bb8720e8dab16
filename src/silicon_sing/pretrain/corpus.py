"""The pre-training corpus: synthetic stems of the smoke artists under a seed no profile uses, captioned as stage 02 would.

Notebook: notebooks/03_finetune.ipynb (the pre-trained nano baseline that fine-tuning starts from)
"""

from __future__ import annotations

from collections.abc import Sequence
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


def synth_corpus(spec: CorpusSpec, categories: Sequence[str] = CATEGORY_ORDER, all_stems: bool = False,
                 progress: bool = True) -> list[Clip]:
    """Render the corpus in memory: per artist and track, the stems ``spec.category_tracks`` asks for.

    ``all_stems`` keeps every category of every track (the codec's corpus and held-out sets).
    """
    clips: list[Clip] = []
    jobs = [(a, i) for a in ARTISTS for i in range(spec.tracks_per_artist)]
    for style, i in tqdm(jobs, desc=f"synthesising (seed {spec.seed})", unit="track", disable=not progress):
        wanted = [c for c in categories if all_stems or i < spec.category_tracks.get(c, 0)]
        if not wanted:
            continue
        plan, stems = _track_stems(style, i, spec)
        captions = stage_captions(plan, stems, spec.sample_rate, spec.seed)
        for c in wanted:
            clips.append(Clip(style.name, i, c, captions[c], stems[c]))
    return clips
