"""Training and evaluation examples, the run's UUID and the caption augmentation.

Data records that cross from the curated/captioned run dir into the stages that use it
(fine-tuning, generation), kept below both so that neither imports the other or the captioning
stage. audiocraft keeps the same pieces together in ``data/music_dataset.py``
(``MusicInfo``, ``augment_music_info_description``).

- :class:`TrainingExample` — a curated segment of the train/valid split with its sidecar caption
  (what ``notebooks/03_finetune.ipynb`` trains on); :func:`load_training_examples`.
- :class:`HeldOutExample` — a test-split segment to continue (``notebooks/04_evaluate.ipynb``);
  :func:`held_out_examples`.
- The run's UUID (``<run_dir>/captions/run_uuid.json``): :func:`ensure_run_uuid` (stage 02
  records it), :func:`load_run_uuid` (stages 03–04 reuse it), :func:`split_uuid`.
- :func:`augment_description` — audiocraft's training-time text augmentation applied to everything
  except the UUID; why, in ``notebooks/02_caption.ipynb`` and :mod:`silicon_sing.caption`.
"""

from __future__ import annotations

import random
import re
import time
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .curate import load_segments
from .fsutil import atomic_write_json, read_json, read_jsonl
from .params import CATEGORIES, Params, RunPaths

UUID_TOKEN = re.compile(r"^\S+$")


class UUIDError(RuntimeError):
    """The run's UUID is unusable (a bad ``caption.caption_uuid`` or a corrupt ``run_uuid.json``)."""


# --------------------------------------------------------------------------- examples


@dataclass
class TrainingExample:
    """One curated train/valid segment with its caption (stage 03's unit of data)."""

    path: str  # absolute path of the segment WAV
    description: str  # the sidecar's caption, UUID first
    info: dict[str, Any] = field(default_factory=dict)  # sidecar MusicInfo fields (metadata merge)


@dataclass(frozen=True)
class HeldOutExample:
    """One held-out (test split) segment to continue (stage 04's unit of data)."""

    example_id: str  # the segment id: <artist_slug>/<track_slug>/<category>/<index>
    artist: str
    category: str
    track_id: str
    index: int
    original: str  # absolute path of the original segment
    caption: str
    duration_s: float


def load_training_examples(run_dir: str | Path, category: str, split: str) -> list[TrainingExample]:
    """Segments of one category and split, from the audiocraft manifest and the sidecar captions."""
    manifest = RunPaths(Path(run_dir)).manifest(category, split)
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} is missing: run the curation stage (notebooks/01_curate.ipynb) first")
    out = []
    for row in read_jsonl(manifest):
        info_path = Path(row.get("info_path") or Path(row["path"]).with_suffix(".json"))
        info = read_json(info_path) if info_path.exists() else {}
        desc = (info.get("description") or "").strip()
        if not desc:
            raise ValueError(f"{info_path} has no description: run the captioning stage "
                             f"(notebooks/02_caption.ipynb) before fine-tuning")
        out.append(TrainingExample(row["path"], desc, info))
    return out


def read_caption(segment_wav: Path) -> str:
    """The caption stage 02 wrote into a segment's sidecar (empty if it has not run)."""
    side = segment_wav.with_suffix(".json")
    return (read_json(side).get("description") or "") if side.exists() else ""


def held_out_examples(params: Params, categories: Sequence[str] = CATEGORIES) -> list[HeldOutExample]:
    """Every held-out (test split) segment of the given categories, in a fixed order."""
    curated = params.run.curated
    out = []
    for s in load_segments(params.run_dir):
        if s.split == "test" and s.category in categories:
            path = (curated / s.path).resolve()
            out.append(HeldOutExample(s.segment_id, s.artist, s.category, s.track_id, s.index, str(path),
                                      read_caption(path), s.duration_s))
    return sorted(out, key=lambda e: (e.category, e.duration_s, e.example_id))


# --------------------------------------------------------------------------- the UUID


def default_uuid(seed: int, profile: str) -> str:
    """A version-4 UUID derived from the run's seed and profile (so a rebuilt run gets the same one)."""
    rng = random.Random(f"silicon-sing-caption-uuid|{profile}|{seed}")
    return str(uuidlib.UUID(int=rng.getrandbits(128), version=4))


def _check_uuid(value: str) -> str:
    """A usable trigger: one whitespace-free token (a real UUID is normalised to lowercase)."""
    value = str(value).strip()
    if not value or not UUID_TOKEN.match(value):
        raise UUIDError(f"caption.caption_uuid must be one token without spaces, got {value!r}")
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        return value


