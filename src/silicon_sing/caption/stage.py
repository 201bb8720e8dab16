"""The captioning stage: describe every curated track, caption it, write sidecars and tables.

Notebook: notebooks/02_caption.ipynb
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..curate import load_segments, load_tracks
from ..data import ensure_run_uuid
from ..fsutil import file_sha1, read_json, read_jsonl, to_json, write_if_changed
from ..params import CATEGORIES, Params, RunPaths
from .decisions import describe_track, read_user_metadata
from .descriptors import AnalysisConfig, StemDescriptors, TrackDescriptors, describe_stem, load_cached
from .essentia_models import check_essentia_models
from .templates import CaptionRecord, make_caption

MAX_MODEL_WORKERS = 4  # each worker loads its own TensorFlow graphs (and may claim GPU memory)


@dataclass
class CaptionResult:
    """What one call of :func:`run_captioning` produced and how much work it did."""

    captions_dir: Path
    uuid: str
    records: list[CaptionRecord]
    tracks: list[TrackDescriptors]
    stems_analysed: int  # stems whose descriptors were computed this call
    stems_cached: int  # stems whose descriptors came from the cache
    audio_seconds_analysed: float
    audio_seconds_total: float
    sidecars_written: int
    sidecars_unchanged: int
    workers: int
    models: str | None  # "essentia-tensorflow" or None (model-free fallback)
    wall_seconds: float



# --------------------------------------------------------------------------- the stage


def analysis_config(params: Params) -> AnalysisConfig:
    """Descriptor settings from ``params`` (the model dir resolved against the repo root and checked)."""
    c = params.caption
    model_dir = None
    if c.essentia_model_dir:
        p = Path(c.essentia_model_dir).expanduser()
        if not p.is_absolute():
            base = Path(params.source).resolve().parent.parent if params.source else Path.cwd()
            p = base / p
        model_dir = str(p)
        check_essentia_models(model_dir)  # fail before any work, with the files and URLs named
    return AnalysisConfig(key_profile=c.key_profile, min_bpm_confidence=c.min_bpm_confidence,
                          min_key_strength=c.min_key_strength, silence_db=params.curate.silence_db,
                          model_dir=model_dir)


def _curated_rows(run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stage 01's tracks and segments as dicts (via curate's loaders, else the files' contract)."""
    paths = RunPaths(Path(run_dir))
    if not paths.tracks_table.exists():
        raise FileNotFoundError(f"{paths.tracks_table} is missing: run the curation stage "
                                "(notebooks/01_curate.ipynb) for this profile first")
    try:
        return ([dataclasses.asdict(t) for t in load_tracks(run_dir)],
                [dataclasses.asdict(s) for s in load_segments(run_dir)])
    except TypeError:  # curate's records changed: read the contract (CONTRIBUTING.md)
        return read_jsonl(paths.tracks_table), read_jsonl(paths.segments_table)


def _analyse_job(job: tuple[str, list[tuple[str, str, str]], AnalysisConfig, str]) -> list[dict[str, Any]]:
    """Worker: descriptors of a track's uncached stems (written to the cache as they are done)."""
    _, stems, config, cache_dir = job
    out = []
    for category, path, sha1 in stems:
        d, _ = describe_stem(Path(path), category, config, Path(cache_dir), sha1)
        out.append(dataclasses.asdict(d))
    return out


