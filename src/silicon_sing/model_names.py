"""Which model a run names — the shipped nano, the random-init nano, an export directory or a hub name — without audiocraft.

What needs only to know *which files* a model is (weight fingerprints, the codec round-trip cache of
notebook 05) imports this module; :mod:`silicon_sing.models`, which builds and loads models, imports
audiocraft (~4 s on 2 cores) and re-exports these names.
"""

from __future__ import annotations

from pathlib import Path

from .params import Params

NANO = "nano"  # the shipped pre-trained nano model (NANO_DIR)
NANO_RANDOM = "nano-random"  # a random-init tiny model from nano_config (nano_musicgen), for tests
NANO_DIR = Path(__file__).resolve().parent / "assets" / "nano"
MELODY = "facebook/musicgen-melody"


def resolve_model_name(params: Params) -> str:
    """``params.train.model``, with a relative export directory resolved against the repository root."""
    name = str(params.train.model)
    if name == NANO:  # its files, so that training fingerprints change with the shipped weights
        return str(NANO_DIR)
    if name != NANO_RANDOM and not Path(name).expanduser().is_absolute() and (source := getattr(params, "source", None)):
        candidate = Path(source).resolve().parent.parent / name
        if candidate.is_dir():
            return str(candidate)
    return str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name


__all__ = ["NANO", "NANO_RANDOM", "NANO_DIR", "MELODY", "resolve_model_name"]
