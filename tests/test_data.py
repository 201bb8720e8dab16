"""silicon_sing.data: training/held-out examples, the run's UUID and the caption augmentation."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest

from silicon_sing.data import UUIDError, augment_description, ensure_run_uuid, load_run_uuid, split_uuid
from silicon_sing.fsutil import read_json


def test_uuid_is_fixed_per_run_and_survives_augmentation(tmp_path: Path) -> None:
    """The run's UUID persists across calls, can be pinned, and augmentation never drops it."""
    u1 = ensure_run_uuid(tmp_path, None, 1234, "smoke")
    assert ensure_run_uuid(tmp_path, None, 999, "smoke") == u1 == load_run_uuid(tmp_path)
    assert read_json(tmp_path / "captions" / "run_uuid.json")["uuid"] == u1
    pinned = "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert ensure_run_uuid(tmp_path, pinned.upper(), 1234, "smoke") == pinned == load_run_uuid(tmp_path)
    with pytest.raises(UUIDError, match="one token"):
        ensure_run_uuid(tmp_path, "two words", 1, "smoke")

    desc = f"{u1} energetic hip hop track with upfront vocals, 140 BPM, in F minor"
    info = {"key": "F minor", "bpm": 140.0, "genre": "hip hop", "moods": ["energetic"], "keywords": ["drums"]}
    rng = random.Random(0)
    outs = [augment_description(desc, u1, rng, word_dropout=0.2, info=info) for _ in range(3000)]
    assert all(o.split(" ")[0] == u1 and o.count(u1) == 1 for o in outs)
    n_words = len(desc.split()) - 1
    plain = [o for o in outs if "bpm:" not in o and "key:" not in o]
    kept = np.mean([len(o.split()) - 1 for o in plain]) / n_words
    assert 0.75 < kept < 0.85  # the other words are still dropped at p = 0.2
    assert any("bpm: 140.0" in o for o in outs) and any(o.startswith(f"{u1} key:") or o.startswith(f"{u1} bpm:")
                                                      or o.startswith(f"{u1} genre:") for o in outs)
    assert augment_description(desc, u1, rng, word_dropout=1.0) == u1
    gen = np.random.default_rng(0)  # the trainer passes a numpy Generator
    assert all(augment_description(desc, u1, gen, info=info, merge_text_p=1.0).split(" ")[0] == u1
               for _ in range(200))
    assert split_uuid(desc) == (u1, desc.split(" ", 1)[1]) and split_uuid("no uuid here") == (None, "no uuid here")


def test_audiocraft_still_drops_words_and_descriptions() -> None:
    """The reason for augment_description: audiocraft 1.3.0's code drops words and whole descriptions."""
    root = Path(importlib.util.find_spec("audiocraft").origin).parent
    cond = (root / "modules" / "conditioners.py").read_text()
    music = (root / "data" / "music_dataset.py").read_text()
    assert 'entry.split(" ") if random.random() >= self.word_dropout' in cond
    assert "description = description if not random.uniform(0, 1) < drop_desc_p else None" in music
