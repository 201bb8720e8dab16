"""Stage 01's records: a file's validation outcome, a track's input files, the accepted tracks and
kept segments (``tracks.jsonl``/``segments.jsonl``, see CONTRIBUTING.md), and a run's result.

Notebook: notebooks/01_curate.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..names import slugify


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

    @property
    def track_id(self) -> str:
        """``<artist slug>/<track slug>``: the id every record, file and state of this track is filed under."""
        return f"{slugify(self.artist)}/{slugify(self.track)}"


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
