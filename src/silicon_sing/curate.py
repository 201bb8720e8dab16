"""Stage 01 — curation: raw stems in, validated, normalised, segmented and split data out.

Input layout (the same for a user's stems and the embedded synthetic corpus)::

    <root>/<artist>/<track>/{acapella,instrumental,full}.{wav,flac,mp3,ogg}

Every file is validated and reported (undecodable, truncated — fewer frames decoded than its header
declares —, empty, silent, mismatched durations, unexpected names, unreadable folders, broken links;
empty folders and hidden ``.names`` are listed too; clipping and DC offset are warnings that do not
reject); a bad file rejects only its own track, every good track is still processed. Tracks whose
stem files are byte-identical under different names (a content hash) are put in one split and reported. When
``full`` is missing but both stems are good, the full mix is made by summing them after resampling
(recorded as ``full_was_mixed``). Each track is resampled to the model's rate (32 kHz mono),
loudness-normalised with *one* gain for all three stems (computed on the full mix, so
acapella + instrumental = full still holds), cut into fixed-length segments aligned across stems,
and silent segments are dropped per stem. Tracks — never segments — are split into
train/valid/test, stratified by artist and seeded. Outputs are audiocraft-native manifests
(``data.jsonl`` + a sidecar ``.json`` per segment) plus our own tables (see CONTRIBUTING.md).

Reruns are incremental: each track's outcome is stored with a fingerprint of its input files
(path, size, mtime) and the curation parameters, and with the SHA-1 of every file it wrote; a track
whose fingerprint is unchanged and whose outputs still hash as written is not read again (a
truncated or altered output, or a corrupt state file, re-curates the track with a warning naming
it). Raw inputs are only ever read.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
import warnings
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import audio as au
from .fsutil import atomic_write_json, file_sha1, read_json, read_jsonl, text_sha1, write_if_changed
from .names import slugify
from .params import CATEGORIES, SPLITS, Params

CURATE_VERSION = 2  # bump when the processing changes, so cached tracks are redone (2: content hashes, checks)
PEAK_CEILING = 0.891  # −1 dBFS: the shared gain is lowered if any stem would exceed it
CLIP_LEVEL = 0.999  # |sample| at or above this is at full scale
CLIP_FRACTION = 1e-3  # warn when more than this fraction of a file's samples is at full scale
DC_OFFSET = 0.01  # warn when a channel's mean exceeds this (−40 dBFS)
INSTRUMENT_TAG = {"acapella": "vocals", "instrumental": "instrumental", "full": "vocals and instrumental"}


@dataclass
class FileReport:
    """The validation outcome of one input file (or of a synthesised full mix)."""

    artist: str
    track: str
    path: str
    stem: str | None
    status: str  # ok | rejected | skipped | unexpected | mixed | empty | ignored | duplicate
    reason: str = ""
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    warning: str = ""  # accepted, but worth a look (clipping, DC offset)


@dataclass
class TrackFiles:
    """The stem files found for one track directory."""

    artist: str
    track: str
    directory: Path
    stems: dict[str, Path] = field(default_factory=dict)
    problems: list[FileReport] = field(default_factory=list)  # unexpected or ambiguous files


@dataclass
class TrackRecord:
    """One accepted track: where its normalised audio lives and how it was processed."""

    artist: str
    track: str
    track_id: str
    split: str
    duration_s: float
    sample_rate: int
    gain_db: float
    loudness_lufs: float
    full_was_mixed: bool
    audio: dict[str, str]  # category -> path relative to curated/
    n_segments: dict[str, int]
    n_dropped_silent: dict[str, int]
    source_files: dict[str, str]


@dataclass
class SegmentRecord:
    """One kept segment of one stem; same ``track_id``/``index`` means sample-aligned audio."""

    segment_id: str
    artist: str
    track: str
    track_id: str
    category: str
    split: str
    index: int
    start_s: float
    duration_s: float
    path: str  # relative to curated/
    rms_db: float


@dataclass
class CurationResult:
    """What one call of :func:`run_curation` produced and how much work it did."""

    curated_dir: Path
    tracks: list[TrackRecord]
    segments: list[SegmentRecord]
    report: list[FileReport]
    processed_tracks: int  # tracks decoded and written this call
    reused_tracks: int  # tracks whose fingerprint matched a previous run
    audio_seconds_processed: float  # seconds of input audio (per stem) decoded this call
    wall_seconds: float

    @property
    def rejected(self) -> list[FileReport]:
        """Files that were rejected or skipped, with their reasons."""
        return [r for r in self.report if r.status in ("rejected", "skipped")]


# --------------------------------------------------------------------------- discovery


def _entries(d: Path, artist: str, track: str, report: list[FileReport]) -> list[Path] | None:
    """The visible entries of folder ``d``; hidden ones and an unreadable folder are reported."""
    try:
        entries = sorted(d.iterdir())
    except OSError as e:
        report.append(FileReport(artist, track, str(d), None, "rejected", f"unreadable folder: {e.strerror or e}"))
        return None
    for p in entries:
        if p.name.startswith("."):
            report.append(FileReport(artist, track, str(p), None, "ignored", "hidden name (starts with '.'): ignored"))
    return [p for p in entries if not p.name.startswith(".")]


def discover(root: Path) -> tuple[list[TrackFiles], list[FileReport]]:
    """Find ``<root>/<artist>/<track>/<stem>.<ext>``; return tracks and reports of everything else found."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"data root {root} does not exist; expected <root>/<artist>/<track>/{{acapella,instrumental,full}}.wav"
            " (set curate.data_root in your parameter file)"
        )
    tracks: list[TrackFiles] = []
    strays: list[FileReport] = []
    for artist_dir in _entries(root, "", "", strays) or []:
        if not artist_dir.is_dir():
            if artist_dir.name not in ("corpus.json",):
                strays.append(FileReport("", "", str(artist_dir), None, "unexpected", "file at the root; expected artist folders"))
            continue
        entries = _entries(artist_dir, artist_dir.name, "", strays)
        if entries is None:
            continue
        if not any(p.is_dir() for p in entries):
            strays.append(FileReport(artist_dir.name, "", str(artist_dir), None, "empty",
                                     "no track folders (expected <artist>/<track>/<stem>.<ext>)"))
        for track_dir in entries:
            if not track_dir.is_dir():
                if track_dir.suffix != ".json":  # artist-level metadata is allowed
                    strays.append(FileReport(artist_dir.name, "", str(track_dir), None, "unexpected",
                                             "file in an artist folder; expected track folders"))
                continue
            files = _entries(track_dir, artist_dir.name, track_dir.name, strays)
            if files is None:
                continue
            tf = _scan_track(artist_dir.name, track_dir, files)
            if not tf.stems and not tf.problems:
                strays.append(FileReport(artist_dir.name, track_dir.name, str(track_dir), None, "empty",
                                         f"no stem files (expected {', '.join(CATEGORIES)})"))
                continue
            tracks.append(tf)
    return tracks, strays


