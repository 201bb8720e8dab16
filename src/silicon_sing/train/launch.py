"""The notebook side of fine-tuning: check, lock, run the torchrun job, follow it, report its outcome.

:func:`launch_job` trains one or more categories, one after another, in a single torchrun job
(``python -m silicon_sing.train``, :mod:`.worker`) through the shared launcher :mod:`silicon_sing.torchrun`:
categories whose export is up to date are not trained again, GPUs and memory are checked first
(:func:`preflight`), the lock of every category in the job is held for the whole job, rank 0's progress
lines move one tqdm bar per category, and a failure raises :class:`TrainingFailed` naming the category the
job was training and carrying the failing rank's stderr tail — or :class:`TrainingInterrupted` when the job
stopped on a signal (after a checkpoint, or between two categories). Categories finished before a failure
keep their exports. :func:`launch` trains one category; :func:`train_all` (notebook 03) every one.

One job rather than one per category: on 2 CPU cores a job spends ~14 s before its first step (the agent,
two workers importing torch and audiocraft, the model), about as long as a smoke category takes to train.
The job's torchrun logs live with its first category (``checkpoints/<category>/torchrun``).

``progress=True`` is notebook display: besides the bar, :func:`launch` prints one line per outcome
(reused export, multi-node command, final losses) and the memory estimate; with ``progress=False``
the same lines go to this module's logger.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shlex
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import memory
from .. import torchrun as tr
from ..fsutil import read_jsonl, run_lock
from ..models import model_config, resolve_model_name
from ..params import CATEGORIES, Params
from .distributed import require_gpus_for
from .stage import LOCK_HELD_ENV, TrainResult, is_up_to_date, known_categories, load_result
from .trainer import PROGRESS

logger = logging.getLogger(__name__)


class TrainingFailed(RuntimeError):
    """A torchrun job failed; the message carries the failing rank's stderr tail."""


class TrainingInterrupted(RuntimeError):
    """The job was stopped by a signal after writing a checkpoint; rerun with resume."""


def _say(progress: bool, message: str) -> None:
    """Notebook display when ``progress`` (printed, so the reader sees it), else an INFO log record."""
    if progress:
        print(message, flush=True)
    else:
        logger.info(message)


def params_overrides(params: Params) -> dict[str, Any]:
    """Dotted overrides that rebuild ``params`` exactly from its parameter file."""
    out: dict[str, Any] = {}
    for k, v in params.to_dict().items():
        if k in ("source", "overrides"):  # bookkeeping, not parameters
            continue
        if isinstance(v, dict) and dataclasses.is_dataclass(getattr(params, k)):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def rendezvous_args(params: Params) -> list[str]:
    """torchrun's job-shape arguments: one standalone node, or ``train.nnodes`` joined by a c10d rendezvous."""
    t = params.train
    if t.nnodes <= 1:
        return ["--standalone"]
    if not t.rdzv_endpoint:
        raise ValueError(f"train.nnodes={t.nnodes} needs train.rdzv_endpoint (host:port of the first node, "
                         f"reachable from every node; on SLURM the first host of $SLURM_JOB_NODELIST)")
    return [f"--nnodes={t.nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={t.rdzv_endpoint}",
            f"--rdzv-id={t.rdzv_id}"]


def torchrun_command(params: Params, categories: str | Sequence[str], nproc: int, log_dir: Path,
                     resume: bool) -> list[str]:
    """The torchrun command line that trains ``categories`` in turn (the same on every node of a multi-node job)."""
    cats = [categories] if isinstance(categories, str) else list(categories)
    cmd = tr.command(rendezvous_args(params), nproc, "silicon_sing.train",
                     ["--params", str(params.source), "--category", *cats,
                      "--overrides", json.dumps(params_overrides(params))], log_dir=log_dir)
    return cmd + (["--resume"] if resume else [])


def memory_estimate(params: Params) -> memory.MemoryEstimate:
    """Per-GPU memory of this run's fine-tuning (:mod:`silicon_sing.memory`), from the model's config only."""
    t = params.train
    world = max(1, t.nproc_per_node * t.nnodes)
    shape = memory.model_shape(model_config(resolve_model_name(params)))
    return memory.estimate(shape, world, max(1, t.batch_size // world), params.curate.segment_seconds,
                           t.precision, t.optimizer, fsdp=t.fsdp, activation_checkpointing=t.activation_checkpointing)


def gpu_memory_bytes(params: Params) -> float | None:
    """Memory per GPU for the fit check: ``train.gpu_memory_gib``, else the smallest visible GPU's, else None."""
    if params.train.gpu_memory_gib:
        return params.train.gpu_memory_gib * memory.GIB
    if torch.cuda.is_available():
        return float(min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())))
    return None


