"""Inputs of stage 01: finding ``<root>/<artist>/<track>/<stem>.<ext>`` and validating every file.

Every file is validated and reported (undecodable, truncated, empty, silent, mismatched durations,
unexpected names, unreadable folders, broken links; clipping and DC offset are warnings that do
not reject); a bad file rejects only its own track. A track's fingerprint (its files' path, size
and mtime and the curation parameters) decides whether a rerun redoes it.

Notebook: notebooks/01_curate.ipynb
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .. import audio as au
from ..fsutil import text_sha1
from ..params import CATEGORIES, Params
from ..synth import CORPUS_FILE
from .records import FileReport, TrackFiles

CURATE_VERSION = 2  # bump when the processing changes, so cached tracks are redone (2: content hashes, checks)
CLIP_LEVEL = 0.999  # |sample| at or above this is at full scale
CLIP_FRACTION = 1e-3  # warn when more than this fraction of a file's samples is at full scale
DC_OFFSET = 0.01  # warn when a channel's mean exceeds this (−40 dBFS)


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
            if artist_dir.name not in (CORPUS_FILE,):
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
