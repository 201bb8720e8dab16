"""The pre-training corpus: synthetic stems of the smoke artists under a seed no profile uses, with generic captions.

Notebook: notebooks/03_finetune.ipynb (the pre-trained nano baseline that fine-tuning starts from)
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..audio import to_mono
from ..curate import shared_gain_db
from ..params import CATEGORY_ORDER
from ..synth import ARTISTS, ArtistStyle, TrackPlan, plan_track, synth_track
from .config import CorpusSpec

# --------------------------------------------------------------------------- corpus


@dataclass
class Clip:
    """One mono stem of one synthetic track, loudness-normalised, with its pre-training caption."""

    artist: str
    track_index: int
    category: str
    caption: str
    audio: np.ndarray  # float32 [N] at the corpus rate


_GENRE = {"ballad": ("piano ballad", "slow ballad", "ballad"),
          "trap": ("hip-hop beat", "trap beat", "hip-hop"),
          "dance": ("dance pop", "house track", "dance")}
_MOODS = {"ballad": ("calm", "sad", "dreamy", "gentle"),
          "trap": ("dark", "aggressive", "powerful", "gritty"),
          "dance": ("happy", "energetic", "bright", "uplifting")}
_REGISTER = {"soprano": "high", "tenor": "mid-range", "bass": "deep low"}


def pretrain_caption(style: ArtistStyle, plan: TrackPlan, category: str, rng: np.random.Generator) -> str:
    """A short generic caption (genre, mood, tempo, key) like a tagged catalogue entry; no UUID."""
    genre = str(rng.choice(_GENRE[style.instrumental]))
    mood = str(rng.choice(_MOODS[style.instrumental]))
    tail = [f"{round(plan.tempo_bpm)} BPM", f"in {plan.key}"]
    rng.shuffle(tail)
    tail = tail[: int(rng.integers(1, 3))]
    voice = f"{_REGISTER.get(style.voice, '')} {'rap' if style.delivery == 'rap' else 'vocals'}".strip()
    body = {"instrumental": (f"instrumental {genre}", f"{mood} {genre} instrumental", f"{mood} {genre}, no vocals"),
            "acapella": (f"a cappella {voice}", f"{mood} {voice}, a cappella", f"isolated {voice}, {genre}"),
            "full": (f"{mood} {genre} with {voice}", f"{genre} song with {voice}", f"{mood} song, {voice}")}[category]
    return ", ".join([str(rng.choice(body)), *tail])


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
        rng = np.random.default_rng([spec.seed, zlib.crc32(style.name.encode()), i, 3])  # captions: own stream
        for c in wanted:
            clips.append(Clip(style.name, i, c, pretrain_caption(style, plan, c, rng), stems[c]))
    return clips
