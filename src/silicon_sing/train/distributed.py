"""This process's place in a torchrun job: joining it, collectives, and stopping cleanly.

:func:`init_distributed` joins the job (or runs single-process without torchrun) and refuses
``nccl`` on a machine without a GPU (:class:`NoGPU`) instead of silently training on CPU.
:class:`StopFlag` turns SIGTERM/SIGINT — and, through :func:`die_with_parent`, the death of the
torchrun agent — into a checkpoint at the next step boundary.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from ..torchrun import parent_death_signal


@dataclass
class Dist:
    """This process's place in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, checkpoints and the export."""
        return self.rank == 0


class NoGPU(RuntimeError):
    """The parameters ask for GPUs (``dist_backend: nccl``) on a machine that has none."""


def require_gpus_for(backend: str) -> None:
    """Stop when ``nccl`` is asked for without a visible GPU, instead of silently training on CPU."""
    if backend == "nccl" and not torch.cuda.is_available():
        raise NoGPU("train.dist_backend is 'nccl' but this machine has no visible GPU (CUDA_VISIBLE_DEVICES="
                    f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}). Run the paper profile on a GPU node, or, "
                    "to run its code path on CPU on purpose, set train.dist_backend: gloo, train.precision: fp32 "
                    "and train.nproc_per_node to a few processes (params/rehearsal.yaml does this).")


def init_distributed(backend: str, timeout_minutes: float = 60.0) -> Dist:
    """Join the torchrun job (or run single-process without torchrun).

    ``timeout_minutes`` bounds every collective: long enough for rank 0 to write a multi-GB checkpoint
    while the other ranks wait at the barrier after it.
    """
    require_gpus_for(backend)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        # plain "cuda" (= this rank's current device): audiocraft's conditioners build
        # torch.autocast(device_type=<their device>), which rejects "cuda:N"
        device = torch.device("cuda")
    else:
        device = torch.device("cpu")
    if "MASTER_ADDR" in os.environ and not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world,
                                timeout=timedelta(minutes=timeout_minutes))
    return Dist(rank, world, local, device)


def all_reduce(t: torch.Tensor, op: dist.ReduceOp.RedOpType | None = None) -> torch.Tensor:
    """In-place all-reduce (sum by default) when distributed; identity otherwise."""
    if dist.is_initialized():
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    """Wait for every rank (no-op single-process)."""
    if dist.is_initialized():
        dist.barrier()


def gather_objects(obj: Any, world_size: int) -> list[Any]:
    """Every rank's ``obj`` (on every rank; any picklable object)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


# Sent by Linux to a torchrun worker when its agent dies (see die_with_parent). Not SIGTERM: when a
# multi-threaded agent is SIGKILLed the kernel re-parents the worker thread by thread and sends the
# signal at each step, and a second SIGTERM means "abort now" to StopFlag.
PARENT_DIED = signal.SIGUSR2


class StopFlag:
    """Set by SIGTERM/SIGINT (or the agent's death); the loop checkpoints at the next step boundary.

    A second SIGTERM/SIGINT aborts at once; repeated parent-death notices are one event.
    """

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def install(self) -> None:
        """Handle SIGTERM, SIGINT and :data:`PARENT_DIED` in this process."""
        for s in (signal.SIGTERM, signal.SIGINT, PARENT_DIED):
            self._previous[s] = signal.signal(s, self._handle)

    def uninstall(self) -> None:
        """Put the previous handlers back (the trainer may run inside a test or notebook process)."""
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """First signal: request a checkpoint. Second SIGTERM/SIGINT: give up at once."""
        if self.signum and signum != PARENT_DIED:
            raise KeyboardInterrupt(f"second signal {signum}")
        self.signum = self.signum or signum


def die_with_parent(signum: int = PARENT_DIED) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent (the torchrun agent) dies; return if set.

    A worker orphaned by a killed agent (even SIGKILL) would otherwise keep training and writing into
    the run dir beside a relaunched job. :class:`StopFlag` turns the signal into a checkpoint at the
    next step boundary; before it is installed the signal's default action ends the process.
    """
    return parent_death_signal(signum)


__all__ = ["Dist", "NoGPU", "require_gpus_for", "init_distributed", "all_reduce", "barrier", "gather_objects",
           "PARENT_DIED", "StopFlag", "die_with_parent"]
