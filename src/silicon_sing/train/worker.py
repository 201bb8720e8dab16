"""Stage 03 — the torchrun worker: ``python -m silicon_sing.train`` fine-tunes one or more categories.

``torchrun --standalone --nproc_per_node=N -m silicon_sing.train --params params/smoke.yaml
--category instrumental acapella [--resume] [--overrides JSON]`` trains the categories one after
another in one job, from 2 CPU processes to 8 GPUs; :func:`silicon_sing.train.launch_job` runs that
command from a notebook. Each worker joins the job once, and rank 0 takes the categories' locks unless
the launcher (its parent) already holds them. Each category starts from the same seed and a freshly
loaded model, so it learns exactly what it would learn in a job of its own. A rerun with unchanged
inputs finds the exports and does no work; ``--resume`` continues an interrupted run of the same
inputs bit-for-bit.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from ..fsutil import run_lock
from ..params import CATEGORIES, Params, load_params
from .distributed import Dist, StopFlag, all_reduce, die_with_parent, gather_objects, init_distributed
from .stage import LOCK_HELD_ENV, is_up_to_date, known_categories
from .trainer import Trainer, emit_progress


def train(params: Params, categories: str | Sequence[str], resume: bool = False) -> int:
    """Fine-tune ``categories`` in turn inside a torchrun worker (or a single process); return the exit code.

    A failing or interrupted category ends the job: the categories after it are not started. One
    :class:`StopFlag` serves the whole job, so that a signal arriving while a category validates, checkpoints
    or exports stops the job there instead of being forgotten by the next category's.
    """
    cats = known_categories([categories] if isinstance(categories, str) else categories)
    todo = [c for c in cats if not is_up_to_date(params, c)]
    if int(os.environ.get("RANK", 0)) == 0:
        for c in cats:
            if c not in todo:
                emit_progress({"kind": "event", "event": "up-to-date", "category": c})
    if not todo:
        return 0
    ctx = init_distributed(params.train.dist_backend, params.train.collective_timeout_minutes)
    stop = StopFlag()
    stop.install()
    try:
        seen = gather_objects(todo, ctx.world_size)
        if any(other != todo for other in seen):
            raise RuntimeError(
                f"the ranks disagree on what is left to train ({', '.join(f'rank {r}: {t}' for r, t in enumerate(seen))}): "
                f"every rank must see the same run dir {params.run_dir} (on several nodes, one filesystem they all "
                "share, without stale client caches)")
        for i, c in enumerate(todo):
            if i and stopped(stop, ctx):
                if ctx.is_main:
                    emit_progress({"kind": "event", "event": "stopped", "category": c})
                return 128 + (stop.signum or signal.SIGTERM)
            if ctx.is_main:
                emit_progress({"kind": "event", "event": "begin", "category": c})
            torch.manual_seed(params.seed)  # as if the category had the job to itself
            rc = Trainer(params, c, ctx).run(resume, stop)
            if rc:
                return rc
            gc.collect()  # the last category's model and optimizer, before the next one's are built
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        return 0
    finally:
        stop.uninstall()
        if dist.is_initialized():
            dist.destroy_process_group()


def stopped(stop: StopFlag, ctx: Dist) -> bool:
    """Whether any rank has been signalled to stop (every rank gets the same answer)."""
    flag = torch.tensor([float(stop.signum > 0)], device=ctx.device)
    return bool(all_reduce(flag, dist.ReduceOp.MAX).item() > 0)


def argument_parser() -> argparse.ArgumentParser:
    """The worker's command line (what :func:`~.launch.torchrun_command` writes, and the README's SLURM job)."""
    ap = argparse.ArgumentParser(prog="python -m silicon_sing.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params/smoke.yaml", help="the profile's parameter file")
    ap.add_argument("--category", required=True, nargs="+", choices=CATEGORIES,
                    help="one or more categories, trained in this order")
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint of the same inputs")
    ap.add_argument("--overrides", default="{}", help='JSON dict of dotted overrides, e.g. {"train.epochs": 1}')
    return ap


def _main(argv: list[str] | None = None) -> int:
    """Command-line entry point (each torchrun worker runs this)."""
    if "TORCHELASTIC_RUN_ID" in os.environ:  # a torchrun worker: stop with the agent
        die_with_parent()
    args = argument_parser().parse_args(argv)
    params = load_params(args.params, json.loads(args.overrides))
    locks = {c: params.run.train_lock(c) for c in args.category}
    held = set(json.loads(os.environ.get(LOCK_HELD_ENV) or "[]"))
    if int(os.environ.get("RANK", 0)) != 0 or all(str(lock) in held for lock in locks.values()):
        return train(params, args.category, resume=args.resume)  # rank 0 alone writes; launch holds the locks
    with contextlib.ExitStack() as stack:  # torchrun or python started by hand
        for c, lock in locks.items():
            stack.enter_context(run_lock(lock, f"training {c}"))
        return train(params, args.category, resume=args.resume)


def main(argv: list[str] | None = None) -> int | None:
    """torchrun entry point; ``record`` puts a failing rank's traceback into torchrun's error report.

    None when :func:`_main` exits with ``SystemExit(0)`` (``--help``): ``record`` returns None then.
    """
    return record(_main)(argv)


__all__ = ["train", "main", "argument_parser", "stopped"]