def _scan_track(artist: str, track_dir: Path, files: list[Path] | None = None) -> TrackFiles:
    """Classify the (visible) files of one track folder into stems and problems."""
    tf = TrackFiles(artist, track_dir.name, track_dir)
    found: dict[str, list[Path]] = defaultdict(list)
    for f in files if files is not None else sorted(track_dir.iterdir()):
        if f.name.startswith("."):
            continue
        stem, ext = f.stem.lower(), f.suffix.lower()
        if f.is_symlink() and not f.exists():
            tf.problems.append(FileReport(artist, tf.track, str(f), stem if stem in CATEGORIES else None, "rejected",
                                          f"broken symbolic link (to {f.readlink()})"))
        elif f.is_file() and stem in CATEGORIES and ext in au.AUDIO_EXTENSIONS:
            found[stem].append(f)
        elif f.suffix.lower() != ".json":
            tf.problems.append(FileReport(artist, tf.track, str(f), None, "unexpected",
                                          f"unexpected name; expected one of {', '.join(CATEGORIES)} "
                                          f"with extension {', '.join(au.AUDIO_EXTENSIONS)}"))
    for stem, files_ in found.items():
        if len(files_) > 1:
            for f in files_:
                tf.problems.append(FileReport(artist, tf.track, str(f), stem, "rejected",
                                              f"ambiguous: {len(files_)} files for stem '{stem}' — keep one"))
        else:
            tf.stems[stem] = files_[0]
    return tf


