"""The train/valid/test split: by track (never by segment), stratified by artist and seeded, with
byte-identical tracks kept in one split.

Notebook: notebooks/01_curate.ipynb
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..fsutil import text_sha1
from ..params import SPLITS
from .records import FileReport


def assign_splits(track_ids: Iterable[tuple[str, str]], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Split tracks (``(artist, track_id)`` pairs) into train/valid/test per artist, seeded, by track."""
    unknown = set(fractions) - set(SPLITS)
    if unknown or not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6):
        raise ValueError(f"split_fractions must use keys {SPLITS} and sum to 1, got {fractions}")
    by_artist: dict[str, list[str]] = defaultdict(list)
    for artist, tid in track_ids:
        by_artist[artist].append(tid)
    out: dict[str, str] = {}
    for _artist, tids in sorted(by_artist.items()):
        # order by a seeded hash, so a track's rank does not depend on which other tracks exist
        order = sorted(tids, key=lambda t: text_sha1(f"{seed}:{t}"))
        n_test, n_valid = _split_sizes(len(order), fractions)
        for i, tid in enumerate(order):
            out[tid] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return out


def _split_sizes(n: int, fractions: dict[str, float]) -> tuple[int, int]:
    """Numbers of test and valid tracks for an artist with ``n`` tracks (train keeps at least one)."""
    ft, fv = fractions.get("test", 0.0), fractions.get("valid", 0.0)
    n_test = max(1, round(n * ft)) if ft > 0 and n >= 2 else 0
    n_valid = max(1, round(n * fv)) if fv > 0 and n - n_test >= 2 else 0
    while n_test + n_valid > n - 1 and n_valid > 0:
        n_valid -= 1
    while n_test + n_valid > n - 1 and n_test > 0:
        n_test -= 1
    return n_test, n_valid


def keep_duplicates_together(accepted: list[dict[str, Any]], split: dict[str, str]) -> tuple[list[FileReport], int]:
    """Tracks sharing a byte-identical stem file go to the split of the first of them (``split`` is updated).

    Returns one report row per such track and the number of groups.
    """
    parent = {o["track"]["track_id"]: o["track"]["track_id"] for o in accepted}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    by_hash: dict[str, list[str]] = defaultdict(list)
    for o in accepted:
        for digest in set(o.get("content", {}).values()):
            by_hash[digest].append(o["track"]["track_id"])
    for tids in by_hash.values():
        for t in tids[1:]:
            a, b = sorted((find(tids[0]), find(t)))
            parent[b] = a
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in accepted:
        groups[find(o["track"]["track_id"])].append(o)
    rows, n_groups = [], 0
    for members in groups.values():
        if len(members) < 2:
            continue
        n_groups += 1
        members.sort(key=lambda o: o["track"]["track_id"])
        chosen = split[members[0]["track"]["track_id"]]
        for o in members:
            t = o["track"]
            split[t["track_id"]] = chosen
            others = [f"{m['track']['artist']}/{m['track']['track']}" for m in members if m is not o]
            shared = sorted(st for st, h in o["content"].items()
                            if any(h in m["content"].values() for m in members if m is not o))
            rows.append(FileReport(t["artist"], t["track"], str(Path(next(iter(t["source_files"].values()))).parent),
                                   None, "duplicate", f"same content ({', '.join(shared)}) as {', '.join(others)}: "
                                   f"kept in the same split ({chosen})"))
    return rows, n_groups
