"""The curation stage: :func:`run_curation`, audiocraft manifests, the tables, loaders and the
notebook's tables.

Notebook: notebooks/01_curate.ipynb
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..fsutil import read_json, read_jsonl, write_if_changed
from ..params import CATEGORIES, SPLITS, Params, RunPaths
from ..synth import make_synthetic_corpus
from .inputs import discover, track_fingerprint
from .process import _process_with_state
from .records import CurationResult, FileReport, SegmentRecord, TrackFiles, TrackRecord
from .split import assign_splits, keep_duplicates_together

if TYPE_CHECKING:
    import pandas as pd


def write_manifests(curated: Path, segments: list[SegmentRecord], sample_rate: int) -> dict[str, dict[str, int]]:
    """Write audiocraft ``data.jsonl`` per category and split; return the segment counts."""
    counts: dict[str, dict[str, int]] = {c: {s: 0 for s in SPLITS} for c in CATEGORIES}
    rows: dict[tuple[str, str], list[str]] = defaultdict(list)
    for s in segments:
        line = {"path": str((curated / s.path).resolve()), "duration": s.duration_s,
                "sample_rate": sample_rate, "amplitude": None, "weight": None, "info_path": None}
        rows[(s.category, s.split)].append(_dumps(line))
        counts[s.category][s.split] += 1
    for cat in CATEGORIES:
        for split in SPLITS:
            write_if_changed(RunPaths(curated.parent).manifest(cat, split),
                             "".join(f"{r}\n" for r in rows.get((cat, split), [])))
    return counts


def _dumps(obj: Any) -> str:
    """Compact, key-sorted JSON for manifest lines."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


# --------------------------------------------------------------------------- the stage


def raw_root(params: Params) -> Path:
    """The stems to curate: the user's ``data_root`` or the synthetic corpus in the run dir."""
    if params.curate.data_root:
        return Path(params.curate.data_root)
    c = params.curate
    make_synthetic_corpus(params.run.raw, tracks_per_artist=c.synth_tracks_per_artist,
                          seconds=c.synth_track_seconds, sr=c.synth_sample_rate, seed=params.seed,
                          workers=params.n_workers)
    return params.run.raw


