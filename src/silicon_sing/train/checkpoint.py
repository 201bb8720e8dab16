"""Training checkpoints: atomic writes, tensors-only reads, RNG state, and leftovers of killed writes.

``<run_dir>/checkpoints/<category>/checkpoint.pt`` holds the model, optimizer, scheduler, sampler
position and every rank's RNG states, written by rank 0 at the end of every epoch and when
SIGTERM/SIGINT arrives; it is read back with ``weights_only`` semantics (tensors and plain values,
never unpickled code) so ``--resume`` continues bit-for-bit.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..fsutil import atomic_path, load_tensors_only

CHECKPOINT = "checkpoint.pt"


def rng_state() -> dict[str, Any]:
    """This process's RNG states (torch, cuda, numpy, python), as tensors and plain values only."""
    # the legacy tuple (get_state's default, legacy=True); numpy's stub overloads pick the dict for no argument
    name, keys, pos, has_gauss, cached = cast("tuple[str, np.ndarray, int, int, float]", np.random.get_state())
    # numpy's key array as a tensor: checkpoints then load with weights_only=True (no unpickling)
    return {"torch": torch.get_rng_state(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                      cached),
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically write a training checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint onto the CPU: tensors and plain values only, never unpickled code."""
    return load_tensors_only(path, mmap=True)  # mmap: shared pages across ranks


def remove_leftover_temps(checkpoint: Path) -> None:
    """Delete the temporary files of checkpoint writes killed before their rename (``.<stem>.*<suffix>``)."""
    for leftover in checkpoint.parent.glob(f".{checkpoint.stem}.*{checkpoint.suffix}"):
        leftover.unlink(missing_ok=True)


__all__ = ["CHECKPOINT", "rng_state", "set_rng_state", "save_checkpoint", "load_checkpoint", "remove_leftover_temps"]