def run_captioning(params: Params, progress: bool = True) -> CaptionResult:
    """Describe every curated track, caption each track × category, write sidecars and tables."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    config = analysis_config(params)
    run_dir = Path(params.run_dir)
    curated, cap_dir = params.run.curated, params.run.captions
    cache_dir = params.run.descriptor_cache
    cache_dir.mkdir(parents=True, exist_ok=True)
    tracks, segments = _curated_rows(run_dir)
    uuid = ensure_run_uuid(run_dir, params.caption.caption_uuid, params.seed, params.profile)

    stems: dict[str, dict[str, StemDescriptors]] = {t["track_id"]: {} for t in tracks}
    jobs = []
    total_s = 0.0
    for t in tracks:
        todo = []
        for cat in CATEGORIES:
            rel = t["audio"].get(cat)
            if rel is None:
                continue
            path = curated / rel
            sha1 = file_sha1(path)
            total_s += float(t.get("duration_s", 0.0))
            hit = load_cached(cache_dir, sha1, config, cat)
            if hit is not None:
                stems[t["track_id"]][cat] = hit
            else:
                todo.append((cat, str(path), sha1))
        if todo:
            jobs.append((t["track_id"], todo, config, str(cache_dir)))

    workers = max(1, min(params.n_workers, len(jobs)))
    if config.model_dir:
        workers = min(workers, MAX_MODEL_WORKERS)
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # workers share a GPU politely
    bar = tqdm(total=len(jobs), desc="describing tracks", unit="track", disable=not progress or not jobs)
    analysed = []
    if workers <= 1:
        for job in jobs:
            analysed.append((job[0], _analyse_job(job)))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for job, res in zip(jobs, pool.map(_analyse_job, jobs)):
                analysed.append((job[0], res))
                bar.update()
    bar.close()
    analysed_s = 0.0
    for track_id, rows in analysed:
        for r in rows:
            d = StemDescriptors(**r)
            stems[track_id][d.category] = d
            analysed_s += d.duration_s

    live = {d.sha1 for v in stems.values() for d in v.values()}
    for stale in cache_dir.glob("*.json"):  # entries of audio that no longer exists in this run
        if stale.stem not in live:
            stale.unlink()
    described = [describe_track(t, stems[t["track_id"]], config, read_user_metadata(t.get("source_files")))
                 for t in tracks]
    by_id = {td.track_id: td for td in described}
    records = [make_caption(by_id[t["track_id"]], cat, uuid, params.seed, int(t.get("n_segments", {}).get(cat, 0)))
               for t in tracks for cat in CATEGORIES if cat in t["audio"]]
    written, unchanged = write_sidecars(curated, segments, records)
    write_tables(cap_dir, records, described)
    return CaptionResult(
        captions_dir=cap_dir, uuid=uuid, records=records, tracks=described,
        stems_analysed=sum(len(rows) for _, rows in analysed),
        stems_cached=sum(len(v) for v in stems.values()) - sum(len(rows) for _, rows in analysed),
        audio_seconds_analysed=analysed_s, audio_seconds_total=total_s, sidecars_written=written,
        sidecars_unchanged=unchanged, workers=workers if jobs else 0,
        models="essentia-tensorflow" if config.model_dir else None, wall_seconds=time.perf_counter() - start,
    )


def sidecar_fields(rec: CaptionRecord) -> dict[str, Any]:
    """The audiocraft ``MusicInfo`` fields stage 02 owns in a segment sidecar."""
    return {"description": rec.description, "bpm": rec.bpm, "key": rec.key, "genre": rec.genre,
            "moods": rec.moods or None, "keywords": rec.keywords or None}


def write_sidecars(curated: Path, segments: Iterable[dict[str, Any]],
                   records: Iterable[CaptionRecord]) -> tuple[int, int]:
    """Fill every segment sidecar's caption fields atomically; return (written, already up to date)."""
    by_key = {(r.track_id, r.category): r for r in records}
    written = unchanged = 0
    for s in segments:
        rec = by_key.get((s["track_id"], s["category"]))
        if rec is None:
            continue
        path = (curated / s["path"]).with_suffix(".json")
        data = read_json(path) if path.exists() else {"name": s["segment_id"], "artist": s["artist"],
                                                      "title": s["track"]}
        data.update(sidecar_fields(rec))
        if write_if_changed(path, to_json(data)):
            written += 1
        else:
            unchanged += 1
    return written, unchanged


CSV_COLUMNS = ["track_id", "artist", "track", "split", "category", "n_segments", "description", "caption", "bpm",
               "key", "genre", "moods", "keywords", "template", "sources"]


def write_tables(cap_dir: Path, records: list[CaptionRecord], tracks: list[TrackDescriptors]) -> None:
    """``captions.jsonl`` / ``captions.csv`` (track × category) and ``descriptors.jsonl`` (per track)."""
    paths = RunPaths(Path(cap_dir).parent)
    write_if_changed(paths.captions_table, "".join(
        json.dumps(dataclasses.asdict(r), sort_keys=True, ensure_ascii=False) + "\n" for r in records))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in records:
        row = dataclasses.asdict(r)
        row["moods"], row["keywords"] = "; ".join(r.moods), "; ".join(r.keywords)
        row["sources"] = json.dumps(r.sources, sort_keys=True, ensure_ascii=False)
        w.writerow({k: row[k] for k in CSV_COLUMNS})
    write_if_changed(paths.captions_table.with_suffix(".csv"), buf.getvalue())
    write_if_changed(paths.descriptors, "".join(
        json.dumps(t.to_dict(), sort_keys=True, ensure_ascii=False) + "\n" for t in tracks))


def load_captions(run_dir: str | Path) -> list[CaptionRecord]:
    """The captions of a run (one per track × category), for training and evaluation."""
    path = RunPaths(Path(run_dir)).captions_table
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the captioning stage (notebooks/02_caption.ipynb) first")
    return [CaptionRecord(**r) for r in read_jsonl(path)]


def load_descriptors(run_dir: str | Path) -> list[TrackDescriptors]:
    """The per-track descriptors of a run."""
    return [TrackDescriptors.from_dict(r) for r in read_jsonl(RunPaths(Path(run_dir)).descriptors)]
