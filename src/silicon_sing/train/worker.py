"""Stage 03 — the torchrun worker: ``python -m silicon_sing.train`` fine-tunes one category.

``torchrun --standalone --nproc_per_node=N -m silicon_sing.train --params params/smoke.yaml
--category acapella [--resume] [--overrides JSON]`` trains one category, from 2 CPU processes to 8
GPUs; :func:`silicon_sing.train.launch` runs that command from a notebook. Each worker joins the
job, and rank 0 takes the category's lock unless the launcher (its parent) already holds it. A
rerun with unchanged inputs finds the export and does no work; ``--resume`` continues an
interrupted run of the same inputs bit-for-bit.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from ..fsutil import run_lock
from ..params import CATEGORIES, Params, load_params
from .distributed import die_with_parent, init_distributed
from .stage import LOCK_HELD_ENV, is_up_to_date
from .trainer import PROGRESS, Trainer


def train(params: Params, category: str, resume: bool = False) -> int:
    """Fine-tune ``category`` inside a torchrun worker (or a single process); return the exit code."""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    if is_up_to_date(params, category):
        if int(os.environ.get("RANK", 0)) == 0:
            print(PROGRESS + json.dumps({"kind": "event", "event": "up-to-date"}), flush=True)
        return 0
    ctx = init_distributed(params.train.dist_backend, params.train.collective_timeout_minutes)
    torch.manual_seed(params.seed)
    try:
        return Trainer(params, category, ctx).run(resume)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _main(argv: list[str] | None = None) -> int:
    """Command-line entry point (each torchrun worker runs this)."""
    if "TORCHELASTIC_RUN_ID" in os.environ:  # a torchrun worker: stop with the agent
        die_with_parent()
    ap = argparse.ArgumentParser(prog="python -m silicon_sing.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params/smoke.yaml", help="the profile's parameter file")
    ap.add_argument("--category", required=True, choices=CATEGORIES)
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint of the same inputs")
    ap.add_argument("--overrides", default="{}", help='JSON dict of dotted overrides, e.g. {"train.epochs": 1}')
    args = ap.parse_args(argv)
    params = load_params(args.params, json.loads(args.overrides))
    lock = params.run.train_lock(args.category)
    if int(os.environ.get("RANK", 0)) != 0 or os.environ.get(LOCK_HELD_ENV) == str(lock):
        return train(params, args.category, resume=args.resume)  # rank 0 alone writes; launch holds it
    with run_lock(lock, f"training {args.category}"):  # torchrun or python started by hand
        return train(params, args.category, resume=args.resume)


def main(argv: list[str] | None = None) -> int | None:
    """torchrun entry point; ``record`` puts a failing rank's traceback into torchrun's error report.

    None when :func:`_main` exits with ``SystemExit(0)`` (``--help``): ``record`` returns None then.
    """
    return record(_main)(argv)


__all__ = ["train", "main"]
