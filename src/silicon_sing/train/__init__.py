"""Stage 03 — fine-tuning MusicGen with torchrun, one entry point from 2 CPU processes to 8 GPUs.

``torchrun --standalone --nproc_per_node=N -m silicon_sing.train --params params/smoke.yaml
--category instrumental acapella [--resume] [--overrides JSON]`` trains categories in turn in one job;
:func:`launch_job` (:func:`train_all`, :func:`launch` for one category) runs that command from a notebook,
streams rank 0's progress into a tqdm bar per category and raises with the failing category and rank's
stderr tail when any rank fails.

One module per responsibility, re-exported here:

- :mod:`.stage` — a category's files, the inputs fingerprint, ``done.json``, :class:`TrainResult`
- :mod:`.batches` — sample order, per-rank share, caption augmentation, condition dropout
- :mod:`.distributed` — joining the job, collectives, :class:`StopFlag`, dying with the agent
- :mod:`.checkpoint` — checkpoint files and RNG state
- :mod:`.trainer` — the rank-side :class:`Trainer` and :class:`PrecisionPlan`
- :mod:`.worker` — ``python -m silicon_sing.train`` (:func:`train`, :func:`main`)
- :mod:`.launch` — the notebook side (:func:`launch`, :func:`train_all`, preflight), on :mod:`silicon_sing.torchrun`
- :mod:`.report` — loss curves, tables and glued numbers of the chapter
- the loss itself: :mod:`silicon_sing.losses`

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

from ..data import TrainingExample
from ..losses import LMLoss, codebook_cross_entropy
from ..torchrun import failing_rank_tail
from .batches import apply_condition_dropout, augment, epoch_order, make_attributes, rank_positions, step_rngs
from .checkpoint import CHECKPOINT, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .distributed import (
                          PARENT_DIED,
                          Dist,
                          NoGPU,
                          StopFlag,
                          all_reduce,
                          barrier,
                          die_with_parent,
                          gather_objects,
                          init_distributed,
                          require_gpus_for,
)
from .launch import (
                          TrainingFailed,
                          TrainingInterrupted,
                          gpu_memory_bytes,
                          launch,
                          launch_job,
                          memory_estimate,
                          params_overrides,
                          preflight,
                          rendezvous_args,
                          torchrun_command,
                          train_all,
)
from .report import describe_export, loss_curves, read_log, results_table, summary
from .stage import (
                          LOCK_HELD_ENV,
                          TrainResult,
                          inputs_fingerprint,
                          is_up_to_date,
                          load_result,
                          read_done,
)
from .trainer import (
                          PROGRESS,
                          Batch,
                          PrecisionPlan,
                          Trainer,
                          TrainingDiverged,
                          enable_activation_checkpointing,
                          fused_attention_for_training,
                          master_weights_fp32,
)
from .worker import main, train

__all__ = [
    "TrainingExample", "TrainResult", "TrainingDiverged", "TrainingFailed", "TrainingInterrupted",
    "inputs_fingerprint", "is_up_to_date", "read_done", "epoch_order", "rank_positions", "step_rngs",
    "augment",
    "codebook_cross_entropy", "LMLoss", "make_attributes", "apply_condition_dropout", "train", "launch", "launch_job",
    "train_all", "load_result", "read_log", "loss_curves",
    "LOCK_HELD_ENV", "PROGRESS", "CHECKPOINT", "torchrun_command", "rendezvous_args", "params_overrides",
    "failing_rank_tail", "main", "describe_export", "results_table", "summary",
    "Dist", "NoGPU", "StopFlag", "PARENT_DIED", "require_gpus_for", "init_distributed", "all_reduce", "barrier",
    "gather_objects", "die_with_parent", "PrecisionPlan", "master_weights_fp32", "enable_activation_checkpointing",
    "fused_attention_for_training",
    "Batch", "Trainer", "rng_state", "set_rng_state", "save_checkpoint", "load_checkpoint",
    "memory_estimate", "gpu_memory_bytes", "preflight",
]