def track_fingerprint(tf: TrackFiles, params: Params) -> str:
    """Hash of the track's input files (name, size, mtime) and the curation parameters."""
    c = params.curate
    parts = [f"v{CURATE_VERSION}", str(c.sample_rate), str(c.segment_seconds), str(c.target_lufs),
             str(c.duration_tolerance_s), str(c.silence_db)]
    for stem in CATEGORIES:
        p = tf.stems.get(stem)
        if p is not None:
            try:
                st = p.stat()
                parts.append(f"{stem}:{p.name}:{st.st_size}:{st.st_mtime_ns}")
            except OSError as e:  # reported when the file is read; never a reason to stop the run
                parts.append(f"{stem}:{p.name}:unreadable:{e.errno}")
    parts.extend(f"problem:{r.path}:{r.reason}" for r in tf.problems)
    return text_sha1("|".join(parts))


# --------------------------------------------------------------------------- per-track work


def _validate_file(tf: TrackFiles, stem: str, path: Path, silence_db: float) -> tuple[np.ndarray | None, int, FileReport]:
    """Decode one stem; return (audio or None, sample rate, report)."""
    rep = FileReport(tf.artist, tf.track, str(path), stem, "ok")
    try:
        if path.stat().st_size == 0:
            rep.status, rep.reason = "rejected", "empty file (0 bytes)"
            return None, 0, rep
        declared = au.declared_frames(path)
    except OSError as e:
        rep.status, rep.reason = "rejected", f"unreadable: {e.strerror or e}"
        return None, 0, rep
    try:
        x, sr = au.load_audio(path)
    except au.AudioDecodeError as e:
        rep.status, rep.reason = "rejected", f"undecodable: {str(e).split(': ', 1)[-1]}"
        return None, 0, rep
    rep.duration_s, rep.sample_rate, rep.channels = x.shape[1] / sr, sr, x.shape[0]
    if x.shape[1] == 0:
        rep.status, rep.reason = "rejected", "zero length (no samples)"
        return None, sr, rep
    # decoders stop quietly at the end of a cut file; the header still says how long it should be
    if declared is not None and x.shape[1] < declared - max(4096, declared // 1000):
        rep.status, rep.reason = "rejected", (f"truncated: the header declares {declared} frames "
                                              f"({declared / sr:.2f} s), only {x.shape[1]} decoded "
                                              f"({x.shape[1] / sr:.2f} s)")
        return None, sr, rep
    if not np.all(np.isfinite(x)):
        rep.status, rep.reason = "rejected", "contains NaN or infinite samples"
        return None, sr, rep
    level = au.rms_db(x)
    if level < silence_db:
        rep.status, rep.reason = "rejected", f"silent (RMS {level:.1f} dBFS < {silence_db:.0f} dBFS)"
        return None, sr, rep
    rep.warning = signal_warnings(x)
    return x, sr, rep


def signal_warnings(x: np.ndarray) -> str:
    """Clipping and DC offset of ``[C, N]`` audio, as a warning text ('' when clean)."""
    out = []
    clipped = float(np.mean(np.abs(x) >= CLIP_LEVEL))
    if clipped > CLIP_FRACTION:
        out.append(f"clipping: {100 * clipped:.2f} % of samples at full scale")
    dc = x.mean(axis=1)
    worst = int(np.argmax(np.abs(dc)))
    if abs(dc[worst]) > DC_OFFSET:
        out.append(f"DC offset {dc[worst]:+.3f} (channel {worst + 1}; over ±{DC_OFFSET})")
    return "; ".join(out)


def _reject_track(tf: TrackFiles, reports: list[FileReport], why: str) -> list[FileReport]:
    """Mark every still-ok file of a rejected track as skipped, naming the reason."""
    for r in reports:
        if r.status == "ok":
            r.status, r.reason = "skipped", f"track rejected: {why}"
    return reports


def _load_track(tf: TrackFiles, params: Params) -> tuple[dict[str, np.ndarray] | None, bool, list[FileReport], float]:
    """Validate and decode a track's stems into aligned 32 kHz mono arrays (or reject it)."""
    c = params.curate
    reports = list(tf.problems)
    ambiguous = {r.stem for r in tf.problems if r.stem}
    decoded: dict[str, np.ndarray] = {}
    seconds = 0.0
    for stem in CATEGORIES:
        if stem in tf.stems:
            x, sr, rep = _validate_file(tf, stem, tf.stems[stem], c.silence_db)
            reports.append(rep)
            if x is not None:
                seconds += x.shape[1] / sr
                decoded[stem] = au.resample(au.to_mono(x), sr, c.sample_rate)
    bad = sorted({r.stem for r in reports if r.status == "rejected" and r.stem} | ambiguous)
    missing = [s for s in ("acapella", "instrumental") if s not in tf.stems and s not in ambiguous]
    if bad or missing:
        why = "; ".join(filter(None, [f"bad {', '.join(bad)}" if bad else "",
                                      f"missing {', '.join(missing)}" if missing else ""]))
        return None, False, _reject_track(tf, reports, why), seconds
    lengths = {s: len(v) / c.sample_rate for s, v in decoded.items()}
    spread = max(lengths.values()) - min(lengths.values())
    if spread > c.duration_tolerance_s:
        desc = ", ".join(f"{s} {d:.2f} s" for s, d in lengths.items())
        return None, False, _reject_track(tf, reports, f"stem durations differ by {spread:.2f} s > "
                                          f"{c.duration_tolerance_s} s tolerance ({desc})"), seconds
    n = min(len(v) for v in decoded.values())
    decoded = {s: v[:n] for s, v in decoded.items()}
    mixed = "full" not in decoded
    if mixed:
        decoded["full"] = decoded["acapella"] + decoded["instrumental"]
        reports.append(FileReport(tf.artist, tf.track, str(tf.directory / "full (mixed)"), "full", "mixed",
                                  "full.* missing: made by summing acapella + instrumental", n / c.sample_rate,
                                  c.sample_rate, 1))
    if n < round(c.segment_seconds * c.sample_rate):
        return None, mixed, _reject_track(tf, reports, f"shorter ({n / c.sample_rate:.2f} s) than one "
                                          f"{c.segment_seconds} s segment"), seconds
    return decoded, mixed, reports, seconds


def shared_gain_db(stems: dict[str, np.ndarray], sr: int, target_lufs: float) -> tuple[float, float]:
    """One gain for all stems: reach ``target_lufs`` on the full mix without any stem above −1 dBFS."""
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


def process_track(tf: TrackFiles, params: Params, curated: Path) -> dict[str, Any]:
    """Validate, normalise and segment one track; write its files; return its outcome record."""
    c = params.curate
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
    a_slug, t_slug = slugify(tf.artist), slugify(tf.track)
    track_id = f"{a_slug}/{t_slug}"
    gain_db, loud = shared_gain_db(stems, sr, c.target_lufs)
    g = 10 ** (gain_db / 20)
    seg_len = round(c.segment_seconds * sr)
    n_seg = len(stems["full"]) // seg_len
    audio_paths, kept, dropped, segments = {}, {}, {}, []
    for cat in CATEGORIES:
        x = (stems[cat] * g).astype(np.float32)
        rel = f"tracks/{track_id}/{cat}.wav"
        au.save_audio(curated / rel, x, sr, subtype="PCM_16")
        audio_paths[cat] = rel
        kept[cat], dropped[cat] = 0, 0
        for i in range(n_seg):
            seg = x[i * seg_len:(i + 1) * seg_len]
            level = au.rms_db(seg)
            if level < c.silence_db:
                dropped[cat] += 1
                continue
            seg_id = f"{track_id}/{cat}/{i:03d}"
            seg_rel = f"segments/{cat}/{track_id}/{i:03d}.wav"
            au.save_audio(curated / seg_rel, seg, sr, subtype="PCM_16")
            atomic_write_json((curated / seg_rel).with_suffix(".json"),
                              _segment_sidecar(tf.artist, tf.track, cat, seg_id, seg_len / sr, sr))
            segments.append(dataclasses.asdict(SegmentRecord(
                seg_id, tf.artist, tf.track, track_id, cat, "", i, i * seg_len / sr, seg_len / sr, seg_rel, level)))
            kept[cat] += 1
    record = TrackRecord(tf.artist, tf.track, track_id, "", len(stems["full"]) / sr, sr, gain_db, loud, mixed,
                         audio_paths, kept, dropped, {s: str(p) for s, p in tf.stems.items()})
    outcome["track"] = dataclasses.asdict(record)
    outcome["segments"] = segments
    return outcome


def _process_with_state(args: tuple[TrackFiles, Params, Path, str]) -> tuple[dict[str, Any], bool]:
    """Worker: reuse the stored outcome when the fingerprint matches, else process and store it."""
    tf, params, curated, fp = args
    state_path = _state_path(curated, tf)
    state = _read_state(state_path)
    if state is not None and state.get("fingerprint") == fp and _outputs_intact(curated, state):
        return state["outcome"], True
    outcome = process_track(tf, params, curated)
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


def _state_path(curated: Path, tf: TrackFiles) -> Path:
    """Where one track's fingerprint and outcome are stored."""
    return curated / "state" / slugify(tf.artist) / f"{slugify(tf.track)}.json"


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


# --------------------------------------------------------------------------- split and manifests


def assign_splits(track_ids: Iterable[tuple[str, str]], fractions: dict[str, float], seed: int) -> dict[str, str]:
    """Split tracks (``(artist, track_id)`` pairs) into train/valid/test per artist, seeded, by track."""
    unknown = set(fractions) - set(SPLITS)
    if unknown or not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6):
        raise ValueError(f"split_fractions must use keys {SPLITS} and sum to 1, got {fractions}")
    by_artist: dict[str, list[str]] = defaultdict(list)
    for artist, tid in track_ids:
        by_artist[artist].append(tid)
    out: dict[str, str] = {}
    for artist, tids in sorted(by_artist.items()):
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
            write_if_changed(curated / "manifests" / cat / split / "data.jsonl",
                             "".join(f"{r}\n" for r in rows.get((cat, split), [])))
    return counts


