"""Using our run directories with audiocraft's own tools.

- :func:`ensure_audiocraft_config` — audiocraft's datasets (``MusicDataset``, ``InfoAudioDataset``) read
  a team configuration through ``AudioCraftEnvironment``; the audiocraft 1.3.0 wheel ships none, so
  they fail unless ``AUDIOCRAFT_CONFIG`` names one. We ship a minimal one and point the variable at it.
- :func:`music_dataset` — audiocraft's ``MusicDataset`` over one of our curated manifests
  (``<run_dir>/curated/manifests/<category>/<split>``, with the ``<segment>.json`` sidecars stage 02
  fills in: description with the run UUID, bpm, key, moods, …).

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .params import RunPaths

if TYPE_CHECKING:
    from audiocraft.data.music_dataset import MusicDataset

AUDIOCRAFT_CONFIG_FILE = Path(__file__).parent / "assets" / "audiocraft" / "teams.yaml"


def ensure_audiocraft_config() -> Path:
    """Point ``AUDIOCRAFT_CONFIG`` at our minimal team config unless it is already set; return the file in use."""
    current = os.environ.get("AUDIOCRAFT_CONFIG")
    if current:
        return Path(current)
    os.environ["AUDIOCRAFT_CONFIG"] = str(AUDIOCRAFT_CONFIG_FILE)
    return AUDIOCRAFT_CONFIG_FILE


def music_dataset(run_dir: str | os.PathLike[str], category: str, split: str, **kwargs: Any) -> MusicDataset:
    """audiocraft's ``MusicDataset.from_meta`` on one curated manifest (whole segments, 32 kHz mono by default)."""
    from audiocraft.data.music_dataset import MusicDataset  # lazy: audiocraft is heavy; the config helper needs none

    ensure_audiocraft_config()
    manifest = RunPaths(Path(run_dir)).manifest(category, split)  # <split>/data.jsonl
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} is missing: run the curation stage "
                                f"(notebooks/01_curate.ipynb) first")
    opts: dict[str, Any] = {"segment_duration": None, "sample_rate": 32000, "channels": 1, **kwargs}
    return MusicDataset.from_meta(str(manifest.parent), **opts)


__all__ = ["AUDIOCRAFT_CONFIG_FILE", "ensure_audiocraft_config", "music_dataset"]
