"""Stage 03 — fine-tuning MusicGen with torchrun, one entry point from 2 CPU processes to 8 GPUs.

``torchrun --standalone --nproc_per_node=N -m silicon_sing.train --params params/smoke.yaml
--category acapella [--resume] [--overrides JSON]`` trains one category; :func:`launch` runs that
command from a notebook, streams rank 0's progress into a tqdm bar and raises with the failing
rank's stderr tail when any rank fails. Worked through in ``notebooks/03_finetune.ipynb``.

Recipe (audiocraft's musicgen solver as used by the paper, all from ``params.train``):
D-Adaptation Adam at lr 1 (``audiocraft.optim.DAdaptAdam``), ``epochs × updates_per_epoch`` steps,
a global batch split evenly over ranks, cosine schedule with linear warmup, gradient clipping,
fp16/bf16 autocast on GPU only. Loss: audiocraft's — cross-entropy per codebook over the valid
positions of the delay pattern (``lm.compute_predictions``), averaged over codebooks.

Conditioning: the caption of each segment (``description`` in its sidecar, written by stage 02,
``<uuid> <caption>``), augmented by :func:`silicon_sing.caption.augment_description` — audiocraft's
metadata merge and word dropout, never dropping the run UUID (audiocraft's own T5 word dropout is
switched off for that reason). Classifier-free-guidance dropout nulls every condition of a batch
with probability ``cfg_dropout``; the model's attribute dropout (musicgen-melody: the chroma,
p=0.5) applies as in audiocraft. Melody (paper profile): the chroma of the training segment itself,
from demucs vocals+other stems, as audiocraft's ``chroma2music`` trains it; cached with the tokens.

Reproducibility: the sample order and every dropout draw derive from ``(seed, epoch, step,
position in the global batch)``, not from process state, so a run gives the same batches for any
number of ranks and ``--resume`` after a kill continues bit-for-bit. Checkpoints
(``<run_dir>/checkpoints/<category>/checkpoint.pt``: model, optimizer, scheduler, sampler
position, RNG states) are written at the end of every epoch and when SIGTERM/SIGINT arrives. Only
rank 0 writes. Per-step JSONL log: ``checkpoints/<category>/log.jsonl``; final model:
``checkpoints/<category>/export/`` (``MusicGen.get_pretrained`` layout, see ``models.py``) with
``done.json``; a rerun with unchanged inputs finds it and does no work.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .data import TrainingExample, augment_description, load_run_uuid, load_training_examples
from .fsutil import (atomic_path, atomic_write_json, atomic_write_jsonl, file_sha1, read_json, read_jsonl,
                     run_lock, text_sha1)
from .params import CATEGORIES, Params, load_params

PROGRESS = "@@progress "  # marks rank 0's machine-readable progress lines on stdout
CHECKPOINT = "checkpoint.pt"


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps had a non-finite loss or gradient."""


class TrainingFailed(RuntimeError):
    """A torchrun job failed; the message carries the failing rank's stderr tail."""


class TrainingInterrupted(RuntimeError):
    """The job was stopped by a signal after writing a checkpoint; rerun with resume."""


# --------------------------------------------------------------------------- data


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
    valid_losses: list[float]
    samples_per_s: float
    tokens_per_s: float
    seconds: float  # summed step times
    token_cache_seconds: float = 0.0  # encoding pass before the first step (0 when the cache was warm)
    reused: bool = False  # True: inputs unchanged, nothing was run

    @property
    def final_valid_loss(self) -> float:
        """The last epoch's validation loss (nan without a validation split)."""
        return self.valid_losses[-1] if self.valid_losses else float("nan")


def category_dir(params: Params, category: str) -> Path:
    """``<run_dir>/checkpoints/<category>``: checkpoint, log, export of one category."""
    return params.run.category_dir(category)


def log_path(params: Params, category: str) -> Path:
    """The per-step JSONL log of one category."""
    return category_dir(params, category) / "log.jsonl"


LOCK_HELD_ENV = "SILICON_SING_LOCK_HELD"  # set by launch for its torchrun job: the lock file it holds for them


def lock_path(params: Params, category: str) -> Path:
    """The lock file that makes one job at a time train ``category`` in this run dir."""
    return category_dir(params, category) / ".lock"


def export_dir(params: Params, category: str) -> Path:
    """Where the fine-tuned model of one category is exported."""
    return params.run.export(category)


def inputs_fingerprint(params: Params, category: str) -> str:
    """Hash of everything that determines the fine-tuned model (not how many processes compute it)."""
    t = dataclasses.asdict(params.train)
    # how the work is spread and how much memory it takes, not what is learnt
    for k in ("nproc_per_node", "dist_backend", "token_cache", "activation_checkpointing", "fsdp", "nnodes",
              "rdzv_endpoint", "rdzv_id", "collective_timeout_minutes", "gpu_memory_gib"):
        t.pop(k)
    from .models import resolve_model_name

    model: Any = resolve_model_name(params)
    if Path(model).is_dir():  # an export: its weights, not its path, identify it
        model = {f: file_sha1(Path(model) / f) for f in ("state_dict.bin", "compression_state_dict.bin")}
    data = {}
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
    path = export_dir(params, category) / "done.json"
    return read_json(path) if path.exists() else None


def is_up_to_date(params: Params, category: str) -> bool:
    """Whether the export was produced from exactly these inputs (a rerun would do no work)."""
    done = read_done(params, category)
    return bool(done) and done.get("fingerprint") == inputs_fingerprint(params, category) and \
        (export_dir(params, category) / "state_dict.bin").exists()


# --------------------------------------------------------------------------- order and augmentation


def epoch_order(n_examples: int, n_samples: int, seed: int, epoch: int) -> list[int]:
    """Indices of the ``n_samples`` examples seen in ``epoch``: concatenated seeded permutations."""
    rng = np.random.default_rng([seed, epoch, 7])
    reps = math.ceil(n_samples / n_examples)
    return np.concatenate([rng.permutation(n_examples) for _ in range(reps)])[:n_samples].tolist()


def rank_positions(global_batch: int, rank: int, world_size: int) -> list[int]:
    """Positions of the global batch this rank computes (strided, like DistributedSampler)."""
    return list(range(rank, global_batch, world_size))


def step_rngs(seed: int, epoch: int, step: int,
              positions: Sequence[int]) -> tuple[np.random.Generator, list[np.random.Generator]]:
    """One generator for batch-level draws and one per batch position, independent of rank count."""
    batch_rng = np.random.default_rng([seed, epoch, step, 1 << 20])
    return batch_rng, [np.random.default_rng([seed, epoch, step, p]) for p in positions]


