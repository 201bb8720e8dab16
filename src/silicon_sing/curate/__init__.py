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

One responsibility per module: :mod:`~silicon_sing.curate.records` (the records),
:mod:`~silicon_sing.curate.inputs` (discovery and validation), :mod:`~silicon_sing.curate.process`
(one track: gain, segments, incremental state), :mod:`~silicon_sing.curate.split` (the split),
:mod:`~silicon_sing.curate.stage` (:func:`run_curation`, manifests, tables, loaders).

Notebook: notebooks/01_curate.ipynb
"""

from __future__ import annotations

from .inputs import CURATE_VERSION, discover, signal_warnings, track_fingerprint
from .process import process_track, shared_gain_db
from .records import CurationResult, FileReport, SegmentRecord, TrackFiles, TrackRecord
from .split import assign_splits, keep_duplicates_together
from .stage import (
                    example_segments,
                    load_report,
                    load_segments,
                    load_tracks,
                    raw_root,
                    run_curation,
                    tables,
                    write_manifests,
)

__all__ = [
    "CURATE_VERSION", "tables", "example_segments",
    "FileReport", "TrackFiles", "TrackRecord", "SegmentRecord", "CurationResult", "discover",
    "track_fingerprint", "process_track", "signal_warnings", "keep_duplicates_together", "shared_gain_db",
    "assign_splits", "write_manifests", "raw_root",
    "run_curation", "load_tracks", "load_segments", "load_report",
]