def preflight(params: Params, progress: bool = True) -> None:
    """Checks before any process starts: GPUs for nccl, and whether the job fits the GPUs' memory."""
    require_gpus_for(params.train.dist_backend)
    available = gpu_memory_bytes(params)
    if available is None:
        return  # CPU processes: nothing to check against
    est = memory_estimate(params)
    _say(progress, est.describe())
    memory.check_fits(est, available, "train.gpu_memory_gib" if params.train.gpu_memory_gib else "the visible GPUs")



def launch(params: Params, category: str, resume: bool = True, progress: bool = True,
           nproc: int | None = None, env: dict[str, str] | None = None) -> TrainResult:
    """Run the torchrun job for one category, with a progress bar; return its result or raise its error.

    ``resume=True`` continues an interrupted run of the same inputs (a checkpoint of other inputs
    is ignored). Unchanged inputs with a finished export return at once (``reused=True``).
    """
    return launch_job(params, [category], resume, progress, nproc, env)[category]


def launch_job(params: Params, categories: Sequence[str], resume: bool = True, progress: bool = True,
               nproc: int | None = None, env: dict[str, str] | None = None) -> dict[str, TrainResult]:
    """Fine-tune ``categories`` in the order given, in one torchrun job; return each one's result.

    As :func:`launch` for each category: up-to-date exports are reused (``reused=True``) and are not part
    of the job, ``resume=True`` continues an interrupted category. The locks of all the job's categories
    are held until it ends.
    """
    cats = known_categories(categories)
    results: dict[str, TrainResult] = {}
    todo: list[str] = []
    for c in cats:
        if is_up_to_date(params, c):
            _say(progress, f"{c}: inputs unchanged since the export in {params.run.export(c)}; nothing to do")
            results[c] = load_result(params, c, reused=True)
        else:
            todo.append(c)
    if todo:
        preflight(params, progress)
        locks = [params.run.train_lock(c) for c in todo]
        with contextlib.ExitStack() as stack:  # held for the whole torchrun job, by it too
            held = [stack.enter_context(run_lock(lock, f"training {c}")) for c, lock in zip(todo, locks)]
            job_env = {**(env or {}), LOCK_HELD_ENV: json.dumps([str(lock) for lock in locks])}
            results.update(_launch_locked(params, todo, resume, progress, nproc or params.train.nproc_per_node,
                                          job_env, [h.fd for h in held]))
    return {c: results[c] for c in cats}


def _launch_locked(params: Params, categories: list[str], resume: bool, progress: bool, nproc: int,
                   env: dict[str, str], lock_fds: list[int]) -> dict[str, TrainResult]:
    """:func:`launch_job` once the categories' locks are held (by descriptors ``lock_fds``, which the job
    inherits: if this process is killed, the locks stay with the job until it has checkpointed and ended)."""
    log_dir = params.run.torchrun_logs(categories[0])
    shutil.rmtree(log_dir, ignore_errors=True)  # a previous job's error files must not be blamed
    for c in categories:
        params.run.category_dir(c).mkdir(parents=True, exist_ok=True)
    run_env = tr.share_cpu_threads({**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}, nproc)
    cmd = torchrun_command(params, categories, nproc, log_dir, resume)
    if params.train.nnodes > 1:
        _say(progress, f"{', '.join(categories)}: this node joins a {params.train.nnodes}-node job at "
                       f"{params.train.rdzv_endpoint}; start the same command on every other node (README, "
                       "'several nodes'):\n  " + " ".join(shlex.quote(c) for c in cmd))
    stderr_path = params.run.torchrun_stderr(categories[0])
    job_start = time.time()
    total = params.train.epochs * params.train.updates_per_epoch
    with JobProgress(categories, total, progress) as bars:
        outcome = tr.run(cmd, env=run_env, stderr_path=stderr_path, on_line=bars.on_line, pass_fds=lock_fds)
    rc = outcome.returncode
    results: dict[str, TrainResult] = {}
    for c in categories:  # trained in order: those done before a failure keep their exports
        if rc != 0 and not is_up_to_date(params, c):  # none was before the job (launch_job)
            break
        r = results[c] = load_result(params, c)
        _say(progress, f"{c}: {r.steps} steps on {r.world_size} process(es), train loss "
                       f"{r.first_train_loss:.3f} → {r.final_train_loss:.3f}, {r.samples_per_s:.1f} samples/s")
    if all(c in results for c in categories):  # every export written and fingerprinted: nothing is lost
        if rc != 0:
            logger.warning("the training job exited with code %s after exporting %s; logs: %s", rc,
                           ", ".join(categories), log_dir)
        return results
    kept = f" ({', '.join(results)} finished first and kept their exports)" if results else ""
    again = "run train_all (or launch_job) again: it resumes"
    if bars.stopped:  # signalled while the category before it finished: nothing of it was started
        raise TrainingInterrupted(f"the job was stopped before training {bars.stopped} began{kept}; {again}")
    # the category the job was in (its last 'begin'), else the first one without an export
    failed = bars.begun or next(c for c in categories if c not in results)
    rows = read_jsonl(params.run.train_log(failed)) if params.run.train_log(failed).exists() else []
    # only an interruption of *this* job: a row left by an earlier one must not hide this job's error
    if rows and rows[-1].get("event") == "interrupted" and rows[-1].get("time", 0) >= job_start:
        raise TrainingInterrupted(f"training {failed} was stopped at step {rows[-1].get('step')} after "
                                  f"writing a checkpoint{kept}; {again} from that checkpoint")
    rank, tail = tr.failure_tail(outcome, log_dir)
    where = f"rank {rank}" if rank is not None else "torchrun"
    what = (f"the training job failed after {failed} had written its export" if failed in results
            else f"training {failed} failed")
    raise TrainingFailed(f"{what} (exit code {rc}) on {where}{kept}; its stderr ends with:\n"
                         f"{tail}\n(full logs: {log_dir}, {stderr_path})")