def _dumps(obj: Any) -> str:
    """Compact, key-sorted JSON for manifest lines."""
    import json

    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


# --------------------------------------------------------------------------- the stage


def raw_root(params: Params) -> Path:
    """The stems to curate: the user's ``data_root`` or the synthetic corpus in the run dir."""
    if params.curate.data_root:
        return Path(params.curate.data_root)
    from .synth import make_synthetic_corpus

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
    jobs = [(tf, params, curated, track_fingerprint(tf, params)) for tf in found]
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
    _remove_stale(curated, found)
    report = strays + [FileReport(**r) for o, _ in outcomes for r in o["reports"]]
    accepted = [o for o, _ in outcomes if o["track"]]
    split = assign_splits(((o["track"]["artist"], o["track"]["track_id"]) for o in accepted),
                          params.curate.split_fractions, params.seed)
    duplicates, n_groups = keep_duplicates_together(accepted, split)
    report += duplicates
    tracks = [TrackRecord(**{**o["track"], "split": split[o["track"]["track_id"]]}) for o in accepted]
    segments = [SegmentRecord(**{**s, "split": split[s["track_id"]]}) for o in accepted for s in o["segments"]]
    counts = write_manifests(curated, segments, params.curate.sample_rate)
    _write_tables(curated, params, tracks, segments, report, split, counts, n_groups)
    return CurationResult(curated, tracks, segments, report,
                          processed_tracks=sum(not reused for _, reused in outcomes),
                          reused_tracks=sum(reused for _, reused in outcomes),
                          audio_seconds_processed=sum(o["seconds"] for o, reused in outcomes if not reused),
                          wall_seconds=time.perf_counter() - start)


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


