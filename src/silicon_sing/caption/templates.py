"""Caption wording: deterministic templates and synonyms, and the mood vocabulary.

Templates and synonyms are drawn with an RNG seeded by ``(seed, track_id, category)``, so captions
vary across tracks but a rerun reproduces them. The acapella caption describes the voice, the
instrumental one the accompaniment, the full one both.

Notebook: notebooks/02_caption.ipynb
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..fsutil import text_sha1
from .descriptors import TrackDescriptors

CAPTION_VERSION = 1  # bump when templates change (captions are cheap: always recomputed)

MOOD_ADJECTIVE = {
    "love": "romantic", "party": "party", "summer": "summery", "film": "cinematic", "movie": "cinematic",
    "christmas": "festive", "holiday": "festive", "action": "action-packed", "adventure": "adventurous",
    "drama": "dramatic", "dream": "dreamy", "space": "spacey", "nature": "organic", "sport": "sporty",
    "travel": "wandering", "game": "playful", "children": "playful", "trailer": "epic", "advertising": "catchy",
    "commercial": "catchy", "corporate": "polished", "documentary": "reflective", "background": "understated",
    "soundscape": "atmospheric", "ballad": "ballad-like", "relaxing": "relaxed", "fast": "fast-paced",
    "slow": "slow", "sexy": "sultry", "meditative": "meditative", "motivational": "motivating",
}



@dataclass
class CaptionRecord:
    """The caption of one track × category, as written into that track's segment sidecars."""

    track_id: str
    artist: str
    track: str
    split: str
    category: str
    uuid: str
    caption: str  # without the UUID
    description: str  # "<uuid> <caption>": what audiocraft's text conditioner sees
    bpm: float | None
    key: str | None
    genre: str | None
    moods: list[str]
    keywords: list[str]
    sources: dict[str, str]
    n_segments: int
    template: str



# --------------------------------------------------------------------------- captions


def _article(word: str) -> str:
    """``a`` or ``an`` before ``word``."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _join(words: Iterable[str | None]) -> str:
    """Join non-empty words with single spaces."""
    return " ".join(w for w in words if w)


def _and(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption_rng(seed: int, track_id: str, category: str) -> random.Random:
    """The RNG that picks templates and synonyms for one caption (stable across processes)."""
    return random.Random(int(text_sha1(f"{CAPTION_VERSION}|{seed}|{track_id}|{category}")[:16], 16))


def _register(td: TrackDescriptors, rng: random.Random) -> str | None:
    """e.g. ``deep low-register``, or None when the register is unknown."""
    return {"low": rng.choice(["deep low-register", "low, dark-toned", "baritone-range"]),
            "mid": rng.choice(["mid-register", "mid-range"]),
            "high": rng.choice(["high-register", "bright high", "soprano-range"])}.get(td.vocal_register or "")


def _voice_phrase(td: TrackDescriptors, rng: random.Random) -> str:
    """e.g. ``upfront deep low-register vocals`` (presence in the mix + register)."""
    presence = {"lead": rng.choice(["upfront", "prominent"]), "faint": "faint"}.get(td.vocals)
    return _join([presence, _register(td, rng), rng.choice(["vocals", "vocals", "singing"])])


def make_caption(td: TrackDescriptors, category: str, uuid: str, seed: int, n_segments: int = 0) -> CaptionRecord:
    """The deterministic natural-language caption of one track × category, UUID-prefixed."""
    rng = caption_rng(seed, td.track_id, category)
    mood = MOOD_ADJECTIVE.get(td.moods[0], td.moods[0]) if td.moods else None
    if td.moods[1:2] and rng.random() < 0.5:
        mood = MOOD_ADJECTIVE.get(td.moods[1], td.moods[1])
    if mood is None and td.energy_level:
        mood = {"low": "laid-back", "medium": "steady", "high": "high-energy"}[td.energy_level]
    genre = td.genre
    instruments = list(td.instruments)
    tail = []
    if td.bpm:
        tail.append(f"{round(td.bpm)} BPM")
    if td.key_name:
        tail.append(f"in {td.key_name}")
    rng.shuffle(tail)
    t = rng.randrange(3)
    if category == "acapella":  # the voice alone: its character and register, no instruments
        register = _register(td, rng)
        body = [_join(["a cappella", mood, genre, "vocals"]) + (f", {register} voice" if register else ""),
                _join(["isolated", mood, genre, "vocal track"]) + (f": {register} singing" if register else ""),
                _join(["unaccompanied", mood, genre, "singing"]) + (f" in a {register} voice" if register else ""),
                ][t]
    elif category == "instrumental":  # the accompaniment: what plays, and that nobody sings
        instr = _and(instruments) if instruments else None
        body = [_join([mood, genre, "instrumental"]) + (f" with {instr}" if instr else ""),
                _join([mood, genre, "backing track without vocals"]) + (f", featuring {instr}" if instr else ""),
                _join(["instrumental", mood, genre, "beat"]) + (f" built on {instr}" if instr else ""),
                ][t]
    else:  # the mix: voice and accompaniment
        body = _join([mood, genre, ("track", "song", "tune")[t]])
        if td.vocals != "none":
            body += f" with {_voice_phrase(td, rng)}"
            if instruments:
                body += rng.choice([" over ", ", backed by "]) + _and(instruments)
        elif instruments:
            body += f" with {_and(instruments)}"
    caption = ", ".join([body.strip(), *tail])
    keywords = [w for w in [genre, *td.styles, *td.moods, *instruments,
                            f"{td.vocal_register} vocals" if td.vocal_register and category != "instrumental" else None,
                            f"{td.energy_level} energy" if td.energy_level else None, td.brightness] if w]
    fields = {"bpm", "key", "moods", "genre", "vocals", "vocal_register", "instruments", "energy"}
    return CaptionRecord(
        track_id=td.track_id, artist=td.artist, track=td.track, split=td.split, category=category, uuid=uuid,
        caption=caption, description=f"{uuid} {caption}", bpm=td.bpm, key=td.key_name, genre=genre,
        moods=list(td.moods), keywords=list(dict.fromkeys(keywords)),
        sources={k: v for k, v in td.sources.items() if k in fields}, n_segments=n_segments,
        template=f"{category}-{t}",
    )