def augment(example: TrainingExample, uuid: str, rng: np.random.Generator, word_dropout: float) -> str:
    """The training caption: stage 02's augmentation, which never drops the UUID."""
    return augment_description(example.description, uuid, rng, word_dropout=word_dropout, info=example.info)


def make_attributes(lm: nn.Module, examples: Sequence[TrainingExample], descriptions: Sequence[str | None],
                    wavs: Sequence[torch.Tensor | None], sample_rate: int) -> list[Any]:
    """audiocraft ConditioningAttributes: the caption, and the segment itself for a chroma conditioner."""
    from audiocraft.modules.conditioners import ConditioningAttributes, WavCondition

    provider = lm.condition_provider
    out = []
    for ex, desc, wav in zip(examples, descriptions, wavs):
        text = {k: (desc if k == "description" else None) for k in provider.text_conditions}
        attr = ConditioningAttributes(text=text)
        for k in provider.wav_conditions:
            n = int(ex.info.get("duration", 0) * sample_rate) if wav is None else wav.shape[-1]
            # with the chroma cache the conditioner reads the chroma by path; the NaN wav only gives the length
            w = torch.full((1, 1, n), float("nan")) if wav is None else wav.view(1, 1, -1)
            attr.wav[k] = WavCondition(w, torch.tensor([n]), [sample_rate], [ex.path], [0.0])
        out.append(attr)
    return out


def apply_condition_dropout(lm: nn.Module, attributes: list[Any], rng: np.random.Generator,
                            cfg_dropout: float) -> list[Any]:
    """Classifier-free-guidance dropout, then the model's attribute dropout, both per batch as audiocraft."""
    from audiocraft.modules.conditioners import dropout_condition

    if rng.random() < cfg_dropout:
        for a in attributes:
            for kind in ("text", "wav"):
                for name in list(a.attributes[kind]):
                    dropout_condition(a, kind, name)
        return attributes
    for kind, probs in getattr(lm.att_dropout, "p", {}).items():
        if kind not in ("text", "wav"):
            continue
        for name, p in probs.items():
            if rng.random() < p:
                for a in attributes:
                    if name in a.attributes[kind]:
                        dropout_condition(a, kind, name)
    return attributes


# --------------------------------------------------------------------------- loss


def codebook_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                           mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """audiocraft's loss: mean over codebooks of the CE over valid positions; also per-codebook sums/counts."""
    K = targets.shape[1]
    sums, counts = [], []
    for k in range(K):
        m = mask[:, k].reshape(-1)
        lk = logits[:, k].reshape(-1, logits.shape[-1])[m].float()
        sums.append(F.cross_entropy(lk, targets[:, k].reshape(-1)[m], reduction="sum"))
        counts.append(m.sum())
    sums_t, counts_t = torch.stack(sums), torch.stack(counts).to(sums[0].dtype)
    return (sums_t / counts_t.clamp(min=1)).mean(), sums_t.detach(), counts_t


class LMLoss(nn.Module):
    """Conditions → delay-pattern predictions → per-codebook cross-entropy (the module DDP wraps)."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, codes: torch.Tensor, attributes: list[Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss for codes ``[B, K, T]`` given ConditioningAttributes (dropout already applied)."""
        provider = self.lm.condition_provider
        conditions = provider(provider.tokenize(attributes))
        out = self.lm.compute_predictions(codes, [], conditions)
        return codebook_cross_entropy(out.logits, codes, out.mask)


# --------------------------------------------------------------------------- distributed


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


def all_reduce(t: torch.Tensor, op: Any = None) -> torch.Tensor:
    """In-place all-reduce (sum by default) when distributed; identity otherwise."""
    if dist.is_initialized():
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    """Wait for every rank (no-op single-process)."""
    if dist.is_initialized():
        dist.barrier()


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
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle SIGTERM, SIGINT and :data:`PARENT_DIED` in this process."""
        for s in (signal.SIGTERM, signal.SIGINT, PARENT_DIED):
            self._previous[s] = signal.signal(s, self._handle)

    def uninstall(self) -> None:
        """Put the previous handlers back (the trainer may run inside a test or notebook process)."""
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        """First signal: request a checkpoint. Second SIGTERM/SIGINT: give up at once."""
        if self.signum and signum != PARENT_DIED:
            raise KeyboardInterrupt(f"second signal {signum}")
        self.signum = self.signum or signum


# --------------------------------------------------------------------------- precision and memory


@dataclass(frozen=True)
class PrecisionPlan:
    """How one step computes: the autocast dtype (None: fp32 throughout) and whether gradients are scaled."""

    autocast_dtype: torch.dtype | None
    scale_gradients: bool

    @classmethod
    def for_precision(cls, precision: str) -> PrecisionPlan:
        """audiocraft's solver choice: fp32 master weights; fp16 autocast with a GradScaler, or bf16 without."""
        plans = {"fp32": cls(None, False), "fp16": cls(torch.float16, True), "bf16": cls(torch.bfloat16, False)}
        if precision not in plans:
            raise ValueError(f"train.precision={precision!r}: use one of {sorted(plans)}")
        return plans[precision]


def master_weights_fp32(module: nn.Module) -> int:
    """Cast every floating-point parameter and buffer of ``module`` to fp32; return how many were not.

    audiocraft's ``loaders.load_lm_model`` builds the LM in fp16 on any non-CPU device. D-Adaptation's
    first updates (~1e-12) vanish in fp16 weights and GradScaler refuses fp16 gradients, so training
    keeps fp32 master weights and computes in half precision under autocast only.
    """
    cast = sum(1 for t in list(module.parameters()) + list(module.buffers())
               if t.is_floating_point() and t.dtype != torch.float32)
    if cast:
        module.float()
    return cast


def enable_activation_checkpointing(lm: nn.Module) -> None:
    """Recompute each transformer layer in the backward pass (audiocraft's ``checkpointing='torch'``)."""
    lm.transformer.checkpointing = "torch"


# --------------------------------------------------------------------------- checkpoints


def rng_state() -> dict[str, Any]:
    """This process's RNG states (torch, cuda, numpy, python), as tensors and plain values only."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
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


def gather_objects(obj: Any, world_size: int) -> list[Any]:
    """Every rank's ``obj`` (on every rank)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size
    dist.all_gather_object(out, obj)
    return out


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically write a training checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint onto the CPU: tensors and plain values only, never unpickled code."""
    from .fsutil import load_tensors_only

    return load_tensors_only(path, mmap=True)  # mmap: shared pages across ranks


# --------------------------------------------------------------------------- the training job


@dataclass
class Batch:
    """One rank's share of one step."""

    examples: list[TrainingExample]
    codes: torch.Tensor  # [B, K, T]
    wavs: list[torch.Tensor | None]