def _remove_stale(curated: Path, found: list[TrackFiles]) -> None:
    """Delete outputs of tracks that are no longer in the input, so manifests stay truthful."""
    live = {(slugify(t.artist), slugify(t.track)) for t in found}
    state_root = curated / "state"
    if not state_root.exists():
        return
    for state in state_root.glob("*/*.json"):
        key = (state.parent.name, state.stem)
        if key not in live:
            state.unlink()
            for cat in CATEGORIES:
                shutil.rmtree(curated / "segments" / cat / key[0] / key[1], ignore_errors=True)
            shutil.rmtree(curated / "tracks" / key[0] / key[1], ignore_errors=True)


def _write_tables(curated: Path, params: Params, tracks: list[TrackRecord], segments: list[SegmentRecord],
                  report: list[FileReport], split: dict[str, str], counts: dict[str, dict[str, int]],
                  duplicate_groups: int = 0) -> None:
    """Write the tables later stages and the book read (only when their content changed)."""
    import json

    def jsonl(rows: Iterable[Any]) -> str:
        return "".join(json.dumps(dataclasses.asdict(r), sort_keys=True, ensure_ascii=False) + "\n" for r in rows)

    write_if_changed(curated / "tracks.jsonl", jsonl(tracks))
    write_if_changed(curated / "segments.jsonl", jsonl(segments))
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
    write_if_changed(curated / "report.json", json.dumps(
        {"summary": summary, "files": [dataclasses.asdict(r) for r in report]}, indent=2, ensure_ascii=False) + "\n")
    write_if_changed(curated / "split.json", json.dumps(
        {"seed": params.seed, "fractions": params.curate.split_fractions, "by": "track, stratified by artist",
         "tracks": dict(sorted(split.items()))}, indent=2, ensure_ascii=False) + "\n")


