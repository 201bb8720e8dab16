"""Processing one track: one shared loudness gain, resampling, aligned segments and sidecars, and the
per-track state that makes reruns incremental (outputs re-hashed, a corrupt state re-curates).

Notebook: notebooks/01_curate.ipynb
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import audio as au
from ..fsutil import atomic_write_json, file_sha1, read_json
from ..params import CATEGORIES, Params, RunPaths
from .inputs import _load_track
from .records import FileReport, SegmentRecord, TrackFiles, TrackRecord

PEAK_CEILING = 0.891  # −1 dBFS: the shared gain is lowered if any stem would exceed it
INSTRUMENT_TAG = {"acapella": "vocals", "instrumental": "instrumental", "full": "vocals and instrumental"}


def shared_gain_db(stems: dict[str, np.ndarray], sr: int, target_lufs: float) -> tuple[float, float]:
    """One gain for all stems: reach ``target_lufs`` on the full mix without any stem above −1 dBFS.

    Args:
        stems: category -> mono float ``[N]`` at ``sr`` (``full`` is required).
    Returns:
        (gain in dB, the full mix's loudness in LUFS before it).
    """
    loud = au.loudness_lufs(stems["full"], sr)
    gain = target_lufs - loud
    peak = max(float(np.max(np.abs(v))) for v in stems.values())
    # the peak ceiling wins over the loudness target: clipping one stem would break full = sum
    max_gain = 20 * math.log10(PEAK_CEILING / max(peak, 1e-9))
    return min(gain, max_gain), loud


def _segment_sidecar(artist: str, track: str, category: str, seg_id: str, duration: float, sr: int) -> dict[str, Any]:
    """audiocraft ``MusicInfo`` fields for one segment; stage 02 fills the caption fields."""
    return {
        "key": None, "artist": artist, "sample_rate": sr, "file_extension": "wav", "description": "",
        "keywords": None, "duration": duration, "bpm": None, "genre": None, "title": track,
        "name": seg_id, "instrument": INSTRUMENT_TAG[category], "moods": None,
    }


def process_track(tf: TrackFiles, params: Params) -> dict[str, Any]:
    """Validate, normalise and segment one track into ``params.run.curated``; return its outcome record."""
    c, run = params.curate, params.run
    sr = c.sample_rate
    try:
        stems, mixed, reports, seconds = _load_track(tf, params)
    except OSError as e:  # a file vanished or became unreadable mid-run: report it, keep going
        reports = [*tf.problems, *(FileReport(tf.artist, tf.track, str(f), st, "rejected", f"unreadable: {e}")
                                   for st, f in tf.stems.items())]
        stems, mixed, seconds = None, False, 0.0
    outcome: dict[str, Any] = {"reports": [dataclasses.asdict(r) for r in reports], "seconds": seconds,
                               "track": None, "segments": [], "content": {}}
    if stems is None:
        return outcome
    # byte-level identity of the inputs: the same song under two names must not straddle splits
    outcome["content"] = {st: file_sha1(f) for st, f in sorted(tf.stems.items())}
    track_id = tf.track_id
    gain_db, loud = shared_gain_db(stems, sr, c.target_lufs)
    g = 10 ** (gain_db / 20)
    seg_len = round(c.segment_seconds * sr)
    n_seg = len(stems["full"]) // seg_len
    audio_paths, kept, dropped, segments = {}, {}, {}, []
    for cat in CATEGORIES:
        x = (stems[cat] * g).astype(np.float32)
        path = run.curated_track(track_id, cat)
        rel = path.relative_to(run.curated).as_posix()  # records hold paths relative to curated/
        au.save_audio(path, x, sr, subtype="PCM_16")
        audio_paths[cat] = rel
        kept[cat], dropped[cat] = 0, 0
        for i in range(n_seg):
            seg = x[i * seg_len:(i + 1) * seg_len]
            level = au.rms_db(seg)
            if level < c.silence_db:
                dropped[cat] += 1
                continue
            seg_id = f"{track_id}/{cat}/{i:03d}"
            seg_path = run.curated_segment(cat, track_id, i)
            seg_rel = seg_path.relative_to(run.curated).as_posix()
            au.save_audio(seg_path, seg, sr, subtype="PCM_16")
            atomic_write_json(seg_path.with_suffix(".json"),
                              _segment_sidecar(tf.artist, tf.track, cat, seg_id, seg_len / sr, sr))
            segments.append(dataclasses.asdict(SegmentRecord(
                seg_id, tf.artist, tf.track, track_id, cat, "", i, i * seg_len / sr, seg_len / sr, seg_rel, level)))
            kept[cat] += 1
    record = TrackRecord(tf.artist, tf.track, track_id, "", len(stems["full"]) / sr, sr, gain_db, loud, mixed,
                         audio_paths, kept, dropped, {s: str(p) for s, p in tf.stems.items()})
    outcome["track"] = dataclasses.asdict(record)
    outcome["segments"] = segments
    return outcome


def _process_with_state(args: tuple[TrackFiles, Params, str]) -> tuple[dict[str, Any], bool]:
    """Worker: reuse the stored outcome when the fingerprint matches, else process and store it."""
    tf, params, fp = args
    curated = params.run.curated
    state_path = _state_path(params.run, tf)
    state = _read_state(state_path)
    if state is not None and state.get("fingerprint") == fp and _outputs_intact(curated, state):
        return state["outcome"], True
    outcome = process_track(tf, params)
    atomic_write_json(state_path, {"fingerprint": fp, "outcome": outcome, "files": _output_hashes(curated, outcome)})
    return outcome, False


def _read_state(state_path: Path) -> dict[str, Any] | None:
    """A track's stored state, or None when absent or unreadable (then the track is re-curated, with a warning)."""
    if not state_path.exists():
        return None
    try:
        state = read_json(state_path)
        if isinstance(state, dict) and isinstance(state.get("outcome"), dict):
            return state
    except (ValueError, UnicodeDecodeError):
        pass
    warnings.warn(f"curation state {state_path} is corrupt; re-curating its track", stacklevel=2)
    return None


def _state_path(run: RunPaths, tf: TrackFiles) -> Path:
    """Where one track's fingerprint and outcome are stored."""
    return run.curation_state(tf.track_id)


def _output_paths(outcome: dict[str, Any]) -> list[str]:
    """Every file (relative to ``curated``) an outcome refers to: its segments and normalised stems."""
    paths = [s["path"] for s in outcome["segments"]]
    if outcome["track"]:
        paths += list(outcome["track"]["audio"].values())
    return paths


def _output_hashes(curated: Path, outcome: dict[str, Any]) -> dict[str, str]:
    """SHA-1 of each output file as written, so a later run can tell a truncated or altered one."""
    return {p: file_sha1(curated / p) for p in _output_paths(outcome)}


def _outputs_intact(curated: Path, state: dict[str, Any]) -> bool:
    """Whether every file a stored state refers to is on disk with the content recorded when written.

    A file whose bytes changed (e.g. truncated) gets a warning naming it; states from before content
    hashes were recorded count as stale.
    """
    recorded = state.get("files")
    if not isinstance(recorded, dict):
        return False
    for p in _output_paths(state["outcome"]):
        f = curated / p
        if not f.exists():
            return False
        if recorded.get(p) != file_sha1(f):
            warnings.warn(f"curated file {f} differs from what curation wrote (truncated or altered); "
                          f"re-curating its track", stacklevel=2)
            return False
    return True
