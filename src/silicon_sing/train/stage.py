"""One category's fine-tuning as a pipeline stage: where its files go, what decides it, what it produced.

A category's checkpoint, log and lock live in ``<run_dir>/checkpoints/<category>/``; the final model
in ``checkpoints/<category>/export/`` (``MusicGen.get_pretrained`` layout, see
:mod:`silicon_sing.models`) with ``done.json``. :func:`inputs_fingerprint` hashes everything that
determines the fine-tuned model (recipe, seed, start model, data, run UUID — not how many processes
compute it); a rerun whose fingerprint matches the export's does no work (:func:`is_up_to_date`).

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import load_run_uuid, load_training_examples
from ..fsutil import file_sha1, read_json, text_sha1
from ..models import resolve_model_name
from ..params import CATEGORIES, Params

LOCK_HELD_ENV = "SILICON_SING_LOCK_HELD"  # set by launch for its torchrun job: the lock files it holds (a JSON list)


@dataclass
class TrainResult:
    """What one category's fine-tuning produced (``export/done.json``)."""

    category: str
    export_dir: str
    log_path: str
    fingerprint: str
    steps: int
    skipped_steps: int
    world_size: int
    first_train_loss: float
    final_train_loss: float
    valid_losses: list[float]  # after each epoch
    samples_per_s: float
    tokens_per_s: float
    seconds: float  # summed step times
    token_cache_seconds: float = 0.0  # encoding pass before the first step (0 when the cache was warm)
    reused: bool = False  # True: inputs unchanged, nothing was run
    start_valid_loss: float = float("nan")  # the starting model's, before the first step (nan: older exports)

    @property
    def final_valid_loss(self) -> float:
        """The last epoch's validation loss (nan without a validation split)."""
        return self.valid_losses[-1] if self.valid_losses else float("nan")


def known_categories(categories: Sequence[str]) -> list[str]:
    """``categories`` once each, in order; a ValueError names the first unknown one."""
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown category {unknown[0]!r}; expected one of {CATEGORIES}")
    return list(dict.fromkeys(categories))


def inputs_fingerprint(params: Params, category: str) -> str:
    """Hash of everything that determines the fine-tuned model (not how many processes compute it)."""
    t = dataclasses.asdict(params.train)
    # how the work is spread and how much memory it takes, not what is learnt
    for k in ("nproc_per_node", "dist_backend", "token_cache", "activation_checkpointing", "fsdp", "nnodes",
              "rdzv_endpoint", "rdzv_id", "collective_timeout_minutes", "gpu_memory_gib"):
        t.pop(k)
    name = resolve_model_name(params)
    model: str | dict[str, str] = name
    if Path(name).is_dir():  # an export: its weights, not its path, identify it
        model = {f: file_sha1(Path(name) / f) for f in ("state_dict.bin", "compression_state_dict.bin")}
    data: dict[str, list[tuple[str, str, list[tuple[str, Any]]]] | None] = {}
    for split in ("train", "valid"):
        try:
            data[split] = [(file_sha1(e.path), e.description, sorted(e.info.items(), key=str))
                           for e in load_training_examples(params.run_dir, category, split)]
        except FileNotFoundError:
            data[split] = None
    return text_sha1(json.dumps({"train": t, "seed": params.seed, "category": category, "model": model,
                                 "uuid": load_run_uuid(params.run_dir), "data": data}, sort_keys=True, default=str))


def read_done(params: Params, category: str) -> dict[str, Any] | None:
    """The finished export's record, if any."""
    path = params.run.export_done(category)
    return read_json(path) if path.exists() else None


def is_up_to_date(params: Params, category: str) -> bool:
    """Whether the export was produced from exactly these inputs (a rerun would do no work)."""
    done = read_done(params, category)
    if not done:
        return False
    return done.get("fingerprint") == inputs_fingerprint(params, category) and \
        (params.run.export(category) / "state_dict.bin").exists()


def load_result(params: Params, category: str, reused: bool = False) -> TrainResult:
    """The :class:`TrainResult` recorded in a finished export."""
    done = read_done(params, category)
    if done is None:
        raise FileNotFoundError(f"{params.run.export(category)}/done.json is missing: the training did not finish")
    names = {f.name for f in dataclasses.fields(TrainResult)}
    fields = {k: v for k, v in done.items() if k in names}
    return TrainResult(**{**fields, "export_dir": str(params.run.export(category)),
                          "log_path": str(params.run.train_log(category)), "reused": reused})


__all__ = ["TrainResult", "LOCK_HELD_ENV", "known_categories", "inputs_fingerprint", "read_done", "is_up_to_date", "load_result"]
