"""Making Silicon Sing, reproduced: the helper package behind the book.

Every computation lives here; the notebooks in ``notebooks/`` only set parameters, call these
functions, plot, play audio and glue numbers. Foundations (:mod:`~silicon_sing.params`,
:mod:`~silicon_sing.machine`, :mod:`~silicon_sing.fsutil`, :mod:`~silicon_sing.audio`,
:mod:`~silicon_sing.names`, :mod:`~silicon_sing.music`) sit under
the stages in pipeline order (:mod:`~silicon_sing.synth`, :mod:`~silicon_sing.curate`,
:mod:`~silicon_sing.data`, :mod:`~silicon_sing.caption`, :mod:`~silicon_sing.train`,
:mod:`~silicon_sing.generate`, :mod:`~silicon_sing.metrics`, :mod:`~silicon_sing.results`,
:mod:`~silicon_sing.listen`), under presentation (:mod:`~silicon_sing.plots`,
:mod:`~silicon_sing.nbtools`); imports only point down. One line per module: CONTRIBUTING.md, "Package map".

Notebook: every chapter (``notebooks/``).

:func:`load_export` loads an exported model directory (a smoke export needs our conditioner).
"""

from __future__ import annotations

import os
from typing import Any

from .fsutil import load_tensors_only

__version__ = "0.1.0"


def load_export(directory: str | os.PathLike[str], device: str | None = None) -> Any:
    """``MusicGen.get_pretrained(directory)`` after registering our ``hashed_text`` conditioner.

    Smoke exports use that conditioner and load only through this function (or after
    ``import silicon_sing.models``); paper exports load with audiocraft alone.
    """
    # lazy: audiocraft (and models, which imports it) take seconds and are not needed to import the package
    from audiocraft.models import MusicGen

    from . import models  # noqa: F401  (importing it registers hashed_text with audiocraft's builders)

    for name in ("state_dict.bin", "compression_state_dict.bin"):
        path = os.path.join(os.fspath(directory), name)
        if os.path.isfile(path):
            # memory-mapped, tensors only: a file that needs more is refused here with its name
            # (audiocraft's own torch.load would refuse it too, without saying which file or why)
            load_tensors_only(path, mmap=True)
    return MusicGen.get_pretrained(os.fspath(directory), device=device or ("cuda" if _cuda() else "cpu"))


def _cuda() -> bool:
    """Whether torch sees a GPU (audiocraft's own default device)."""
    import torch  # lazy: see load_export

    return torch.cuda.is_available()


__all__ = ["load_export", "__version__"]