class ProgressBar:
    """A tqdm bar moved by rank 0's progress lines (:data:`silicon_sing.train.trainer.PROGRESS`)."""

    def __init__(self, category: str, total: int, progress: bool):
        self.category, self.total = category, total
        self.bar = tqdm(total=total, desc=f"fine-tune {category}", unit="step", disable=not progress)
        self.shown: dict[str, str] = {}  # the bar's postfix: last train loss, epoch, last validation loss

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()

    def on_line(self, line: str) -> None:
        """Move the bar if ``line`` is a progress line of this category; ignore any other output."""
        msg = progress_message(line)
        if msg is not None and msg.get("category", self.category) == self.category:
            self.on_message(msg)

    def on_message(self, msg: dict[str, Any]) -> None:
        """Move the bar by one progress row (:func:`progress_message`) of this category."""
        if msg.get("kind") == "train":
            self.bar.n = int(msg["step"])
            self.shown.update(loss=f"{msg['loss']:.3f}", epoch=str(msg["epoch"]))
            self.bar.set_postfix(self.shown)
            self.bar.refresh()
        elif msg.get("kind") == "valid":  # step 0: the starting model's; then after every epoch
            self.shown["valid"] = f"{msg['loss']:.3f}"
            self.bar.set_postfix(self.shown)
        elif msg.get("kind") == "event" and msg.get("event") == "up-to-date":
            self.bar.n = self.total
            self.bar.refresh()


def progress_message(line: str) -> dict[str, Any] | None:
    """The row a progress line (:data:`~silicon_sing.train.trainer.PROGRESS`) carries, None for any other output."""
    i = line.find(PROGRESS)
    if i < 0:
        return None
    try:
        msg = json.loads(line[i + len(PROGRESS):])
    except json.JSONDecodeError:
        return None
    return msg if isinstance(msg, dict) else None


class JobProgress:
    """One :class:`ProgressBar` per category of a job; each progress line moves its category's bar.

    Also where the job is: ``begun``, the category it last started; ``stopped``, the category a signal
    kept it from starting (the worker's ``begin`` and ``stopped`` events).
    """

    def __init__(self, categories: Sequence[str], total: int, progress: bool):
        self.bars = {c: ProgressBar(c, total, progress) for c in categories}
        self.begun: str | None = None
        self.stopped: str | None = None

    def __enter__(self) -> JobProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self.bars.values():
            bar.bar.close()

    def on_line(self, line: str) -> None:
        """Hand a progress line to its category's bar; note where the job is; ignore any other output."""
        msg = progress_message(line)
        bar = self.bars.get(str(msg.get("category"))) if msg is not None else None
        if msg is None or bar is None:
            return
        if msg.get("kind") == "event" and msg.get("event") == "begin":
            self.begun = bar.category
        elif msg.get("kind") == "event" and msg.get("event") == "stopped":
            self.stopped = bar.category
        bar.on_message(msg)


def train_all(params: Params, categories: Sequence[str] = CATEGORIES, progress: bool = True) -> dict[str, TrainResult]:
    """Fine-tune every category in turn, all in one torchrun job (:func:`launch_job`)."""
    return launch_job(params, categories, progress=progress)


__all__ = ["TrainingFailed", "TrainingInterrupted", "params_overrides", "rendezvous_args", "torchrun_command",
           "memory_estimate", "gpu_memory_bytes", "preflight", "launch", "launch_job", "ProgressBar", "JobProgress",
           "progress_message", "train_all"]