def run_curation(params: Params, progress: bool = True) -> CurationResult:
    """Curate the profile's stems into ``<run_dir>/curated`` (incremental; raw data read-only)."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    root = raw_root(params)
    curated = params.run.curated
    curated.mkdir(parents=True, exist_ok=True)
    found, strays = discover(root)
    jobs = [(tf, params, track_fingerprint(tf, params)) for tf in found]
    outcomes: list[tuple[dict[str, Any], bool]] = []
    workers = min(params.n_workers, max(1, len(jobs)))
    bar = tqdm(total=len(jobs), desc="curating tracks", unit="track", disable=not progress)
    if workers <= 1:
        for job in jobs:
            outcomes.append(_process_with_state(job))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for res in pool.map(_process_with_state, jobs):
                outcomes.append(res)
                bar.update()
    bar.close()
    _remove_stale(params.run, found)
    report = strays + [FileReport(**r) for o, _ in outcomes for r in o["reports"]]
    accepted = [o for o, _ in outcomes if o["track"]]
    split = assign_splits(((o["track"]["artist"], o["track"]["track_id"]) for o in accepted),
                          params.curate.split_fractions, params.seed)
    duplicates, n_groups = keep_duplicates_together(accepted, split)
    report += duplicates
    tracks = [TrackRecord(**{**o["track"], "split": split[o["track"]["track_id"]]}) for o in accepted]
    segments = [SegmentRecord(**{**s, "split": split[s["track_id"]]}) for o in accepted for s in o["segments"]]
    counts = write_manifests(curated, segments, params.curate.sample_rate)
    _write_tables(params, tracks, segments, report, split, counts, n_groups)
    return CurationResult(curated, tracks, segments, report,
                          processed_tracks=sum(not reused for _, reused in outcomes),
                          reused_tracks=sum(reused for _, reused in outcomes),
                          audio_seconds_processed=sum(o["seconds"] for o, reused in outcomes if not reused),
                          wall_seconds=time.perf_counter() - start)


def _remove_stale(run: RunPaths, found: list[TrackFiles]) -> None:
    """Delete outputs of tracks that are no longer in the input, so manifests stay truthful."""
    live = {t.track_id for t in found}
    state_root = run.curation_state()
    if not state_root.exists():
        return
    for state in state_root.glob("*/*.json"):
        track_id = f"{state.parent.name}/{state.stem}"
        if track_id not in live:
            state.unlink()
            for cat in CATEGORIES:
                shutil.rmtree(run.curated_segment(cat, track_id), ignore_errors=True)
            shutil.rmtree(run.curated_track(track_id), ignore_errors=True)


def _write_tables(params: Params, tracks: list[TrackRecord], segments: list[SegmentRecord],
                  report: list[FileReport], split: dict[str, str], counts: dict[str, dict[str, int]],
                  duplicate_groups: int = 0) -> None:
    """Write the tables later stages and the book read (only when their content changed)."""
    def jsonl(rows: Iterable[Any]) -> str:
        return "".join(json.dumps(dataclasses.asdict(r), sort_keys=True, ensure_ascii=False) + "\n" for r in rows)

    write_if_changed(params.run.tracks_table, jsonl(tracks))
    write_if_changed(params.run.segments_table, jsonl(segments))
    summary = {
        "tracks_found": len({(r.artist, r.track) for r in report if r.track}),
        "tracks_accepted": len(tracks),
        "files_rejected": sum(r.status == "rejected" for r in report),
        "files_skipped": sum(r.status == "skipped" for r in report),
        "files_unexpected": sum(r.status == "unexpected" for r in report),
        "full_mixes_made": sum(r.status == "mixed" for r in report),
        "folders_empty": sum(r.status == "empty" for r in report),
        "names_ignored": sum(r.status == "ignored" for r in report),
        "files_with_warnings": sum(bool(r.warning) for r in report),
        "duplicate_groups": duplicate_groups,
        "segments": counts,
    }
    write_if_changed(params.run.curation_report, json.dumps(
        {"summary": summary, "files": [dataclasses.asdict(r) for r in report]}, indent=2, ensure_ascii=False) + "\n")
    write_if_changed(params.run.split_table, json.dumps(
        {"seed": params.seed, "fractions": params.curate.split_fractions, "by": "track, stratified by artist",
         "tracks": dict(sorted(split.items()))}, indent=2, ensure_ascii=False) + "\n")


def _run_paths(run_dir: str | Path) -> RunPaths:
    """The paths of a run given its run dir or its ``curated/`` subfolder."""
    p = Path(run_dir)
    parent = RunPaths(p.parent)
    return parent if parent.curated == p and parent.tracks_table.exists() else RunPaths(p)


def load_tracks(run_dir: str | Path) -> list[TrackRecord]:
    """Accepted tracks of a curated run."""
    return [TrackRecord(**r) for r in read_jsonl(_run_paths(run_dir).tracks_table)]


def load_segments(run_dir: str | Path) -> list[SegmentRecord]:
    """Kept segments of a curated run."""
    return [SegmentRecord(**r) for r in read_jsonl(_run_paths(run_dir).segments_table)]


def load_report(run_dir: str | Path) -> tuple[dict[str, Any], list[FileReport]]:
    """The validation report: summary and per-file rows."""
    data = read_json(_run_paths(run_dir).curation_report)
    return data["summary"], [FileReport(**r) for r in data["files"]]


def tables(result: CurationResult) -> dict[str, pd.DataFrame]:
    """DataFrames the dataset chapter shows: tracks, segment counts, problems."""
    import pandas as pd  # lazy: pandas only for the notebook's tables, not in curation workers

    tracks = pd.DataFrame([dataclasses.asdict(t) for t in result.tracks])
    segs = pd.DataFrame([dataclasses.asdict(s) for s in result.segments])
    counts = (segs.groupby(["artist", "category", "split"]).size().unstack("split", fill_value=0)
              .reindex(columns=list(SPLITS), fill_value=0) if len(segs) else pd.DataFrame())
    problems = pd.DataFrame([dataclasses.asdict(r) for r in result.report if r.status != "ok" or r.warning],
                            columns=[f.name for f in dataclasses.fields(FileReport)])
    return {"tracks": tracks, "segments": segs, "counts": counts, "problems": problems}


def example_segments(segments: list[SegmentRecord], split: str = "test") -> dict[str, dict[str, SegmentRecord]]:
    """One aligned example per artist: the first segment index kept in all three stems of a ``split`` track."""
    by_key: dict[tuple[str, int], dict[str, SegmentRecord]] = defaultdict(dict)
    for s in segments:
        if s.split == split:
            by_key[(s.track_id, s.index)][s.category] = s
    out: dict[str, dict[str, SegmentRecord]] = {}
    for (_tid, _idx), cats in sorted(by_key.items()):
        artist = next(iter(cats.values())).artist
        if artist not in out and len(cats) == len(CATEGORIES):
            out[artist] = cats
    return out
