"""Making Silicon Sing, reproduced: the helper package behind the book.

Every computation lives here; the notebooks in ``notebooks/`` only set parameters, call these
functions, plot, play audio and ``glue`` numbers. One module per pipeline stage:

- :mod:`silicon_sing.synth`   — the embedded default's synthetic stems (3 artists)
- :mod:`silicon_sing.curate`  — validation, resampling, loudness, segments, split, manifests
- :mod:`silicon_sing.caption` — Essentia descriptors, captions, UUID prefix
- :mod:`silicon_sing.train`   — torchrun fine-tuning entry point
- :mod:`silicon_sing.generate`, :mod:`silicon_sing.metrics` — continuations, KL and FAD

:func:`load_export` loads an exported model directory (a smoke export needs our conditioner).
"""

from __future__ import annotations

import os
from typing import Any

__version__ = "0.1.0"


def load_export(directory: str | os.PathLike[str], device: str | None = None) -> Any:
    """``MusicGen.get_pretrained(directory)`` after registering our ``hashed_text`` conditioner.

    Smoke exports use that conditioner and load only through this function (or after
    ``import silicon_sing.models``); paper exports load with audiocraft alone.
    """
    from audiocraft.models import MusicGen

    from . import models  # noqa: F401  (importing it registers hashed_text with audiocraft's builders)
    from .fsutil import load_tensors_only

    for name in ("state_dict.bin", "compression_state_dict.bin"):
        path = os.path.join(os.fspath(directory), name)
        if os.path.isfile(path):
            # memory-mapped, tensors only: a file that needs more is refused here with its name
            # (audiocraft's own torch.load would refuse it too, without saying which file or why)
            load_tensors_only(path, mmap=True)
    return MusicGen.get_pretrained(os.fspath(directory), device=device or ("cuda" if _cuda() else "cpu"))


def _cuda() -> bool:
    """Whether torch sees a GPU (audiocraft's own default device)."""
    import torch

    return torch.cuda.is_available()


__all__ = ["load_export", "__version__"]