def _read_run_uuid_file(paths: RunPaths) -> dict[str, Any] | None:
    """The recorded ``run_uuid.json`` (None when absent); a corrupt one stops: it cannot be recomputed."""
    path = paths.run_uuid
    if not path.exists():
        return None
    try:
        stored = read_json(path)
        if isinstance(stored, dict) and isinstance(stored.get("uuid"), str) and stored["uuid"].strip():
            return stored
        why = "it has no 'uuid' string"
    except (ValueError, UnicodeDecodeError) as e:
        why = f"it is not valid JSON ({e})"
    raise UUIDError(
        f"{path} is corrupt: {why}. It records the UUID that prefixes every caption and identifies the "
        f"fine-tuned models of this run, so it cannot be recomputed.\n"
        f"Fix: restore it (from a backup, or as {{\"uuid\": \"<the UUID>\"}} with the value of the "
        f"'uuid' field in {paths.captions_table}), "
        f"or delete it and rerun captioning (notebooks/02_caption.ipynb) AND fine-tuning "
        f"(notebooks/03_finetune.ipynb), which then use a new UUID.")


def ensure_run_uuid(run_dir: str | Path, requested: str | None, seed: int, profile: str) -> str:
    """The run's UUID: ``requested`` if given, else the recorded one, else a new one; recorded in the run dir."""
    paths = RunPaths(Path(run_dir))
    path, stored = paths.run_uuid, _read_run_uuid_file(paths)
    if requested:
        value, how = _check_uuid(requested), "caption.caption_uuid"
    elif stored and stored.get("uuid"):
        return str(stored["uuid"])
    else:
        value, how = default_uuid(seed, profile), f"derived from seed {seed} and profile {profile}"
    if not stored or stored.get("uuid") != value:
        atomic_write_json(path, {"uuid": value, "source": how,
                                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return value


def load_run_uuid(run_dir: str | Path) -> str:
    """The UUID recorded by stage 02 for ``run_dir`` (evaluation prompts reuse it)."""
    paths = RunPaths(Path(run_dir))
    path, stored = paths.run_uuid, _read_run_uuid_file(paths)
    if stored is None:
        raise FileNotFoundError(f"{path} is missing: run the captioning stage (notebooks/02_caption.ipynb) first")
    return str(stored["uuid"])


def split_uuid(description: str | None, uuid: str | None = None) -> tuple[str | None, str]:
    """Split a description into (UUID prefix or None, the rest)."""
    text = (description or "").strip()
    first, _, rest = text.partition(" ")
    if uuid is not None:
        return (uuid, rest.strip()) if first == uuid else (None, text)
    try:
        uuidlib.UUID(first)
        return first, rest.strip()
    except ValueError:
        return None, text


def augment_description(description: str | None, uuid: str, rng: random.Random | np.random.Generator,
                        word_dropout: float = 0.2, info: dict[str, Any] | None = None,
                        merge_text_p: float = 0.25, drop_desc_p: float = 0.5,
                        keep_other_p: float = 0.5) -> str:
    """audiocraft's training-time text augmentation, applied to everything except the UUID.

    Mirrors ``augment_music_info_description`` (with probability ``merge_text_p`` append
    ``key: …. bpm: …`` metadata pairs from ``info`` — each kept with ``keep_other_p``, audiocraft's
    ``drop_other_p`` — and then drop the description with ``drop_desc_p``) followed by
    ``T5Conditioner``'s per-word dropout. The UUID is removed first and put back as the first
    token, so it is never dropped. Use it with audiocraft's own ``word_dropout`` and
    ``merge_text_p`` set to 0; see the module docstring.
    """
    _, text = split_uuid(description, uuid)
    if info and rng.random() < merge_text_p:
        pairs = []
        for name in ("key", "bpm", "genre", "moods", "instrument", "keywords"):
            v = info.get(name)
            if v is None or v == [] or v == "" or rng.random() >= keep_other_p:
                continue
            pairs.append(f"{name}: {', '.join(map(str, v)) if isinstance(v, list) else v}")
        rng.shuffle(pairs)
        meta = ". ".join(pairs)
        if rng.random() < drop_desc_p:
            text = meta
        elif meta:
            text = ". ".join([text.rstrip("."), meta]) if text else meta
    words = [w for w in text.split(" ") if w and rng.random() >= word_dropout]
    return " ".join([uuid, *words])