def _curated_dir(run_dir: str | Path) -> Path:
    """Accept a run dir or its ``curated/`` subfolder."""
    p = Path(run_dir)
    return p if (p / "tracks.jsonl").exists() else p / "curated"


def load_tracks(run_dir: str | Path) -> list[TrackRecord]:
    """Accepted tracks of a curated run."""
    return [TrackRecord(**r) for r in read_jsonl(_curated_dir(run_dir) / "tracks.jsonl")]


def load_segments(run_dir: str | Path) -> list[SegmentRecord]:
    """Kept segments of a curated run."""
    return [SegmentRecord(**r) for r in read_jsonl(_curated_dir(run_dir) / "segments.jsonl")]


def load_report(run_dir: str | Path) -> tuple[dict[str, Any], list[FileReport]]:
    """The validation report: summary and per-file rows."""
    data = read_json(_curated_dir(run_dir) / "report.json")
    return data["summary"], [FileReport(**r) for r in data["files"]]


def tables(result: CurationResult) -> dict[str, Any]:
    """DataFrames the dataset chapter shows: tracks, segment counts, problems."""
    import pandas as pd

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
    for (tid, idx), cats in sorted(by_key.items()):
        artist = next(iter(cats.values())).artist
        if artist not in out and len(cats) == len(CATEGORIES):
            out[artist] = cats
    return out


__all__ = [
    "tables", "example_segments",
    "FileReport", "TrackFiles", "TrackRecord", "SegmentRecord", "CurationResult", "discover",
    "track_fingerprint", "process_track", "signal_warnings", "keep_duplicates_together", "shared_gain_db",
    "assign_splits", "write_manifests", "raw_root",
    "run_curation", "load_tracks", "load_segments", "load_report",
]