class Trainer:
    """State and steps of one category's fine-tuning inside one torchrun worker."""

    def __init__(self, params: Params, category: str, ctx: Dist):
        from .models import load_model

        self.params, self.category, self.ctx = params, category, ctx
        self.t = params.train
        if self.t.batch_size % ctx.world_size:
            raise ValueError(f"train.batch_size={self.t.batch_size} must be a multiple of the number of processes "
                             f"(train.nproc_per_node={ctx.world_size})")
        self.dir = category_dir(params, category)
        self.fingerprint = inputs_fingerprint(params, category)
        self.uuid = load_run_uuid(params.run_dir)
        self.train_set = load_training_examples(params.run_dir, category, "train")
        try:
            self.valid_set = load_training_examples(params.run_dir, category, "valid")
        except FileNotFoundError:
            self.valid_set = []
        if not self.train_set:
            raise ValueError(f"no training segments for category {category!r} in {params.run.curated}")
        self.model = load_model(params, device=str(ctx.device))
        self.lm, self.codec = self.model.lm, self.model.compression_model
        self.sample_rate = self.model.sample_rate
        for cond in self.lm.condition_provider.conditioners.values():
            if hasattr(cond, "word_dropout"):
                cond.word_dropout = 0.0  # ours (augment) keeps the UUID; audiocraft's would drop it
            if hasattr(cond, "match_len_on_eval"):
                # get_pretrained sets these for generation; chroma2music trains with the segment's own
                # chroma length and its padding mask
                cond.match_len_on_eval, cond._use_masking = False, True
        self.codes: dict[str, torch.Tensor] = {}
        self.plan = PrecisionPlan.for_precision(self.t.precision)
        self.cast_to_fp32 = master_weights_fp32(self.lm)
        if self.t.activation_checkpointing:
            enable_activation_checkpointing(self.lm)
        self.use_fsdp = bool(self.t.fsdp) and dist.is_initialized() and ctx.world_size > 1
        self.scaler: Any = None
        if self.plan.scale_gradients:
            if self.use_fsdp:
                from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

                self.scaler = ShardedGradScaler(ctx.device.type)
            else:
                self.scaler = torch.amp.GradScaler(ctx.device.type)

    # ----- token cache
    def prepare_tokens(self) -> None:
        """Encode every train/valid segment once (sharded over ranks), then load all codes."""
        from . import tokens as tk

        self.codec.eval()
        if not self.t.token_cache:
            return
        fp = tk.compression_fingerprint(self.codec)
        directory = tk.cache_dir(self.params.run.tokens, self.category, fp)
        paths = [e.path for e in self.train_set + self.valid_set]
        files = tk.build_token_cache(self.codec, paths, directory, self.ctx.rank, self.ctx.world_size,
                                     batch_size=max(1, self.t.batch_size // self.ctx.world_size))
        shas = [f.stem for f in files]
        chroma = directory / f"chroma-{text_sha1(json.dumps(sorted(zip(paths, shas))))[:12]}"
        if tk.enable_chroma_cache(self.lm, chroma):
            n = int(round(float(self.train_set[0].info.get("duration", 0)) * self.sample_rate))
            tk.build_chroma_cache(self.lm, paths, n, self.sample_rate, self.ctx.rank, self.ctx.world_size)
        barrier()
        self.codes = {p: tk.load_codes(f) for p, f in zip(paths, files)}

    def batch(self, examples: list[TrainingExample]) -> Batch:
        """Codes of ``examples`` (cached, or encoded now when the token cache is off), cropped to a common length."""
        from . import tokens as tk

        if self.t.token_cache:
            codes = [self.codes[e.path] for e in examples]
            wavs: list[torch.Tensor | None] = [None] * len(examples)
        else:
            audio = [tk.load_segment(e.path, self.sample_rate) for e in examples]
            n = min(a.shape[-1] for a in audio)
            wavs = [a[..., :n] for a in audio]
            codes = list(tk.encode_audio(self.codec, torch.stack(wavs)).cpu())
        t = min(c.shape[-1] for c in codes)
        return Batch(examples, torch.stack([c[:, :t] for c in codes]).to(self.ctx.device), wavs)

    # ----- optimisation
    def build_optim(self) -> None:
        """The DDP or FSDP wrapper, then the optimizer over what it trains, and the scheduler."""
        from audiocraft.optim import CosineLRScheduler

        from .optim import DAdaptAdam

        self.loss_module = LMLoss(self.lm)
        self.ddp: nn.Module = self.loss_module
        if self.use_fsdp:
            from audiocraft.modules.transformer import StreamingTransformerLayer
            from torch.distributed.fsdp import FullyShardedDataParallel, ShardingStrategy
            from torch.distributed.fsdp.wrap import ModuleWrapPolicy

            # one FSDP unit per transformer layer, as audiocraft's wrap_with_fsdp; weights, gradients and
            # optimizer states are sharded over the ranks (FULL_SHARD)
            self.ddp = FullyShardedDataParallel(
                self.loss_module, auto_wrap_policy=ModuleWrapPolicy({StreamingTransformerLayer}),
                sharding_strategy=ShardingStrategy.FULL_SHARD,
                device_id=torch.cuda.current_device() if self.ctx.device.type == "cuda" else self.ctx.device)
        elif dist.is_initialized() and self.ctx.world_size > 1:
            # device_ids=None: the condition attributes stay Python objects, codes are moved by us;
            # gradient_as_bucket_view: gradients live in DDP's buckets instead of beside them (one copy less)
            self.ddp = nn.parallel.DistributedDataParallel(self.loss_module, device_ids=None,
                                                           gradient_as_bucket_view=True)
        params = [p for p in self.ddp.parameters() if p.requires_grad]
        if self.t.optimizer == "dadam":
            self.opt: torch.optim.Optimizer = DAdaptAdam(params, sharded=self.use_fsdp, lr=self.t.lr,
                                                         betas=(0.9, 0.95), weight_decay=0.1)
        elif self.t.optimizer == "adamw":
            self.opt = torch.optim.AdamW(params, lr=self.t.lr, betas=(0.9, 0.95), weight_decay=0.1)
        else:
            raise ValueError(f"train.optimizer={self.t.optimizer!r}: use 'dadam' or 'adamw'")
        total = self.t.epochs * self.t.updates_per_epoch
        self.sched = CosineLRScheduler(self.opt, total_steps=total, warmup_steps=self.t.warmup_steps)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Half-precision compute over the fp32 master weights (``train.precision``), on any device."""
        if self.plan.autocast_dtype is not None:
            return torch.autocast(self.ctx.device.type, dtype=self.plan.autocast_dtype)
        return contextlib.nullcontext()

    def train_step(self, epoch: int, step: int, order: list[int]) -> dict[str, Any]:
        """One optimizer step on this rank's share of the global batch; returns the (reduced) stats."""
        B, ctx = self.t.batch_size, self.ctx
        global_idx = order[step * B:(step + 1) * B]
        positions = rank_positions(B, ctx.rank, ctx.world_size)
        batch_rng, rngs = step_rngs(self.params.seed, epoch, step, positions)
        examples = [self.train_set[global_idx[p]] for p in positions]
        t0 = time.perf_counter()
        b = self.batch(examples)
        descs = [augment(e, self.uuid, r, self.t.word_dropout) for e, r in zip(examples, rngs)]
        attrs = apply_condition_dropout(self.lm, make_attributes(self.lm, examples, descs, b.wavs, self.sample_rate),
                                        batch_rng, self.t.cfg_dropout)
        self.lm.train()
        self.opt.zero_grad(set_to_none=True)
        try:
            with self.autocast():
                loss, sums, counts = self.ddp(b.codes, attrs)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
        except torch.OutOfMemoryError as e:
            raise RuntimeError(
                f"CUDA out of memory on rank {ctx.rank} with {len(examples)} segments per GPU: lower "
                f"train.batch_size (now {B} global over {ctx.world_size} GPUs) or curate.segment_seconds") from e
        if self.scaler:
            self.scaler.unscale_(self.opt)
        clip = self.t.grad_clip if self.t.grad_clip > 0 else float("inf")
        if self.use_fsdp:  # the norm over every shard (a collective)
            grad_norm = float(self.ddp.clip_grad_norm_(clip))  # type: ignore[operator]
        else:
            params = [p for p in self.lm.parameters() if p.grad is not None]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        # one all-reduce: per-codebook CE sums and counts, the loss, and the stop request
        stats = torch.cat([sums.float().cpu(), counts.float().cpu(),
                           torch.tensor([float(loss.detach()), float(self.stop.signum > 0)])]).to(ctx.device)
        stats = all_reduce(stats)
        K = sums.shape[0]
        ce = (stats[:K] / stats[K:2 * K].clamp(min=1)).cpu()
        mean_loss = float(stats[2 * K] / ctx.world_size)
        finite = math.isfinite(mean_loss) and math.isfinite(grad_norm)
        # with fp16 loss scaling, an overflowing gradient is routine: the scaler lowers its scale
        overflow = self.scaler is not None and math.isfinite(mean_loss) and not finite
        lr = self.opt.param_groups[0]["lr"]
        if finite:
            (self.scaler.step(self.opt) if self.scaler else self.opt.step())
            self.bad_in_row = 0
        else:
            self.bad_in_row += 0 if overflow else 1
            self.skipped += 1
            self.opt.zero_grad(set_to_none=True)
        if self.scaler:
            self.scaler.update()
        with warnings.catch_warnings():
            # a skipped first step makes torch warn that the schedule advanced before the optimizer did:
            # intended, the schedule counts steps, taken or not
            warnings.simplefilter("ignore", UserWarning)
            self.sched.step()
        dt = time.perf_counter() - t0
        n_tokens = float(b.codes.numel() * ctx.world_size)
        d = self.opt.param_groups[0].get("d")
        return {"kind": "train", "epoch": epoch, "step": self.global_step + 1, "loss": mean_loss,
                "ce": [float(x) for x in ce], "lr": lr, "effective_lr": lr * d if d is not None else lr,
                "grad_norm": grad_norm, "skipped": not finite, "skipped_total": self.skipped,
                "skip_reason": None if finite else ("fp16 overflow" if overflow else "non-finite loss or gradient"),
                "samples_per_s": B / dt, "tokens_per_s": n_tokens / dt, "seconds": dt,
                "stop": bool(stats[2 * K + 1] > 0)}

    @torch.no_grad()
    def validate(self) -> dict[str, Any] | None:
        """Mean per-codebook CE over the whole validation split (full captions, no dropout)."""
        if not self.valid_set:
            return None
        self.lm.eval()
        local = [e for i, e in enumerate(self.valid_set) if i % self.ctx.world_size == self.ctx.rank]
        bs = max(1, self.t.batch_size // self.ctx.world_size)
        K = self.lm.num_codebooks
        sums, counts = torch.zeros(K), torch.zeros(K)
        chunks = [local[i:i + bs] for i in range(0, len(local), bs)]
        # FSDP gathers weights collectively: every rank runs as many forwards as the busiest one
        n_chunks = int(all_reduce(torch.tensor([len(chunks)], device=self.ctx.device), dist.ReduceOp.MAX)) \
            if self.use_fsdp else len(chunks)
        for i in range(n_chunks):
            exs = chunks[i] if i < len(chunks) else (chunks[-1] if chunks else self.valid_set[:1])
            b = self.batch(exs)
            attrs = make_attributes(self.lm, exs, [e.description for e in exs], b.wavs, self.sample_rate)
            with self.autocast():
                _, s, c = self.ddp(b.codes, attrs) if self.use_fsdp else self.loss_module(b.codes, attrs)
            if i < len(chunks):  # a padding forward counts nothing
                sums += s.float().cpu()
                counts += c.float().cpu()
        stats = all_reduce(torch.cat([sums, counts]).to(self.ctx.device)).cpu()
        ce = stats[:K] / stats[K:].clamp(min=1)
        self.lm.train()
        return {"kind": "valid", "loss": float(ce.mean()), "ce": [float(x) for x in ce]}

    # ----- state
    def _full_state_dict_type(self, rank0_only: bool = True) -> contextlib.AbstractContextManager[Any]:
        """FSDP: (un)shard to and from full, unsharded state dicts (saved on rank 0 only, in CPU memory on GPUs).

        Loading reads the full dict on every rank (each has the checkpoint file): ``rank0_only=False``.
        """
        from torch.distributed.fsdp import (FullOptimStateDictConfig, FullStateDictConfig,
                                            FullyShardedDataParallel, StateDictType)

        offload = self.ctx.device.type == "cuda"  # CPU ranks: already in CPU memory (and offload breaks there)
        return FullyShardedDataParallel.state_dict_type(
            self.ddp, StateDictType.FULL_STATE_DICT, FullStateDictConfig(offload_to_cpu=offload, rank0_only=rank0_only),
            FullOptimStateDictConfig(offload_to_cpu=offload, rank0_only=rank0_only))

    def full_lm_state(self) -> dict[str, torch.Tensor]:
        """The LM's whole state dict (collective under FSDP; complete on rank 0, empty elsewhere)."""
        if not self.use_fsdp:
            return self.lm.state_dict()
        with self._full_state_dict_type():
            state = self.ddp.state_dict()
        return {k.removeprefix("lm."): v for k, v in state.items()}

    def full_optimizer_state(self) -> dict[str, Any]:
        """The optimizer's state keyed like an unsharded model's (collective under FSDP)."""
        if not self.use_fsdp:
            return self.opt.state_dict()
        from torch.distributed.fsdp import FullyShardedDataParallel

        with self._full_state_dict_type():
            return FullyShardedDataParallel.optim_state_dict(self.ddp, self.opt)

    def state(self, epoch: int, step_in_epoch: int) -> dict[str, Any]:
        """Everything needed to continue exactly here (collective: every rank must call it)."""
        rngs = gather_objects(rng_state(), self.ctx.world_size)
        # under FSDP each rank's D-Adaptation running sum covers its own shard: keep every rank's
        local_groups = gather_objects([{k: v for k, v in g.items() if k != "params"} for g in self.opt.param_groups],
                                      self.ctx.world_size)
        return {"lm": self.full_lm_state(), "optimizer": self.full_optimizer_state(),
                "scheduler": self.sched.state_dict(), "param_groups": local_groups,
                "scaler": self.scaler.state_dict() if self.scaler else None, "epoch": epoch,
                "step_in_epoch": step_in_epoch, "global_step": self.global_step, "skipped": self.skipped,
                "bad_in_row": self.bad_in_row, "rng": rngs, "world_size": self.ctx.world_size,
                "fingerprint": self.fingerprint, "timings": self.timings}

    def checkpoint(self, epoch: int, step_in_epoch: int, reason: str) -> None:
        """Write the checkpoint (rank 0) and log it."""
        state = self.state(epoch, step_in_epoch)
        if self.ctx.is_main:
            save_checkpoint(self.dir / CHECKPOINT, state)
            self.log({"kind": "event", "event": "checkpoint", "reason": reason, "epoch": epoch,
                      "step": self.global_step})
        barrier()

    def restore(self, state: dict[str, Any]) -> tuple[int, int]:
        """Load a checkpoint's optimizer, schedule and counters (weights: :meth:`_run`, before wrapping)."""
        if self.use_fsdp:
            from torch.distributed.fsdp import FullyShardedDataParallel

            with self._full_state_dict_type(rank0_only=False):
                osd = FullyShardedDataParallel.optim_state_dict_to_load(self.ddp, self.opt, state["optimizer"])
            self.opt.load_state_dict(osd)
        else:
            self.opt.load_state_dict(state["optimizer"])
        groups = state.get("param_groups")
        if groups and state["world_size"] == self.ctx.world_size:
            for group, saved in zip(self.opt.param_groups, groups[self.ctx.rank]):
                group.update(saved)
        self.sched.load_state_dict(state["scheduler"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.global_step, self.skipped, self.bad_in_row = state["global_step"], state["skipped"], state["bad_in_row"]
        self.timings = state.get("timings", [])
        if state["world_size"] == self.ctx.world_size:
            set_rng_state(state["rng"][self.ctx.rank])
        return state["epoch"], state["step_in_epoch"]

    def read_checkpoint(self, path: Path) -> dict[str, Any] | None:
        """The checkpoint at ``path``, or None (with a warning naming it) when it cannot be read: start over."""
        try:
            return load_checkpoint(path)
        except Exception as e:  # truncated, corrupt, or not ours: the run restarts instead of failing on every resume
            if self.ctx.is_main:
                warnings.warn(f"{path} cannot be read ({type(e).__name__}: {str(e)[:200]}); training {self.category} "
                              f"starts over and will overwrite it", stacklevel=2)
            return None

    def log(self, row: dict[str, Any]) -> None:
        """Append one JSON line to the log (rank 0) and echo progress on stdout."""
        if not self.ctx.is_main:
            return
        row = {**row, "time": time.time()}
        with open(self.dir / "log.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
        total = self.t.epochs * self.t.updates_per_epoch
        print(PROGRESS + json.dumps({**{k: row.get(k) for k in ("kind", "event", "epoch", "step", "loss")},
                                     "total": total}), flush=True)

    def truncate_log(self, upto_step: int) -> None:
        """On resume, drop log rows written after the checkpoint (they will be recomputed)."""
        path = self.dir / "log.jsonl"
        if self.ctx.is_main and path.exists():
            rows = [r for r in read_jsonl(path) if r.get("kind") == "event" or r.get("step", 0) <= upto_step]
            atomic_write_jsonl(path, rows)

    # ----- the loop
    def run(self, resume: bool) -> int:
        """Train, validate, checkpoint and export; return the process exit code."""
        self.stop = StopFlag()
        self.stop.install()
        try:
            return self._run(resume)
        finally:
            self.stop.uninstall()

    def _run(self, resume: bool) -> int:
        """:meth:`run` without the signal handling."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.global_step, self.skipped, self.bad_in_row = 0, 0, 0
        self.timings: list[float] = []
        t0 = time.perf_counter()
        self.prepare_tokens()
        self.token_seconds = time.perf_counter() - t0
        epoch, start = 0, 0
        ckpt = self.dir / CHECKPOINT
        if self.ctx.is_main:
            for leftover in self.dir.glob(f".{ckpt.stem}.*{ckpt.suffix}"):  # a write killed before its rename
                leftover.unlink(missing_ok=True)
        state = self.read_checkpoint(ckpt) if resume and ckpt.exists() else None
        if state is not None and state.get("fingerprint") != self.fingerprint:
            state = None  # a checkpoint of other inputs: start over
        if state is not None:
            self.lm.load_state_dict(state["lm"])  # into the plain module, before FSDP shards it
        self.build_optim()
        if state is not None:
            epoch, start = self.restore(state)
            self.truncate_log(self.global_step)
            self.log({"kind": "event", "event": "resume", "epoch": epoch, "step": self.global_step})
        else:
            if self.ctx.is_main:
                atomic_write_jsonl(self.dir / "log.jsonl", [])
            self.log({"kind": "event", "event": "start", "epoch": 0, "step": 0, "world_size": self.ctx.world_size,
                      "fingerprint": self.fingerprint, "token_cache_seconds": self.token_seconds})
        B, U = self.t.batch_size, self.t.updates_per_epoch
        for ep in range(epoch, self.t.epochs):
            order = epoch_order(len(self.train_set), U * B, self.params.seed, ep)
            for step in range(start if ep == epoch else 0, U):
                row = self.train_step(ep, step, order)
                self.global_step += 1
                self.timings.append(row["seconds"])
                self.log({k: v for k, v in row.items() if k != "stop"})
                if self.bad_in_row >= self.t.max_bad_steps:
                    raise TrainingDiverged(
                        f"{self.bad_in_row} consecutive steps had a non-finite loss or gradient (step "
                        f"{self.global_step}); lower train.lr or set train.precision to fp32/bf16")
                if row["stop"]:
                    self.checkpoint(ep, step + 1, "signal")
                    self.log({"kind": "event", "event": "interrupted", "epoch": ep, "step": self.global_step})
                    return 128 + (self.stop.signum or signal.SIGTERM)
            valid = self.validate()
            if valid:
                self.log({**valid, "epoch": ep, "step": self.global_step})
            self.checkpoint(ep + 1, 0, "epoch")
        self.finish()
        return 0

    def finish(self) -> None:
        """Export the model and record what was done (rank 0)."""
        lm_state = self.full_lm_state()  # collective under FSDP
        if self.ctx.is_main:
            from .models import export_model

            out = export_dir(self.params, self.category)
            export_model(self.model, out, lm_state=lm_state)
            rows = read_jsonl(self.dir / "log.jsonl")
            train = [r for r in rows if r.get("kind") == "train" and not r.get("skipped")]
            valid = [r["loss"] for r in rows if r.get("kind") == "valid"]
            per_epoch = self.t.updates_per_epoch
            first = train[:per_epoch] or train
            last = train[-per_epoch:] or train
            steady = [r for r in train if r["step"] > 1] or train  # step 1 pays one-off warm-up costs
            done = {
                "category": self.category, "fingerprint": self.fingerprint, "steps": self.global_step,
                "skipped_steps": self.skipped, "world_size": self.ctx.world_size,
                "first_train_loss": float(np.mean([r["loss"] for r in first])) if first else float("nan"),
                "final_train_loss": float(np.mean([r["loss"] for r in last])) if last else float("nan"),
                "valid_losses": valid,
                "samples_per_s": float(np.median([r["samples_per_s"] for r in steady])) if steady else float("nan"),
                "tokens_per_s": float(np.median([r["tokens_per_s"] for r in steady])) if steady else float("nan"),
                "seconds": float(sum(self.timings)), "token_cache_seconds": self.token_seconds,
                "params": dataclasses.asdict(self.t), "device": self.ctx.device.type,
                "weights_cast_to_fp32": self.cast_to_fp32, "fsdp": self.use_fsdp,
                "conditioners": {k: type(v).__name__ for k, v in self.lm.condition_provider.conditioners.items()},
            }
            atomic_write_json(out / "done.json", done)
            self.log({"kind": "event", "event": "done", "epoch": self.t.epochs, "step": self.global_step})
            with contextlib.suppress(FileNotFoundError):
                # the export holds the weights; the optimizer state would only take disk (GBs for the paper model)
                (self.dir / CHECKPOINT).unlink()
        barrier()


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


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(signum: int = PARENT_DIED) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent (the torchrun agent) dies; return if set.

    A worker orphaned by a killed agent (even SIGKILL) would otherwise keep training and writing into
    the run dir beside a relaunched job. :class:`StopFlag` turns the signal into a checkpoint at the
    next step boundary; before it is installed the signal's default action ends the process.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before prctl took effect: nobody will send the signal
        os.kill(os.getpid(), signum)
    return True


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
    lock = lock_path(params, args.category)
    if int(os.environ.get("RANK", 0)) != 0 or os.environ.get(LOCK_HELD_ENV) == str(lock):
        return train(params, args.category, resume=args.resume)  # rank 0 alone writes; launch holds it
    with run_lock(lock, f"training {args.category}"):  # torchrun or python started by hand
        return train(params, args.category, resume=args.resume)


def main(argv: list[str] | None = None) -> int:
    """torchrun entry point; ``record`` puts a failing rank's traceback into torchrun's error report."""
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(_main)(argv)


# --------------------------------------------------------------------------- dispatcher (notebook side)


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


def torchrun_command(params: Params, category: str, nproc: int, log_dir: Path, resume: bool) -> list[str]:
    """The torchrun command line that trains one category (the same on every node of a multi-node job)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", *rendezvous_args(params), f"--nproc_per_node={nproc}",
           "--log-dir", str(log_dir), "--tee", "3", "-m", "silicon_sing.train", "--params", str(params.source),
           "--category", category, "--overrides", json.dumps(params_overrides(params))]
    return cmd + (["--resume"] if resume else [])


def memory_estimate(params: Params) -> Any:
    """Per-GPU memory of this run's fine-tuning (:mod:`silicon_sing.memory`), from the model's config only."""
    from . import memory
    from .models import model_config, resolve_model_name

    t = params.train
    world = max(1, t.nproc_per_node * t.nnodes)
    shape = memory.model_shape(model_config(resolve_model_name(params)))
    return memory.estimate(shape, world, max(1, t.batch_size // world), params.curate.segment_seconds,
                           t.precision, t.optimizer, fsdp=t.fsdp, activation_checkpointing=t.activation_checkpointing)


def gpu_memory_bytes(params: Params) -> float | None:
    """Memory per GPU for the fit check: ``train.gpu_memory_gib``, else the smallest visible GPU's, else None."""
    from .memory import GIB

    if params.train.gpu_memory_gib:
        return params.train.gpu_memory_gib * GIB
    if torch.cuda.is_available():
        return float(min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())))
    return None


def preflight(params: Params, progress: bool = True) -> None:
    """Checks before any process starts: GPUs for nccl, and whether the job fits the GPUs' memory."""
    from .memory import check_fits

    require_gpus_for(params.train.dist_backend)
    available = gpu_memory_bytes(params)
    if available is None:
        return  # CPU processes: nothing to check against
    est = memory_estimate(params)
    if progress:
        print(est.describe(), flush=True)
    check_fits(est, available, "train.gpu_memory_gib" if params.train.gpu_memory_gib else "the visible GPUs")


def failing_rank_tail(log_dir: Path, n_lines: int = 40) -> tuple[int | None, str]:
    """The first failing rank (by torchrun's error files) and the tail of its stderr."""
    errors = []
    for err in log_dir.glob("*/attempt_*/*/error.json"):
        try:
            msg = read_json(err)["message"]
            text = msg["message"] if isinstance(msg, dict) else str(msg)
            ts = int(msg["extraInfo"]["timestamp"]) if isinstance(msg, dict) else 0
        except (KeyError, ValueError, TypeError, json.JSONDecodeError):
            text, ts = "", 0
        # a rank that died because its peer vanished is a consequence, not the cause
        secondary = any(s in text for s in ("Connection closed by peer", "Connection reset", "Broken pipe"))
        errors.append((secondary, ts, int(err.parent.name), err.parent))
    if not errors:
        logs = sorted(log_dir.glob("*/attempt_*/*/stderr.log"), key=lambda p: p.stat().st_mtime)
        with_tb = [p for p in logs if "Traceback" in p.read_text(errors="replace")]
        if not with_tb:
            return None, ""
        errors = [(False, 0, int(with_tb[0].parent.name), with_tb[0].parent)]
    _, _, rank, d = sorted(errors)[0]
    stderr = d / "stderr.log"
    lines = stderr.read_text(errors="replace").splitlines() if stderr.exists() else []
    return rank, "\n".join(lines[-n_lines:])


def launch(params: Params, category: str, resume: bool = True, progress: bool = True,
           nproc: int | None = None, env: dict[str, str] | None = None) -> TrainResult:
    """Run the torchrun job for one category, with a progress bar; return its result or raise its error.

    ``resume=True`` continues an interrupted run of the same inputs (a checkpoint of other inputs
    is ignored). Unchanged inputs with a finished export return at once (``reused=True``).
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
    if is_up_to_date(params, category):
        if progress:
            print(f"{category}: inputs unchanged since the export in {export_dir(params, category)}; nothing to do",
                  flush=True)
        return load_result(params, category, reused=True)
    nproc = nproc or params.train.nproc_per_node
    preflight(params, progress)
    lock = lock_path(params, category)
    with run_lock(lock, f"training {category}"):  # held for the whole torchrun job
        return _launch_locked(params, category, resume, progress, nproc, {**(env or {}), LOCK_HELD_ENV: str(lock)})


def _launch_locked(params: Params, category: str, resume: bool, progress: bool, nproc: int,
                   env: dict[str, str]) -> TrainResult:
    """:func:`launch` once the category's lock is held."""
    cdir = category_dir(params, category)
    log_dir = cdir / "torchrun"
    shutil.rmtree(log_dir, ignore_errors=True)  # a previous job's error files must not be blamed
    cdir.mkdir(parents=True, exist_ok=True)
    run_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if not torch.cuda.is_available():
        # one compute thread per core per process: oversubscribed cores make every rank slower
        run_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    cmd = torchrun_command(params, category, nproc, log_dir, resume)
    if params.train.nnodes > 1 and progress:
        print(f"{category}: this node joins a {params.train.nnodes}-node job at {params.train.rdzv_endpoint}; "
              f"start the same command on every other node (README, 'several nodes'):\n  "
              + " ".join(shlex.quote(c) for c in cmd), flush=True)
    stderr_path = cdir / "torchrun.stderr"
    with open(stderr_path, "w", encoding="utf-8") as err_f:
        job_start = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err_f, text=True, env=run_env)
        try:
            _follow(proc, category, params.train.epochs * params.train.updates_per_epoch, progress)
            rc = proc.wait()
        except BaseException:
            # interrupted in the notebook: let the job checkpoint (SIGTERM), then re-raise
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=60)
            if proc.poll() is None:
                proc.kill()
            raise
    if rc == 0 and progress:
        r = load_result(params, category)
        print(f"{category}: {r.steps} steps on {r.world_size} process(es), train loss {r.first_train_loss:.3f} → "
              f"{r.final_train_loss:.3f}, {r.samples_per_s:.1f} samples/s", flush=True)
    if rc != 0:
        rows = read_jsonl(log_path(params, category)) if log_path(params, category).exists() else []
        # only an interruption of *this* job: a row left by an earlier one must not hide this job's error
        if rows and rows[-1].get("event") == "interrupted" and rows[-1].get("time", 0) >= job_start:
            raise TrainingInterrupted(f"training {category} was stopped at step {rows[-1].get('step')} after "
                                      f"writing a checkpoint; call launch(..., resume=True) to continue")
        rank, tail = failing_rank_tail(log_dir)
        if not tail:
            tail = "\n".join(stderr_path.read_text(errors="replace").splitlines()[-40:])
        where = f"rank {rank}" if rank is not None else "torchrun"
        raise TrainingFailed(f"training {category} failed (exit code {rc}) on {where}; its stderr ends with:\n"
                             f"{tail}\n(full logs: {log_dir}, {stderr_path})")
    return load_result(params, category)


def _follow(proc: subprocess.Popen, category: str, total: int, progress: bool) -> None:
    """Consume the job's stdout, moving a tqdm bar with rank 0's progress lines."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=f"fine-tune {category}", unit="step", disable=not progress)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            i = line.find(PROGRESS)
            if i < 0:
                continue
            try:
                msg = json.loads(line[i + len(PROGRESS):])
            except json.JSONDecodeError:
                continue
            if msg.get("kind") == "train":
                bar.n = int(msg["step"])
                bar.set_postfix(loss=f"{msg['loss']:.3f}", epoch=msg["epoch"])
                bar.refresh()
            elif msg.get("kind") == "event" and msg.get("event") == "up-to-date":
                bar.n = total
                bar.refresh()
    finally:
        bar.close()


def load_result(params: Params, category: str, reused: bool = False) -> TrainResult:
    """The :class:`TrainResult` recorded in a finished export."""
    done = read_done(params, category)
    if done is None:
        raise FileNotFoundError(f"{export_dir(params, category)}/done.json is missing: the training did not finish")
    names = {f.name for f in dataclasses.fields(TrainResult)}
    fields = {k: v for k, v in done.items() if k in names}
    return TrainResult(**{**fields, "export_dir": str(export_dir(params, category)),
                          "log_path": str(log_path(params, category)), "reused": reused})


def train_all(params: Params, categories: Sequence[str] = CATEGORIES, progress: bool = True) -> dict[str, TrainResult]:
    """Fine-tune every category in turn (each its own torchrun job)."""
    return {c: launch(params, c, progress=progress) for c in categories}


def read_log(params: Params, category: str) -> list[dict[str, Any]]:
    """Rows of one category's training log (empty if it never ran)."""
    path = log_path(params, category)
    return read_jsonl(path) if path.exists() else []


def loss_curves(params: Params, category: str) -> dict[str, list[tuple[int, float]]]:
    """``{'train': [(step, loss)], 'valid': [(step, loss)]}`` from the log (skipped steps left out)."""
    rows = read_log(params, category)
    return {
        "train": [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train" and not r.get("skipped")],
        "valid": [(r["step"], r["loss"]) for r in rows if r.get("kind") == "valid"],
    }


# --------------------------------------------------------------------------- notebook helpers


def describe_export(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Architecture of an exported model read from its files (memory-mapped: no weights are loaded)."""
    from omegaconf import OmegaConf

    from .fsutil import load_tensors_only

    directory = Path(directory)
    # an export is a YAML string and tensors: nothing else is unpickled (a file holding more is refused)
    lm_pkg = load_tensors_only(directory / "state_dict.bin", mmap=True)
    cfg = OmegaConf.create(lm_pkg["xp.cfg"])
    comp = load_tensors_only(directory / "compression_state_dict.bin", mmap=True)
    lm = cfg.transformer_lm
    out = {
        "lm_parameters": int(sum(t.numel() for t in lm_pkg["best_state"].values())),
        "dim": int(lm.dim), "num_layers": int(lm.num_layers), "num_heads": int(lm.num_heads),
        "n_q": int(lm.n_q), "card": int(lm.card), "pattern": str(cfg.codebooks_pattern.modeling),
        "conditioners": {str(k): str(v.model) for k, v in cfg.conditioners.items() if k != "args"},
        "fuser": {k: list(cfg.fuser[k]) for k in ("cross", "prepend", "sum") if cfg.fuser[k]},
        "window_seconds": float(cfg.dataset.segment_duration),
    }
    if "pretrained" in comp:
        out["codec"] = str(comp["pretrained"])
    else:
        ccfg = OmegaConf.create(comp["xp.cfg"])
        hop = int(np.prod(list(ccfg.seanet.ratios)))
        out["codec_parameters"] = int(sum(t.numel() for t in comp["best_state"].values()))
        out["codec"] = (f"an EnCodec-style codec (SEANet encoder and decoder, residual vector quantisation) "
                        f"of {out['codec_parameters']:,} parameters")
        out["frame_rate"] = float(ccfg.encodec.sample_rate) / hop
        out["sample_rate"] = int(ccfg.encodec.sample_rate)
    return out


def results_table(results: dict[str, TrainResult]) -> Any:
    """One row per category: losses, steps, throughput (a pandas DataFrame)."""
    import pandas as pd

    rows = [{"category": c, "steps": r.steps, "skipped": r.skipped_steps, "processes": r.world_size,
             "first-epoch train loss": r.first_train_loss, "last-epoch train loss": r.final_train_loss,
             "first valid loss": r.valid_losses[0] if r.valid_losses else float("nan"),
             "final valid loss": r.final_valid_loss, "samples/s": r.samples_per_s, "tokens/s": r.tokens_per_s,
             "step time (s)": r.seconds} for c, r in results.items()]
    return pd.DataFrame(rows).set_index("category")


def summary(params: Params, results: dict[str, TrainResult]) -> dict[str, str]:
    """Formatted key numbers of the chapter, for ``myst_nb.glue``."""
    t = params.train
    first = next(iter(results.values()))
    arch = describe_export(first.export_dir)
    out = {
        "profile": params.profile, "model": t.model, "nproc": str(t.nproc_per_node), "backend": t.dist_backend,
        "epochs": str(t.epochs), "updates_per_epoch": str(t.updates_per_epoch), "batch_size": str(t.batch_size),
        "per_rank_batch": str(t.batch_size // max(1, t.nproc_per_node)), "lr": f"{t.lr:g}",
        "optimizer": {"dadam": "D-Adaptation Adam", "adamw": "AdamW"}.get(t.optimizer, t.optimizer),
        "warmup_steps": str(t.warmup_steps), "cfg_dropout": f"{t.cfg_dropout:g}",
        "word_dropout": f"{t.word_dropout:g}", "grad_clip": f"{t.grad_clip:g}", "precision": t.precision,
        "total_steps": str(t.epochs * t.updates_per_epoch), "uuid": load_run_uuid(params.run_dir),
        "lm_parameters": f"{arch['lm_parameters']:,}", "lm_dim": str(arch["dim"]), "lm_layers": str(arch["num_layers"]),
        "lm_heads": str(arch["num_heads"]), "n_q": str(arch["n_q"]), "card": str(arch["card"]),
        "window_seconds": f"{arch['window_seconds']:g}", "codec": arch["codec"],
        "frame_rate": f"{arch.get('frame_rate', 50):g}",
        "codec_parameters": f"{arch.get('codec_parameters', 0):,}",
        "train_seconds": f"{sum(r.seconds for r in results.values()):.0f}",
        "segment_seconds": f"{params.curate.segment_seconds:g}",
    }
    for c, r in results.items():
        out[f"{c}_first_loss"] = f"{r.first_train_loss:.2f}"
        out[f"{c}_final_loss"] = f"{r.final_train_loss:.2f}"
        out[f"{c}_valid_first"] = f"{r.valid_losses[0]:.2f}" if r.valid_losses else "n/a"
        out[f"{c}_valid_final"] = f"{r.final_valid_loss:.2f}" if r.valid_losses else "n/a"
        out[f"{c}_samples_per_s"] = f"{r.samples_per_s:.1f}"
        out[f"{c}_skipped"] = str(r.skipped_steps)
    return out


def plot_loss_curves(params: Params, categories: Sequence[str] = CATEGORIES) -> Any:
    """Train (per step) and validation (per epoch) cross-entropy per category; returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(categories), figsize=(4.2 * len(categories), 3.4), sharey=True,
                             constrained_layout=True, squeeze=False)
    for ax, c in zip(axes[0], categories):
        curves = loss_curves(params, c)
        if curves["train"]:
            ax.plot(*zip(*curves["train"]), color="C0", lw=1.2, label="train (per step)")
        if curves["valid"]:
            ax.plot(*zip(*curves["valid"]), "o-", color="C3", label="valid (per epoch)")
        ax.set(title=c, xlabel="optimizer step")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("cross-entropy (nats, mean over codebooks)")
    axes[0][0].legend(fontsize=8)
    return fig


__all__ = [
    "TrainingExample", "TrainResult", "TrainingDiverged", "TrainingFailed", "TrainingInterrupted",
    "inputs_fingerprint", "is_up_to_date", "epoch_order", "rank_positions",
    "codebook_cross_entropy", "LMLoss", "make_attributes", "apply_condition_dropout", "train", "launch",
    "train_all", "load_result", "read_log", "loss_curves", "category_dir", "log_path", "export_dir",
    "torchrun_command", "failing_rank_tail", "main", "describe_export", "results_table", "summary",
    "plot_loss_curves",
]


if __name__ == "__main__":
    raise SystemExit(main())
