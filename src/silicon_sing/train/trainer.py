"""The rank-side trainer: one category's fine-tuning steps inside one torchrun worker.

Recipe (audiocraft's musicgen solver as used by the paper, all from ``params.train``):
D-Adaptation Adam at lr 1 (:class:`silicon_sing.optim.DAdaptAdam`), ``epochs × updates_per_epoch``
steps, a global batch split evenly over ranks, cosine schedule with linear warmup, gradient
clipping, fp16/bf16 autocast over fp32 master weights on GPU only (:class:`PrecisionPlan`), DDP or
FSDP. Loss: :class:`silicon_sing.losses.LMLoss` — cross-entropy per codebook over the valid
positions of the delay pattern, averaged over codebooks.

Conditioning: the caption of each segment (``description`` in its sidecar, written by stage 02,
``<uuid> <caption>``), augmented per step (:mod:`.batches`); audiocraft's own T5 word dropout is
switched off because it could drop the run UUID. Melody (paper profile): the chroma of the training
segment itself, from demucs vocals+other stems, as audiocraft's ``chroma2music`` trains it; cached
with the tokens (:mod:`silicon_sing.tokens`).

Checkpoints (:mod:`.checkpoint`) are written at the end of every epoch and when SIGTERM/SIGINT
arrives; only rank 0 writes. Per-step JSONL log: ``checkpoints/<category>/log.jsonl``; rank 0 also
echoes each row on stdout after :data:`PROGRESS`, the line protocol :mod:`.launch` reads.

Kept as one module of ~500 lines: it is one class, :class:`Trainer`, whose methods share its state
(model, wrapper, optimizer, counters, stop flag); splitting it would scatter that state.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from audiocraft.models.lm import LMModel
from audiocraft.modules import transformer as act
from audiocraft.modules.transformer import StreamingTransformerLayer
from audiocraft.optim import CosineLRScheduler
from torch import nn
from torch.distributed.fsdp import (
    FullOptimStateDictConfig,
    FullStateDictConfig,
    FullyShardedDataParallel,
    ShardingStrategy,
    StateDictType,
)
from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler
from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from .. import models
from .. import tokens as tk
from ..data import TrainingExample, load_run_uuid, load_training_examples
from ..fsutil import atomic_write_json, atomic_write_jsonl, read_jsonl, text_sha1
from ..losses import LMLoss
from ..optim import DAdaptAdam
from ..params import Params
from .batches import apply_condition_dropout, augment, epoch_order, make_attributes, rank_positions, step_rngs
from .checkpoint import CHECKPOINT, load_checkpoint, remove_leftover_temps, rng_state, save_checkpoint, set_rng_state
from .distributed import Dist, StopFlag, all_reduce, barrier, gather_objects
from .stage import inputs_fingerprint

PROGRESS = "@@progress "  # marks rank 0's machine-readable progress lines on stdout


def emit_progress(row: dict[str, Any]) -> None:
    """Print one progress line (:data:`PROGRESS` + JSON) for the launcher (``launch.progress_message`` reads it)."""
    print(PROGRESS + json.dumps(row), flush=True)


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps had a non-finite loss or gradient."""


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


def fused_attention_for_training(lm: LMModel) -> int:
    """Let the LM's einsum attention layers run torch's fused ``scaled_dot_product_attention`` while training.

    The nano LMs are built with audiocraft's custom (einsum) attention because audiocraft 1.3.0 rotates
    rope at the wrong offset when its memory-efficient path *streams* (:mod:`silicon_sing.models.configs`).
    Training never streams, and there that path is the fused kernel audiocraft trains MusicGen with: the
    same attention, ~20 % less time per step on a CPU (``benchmarks/bench_train.py``). Only these
    in-memory modules change; an export's config still names the einsum attention for generation. The
    paper's MusicGen already uses the fused path. Returns how many layers were switched.
    """
    if act._efficient_attention_backend != "torch":  # xformers' kernel: not installed here, not what we checked
        return 0
    switched = 0
    for m in lm.modules():
        # the fused call takes is_causal only: a layer with a finite past_context would lose its window
        if (isinstance(m, act.StreamingMultiheadAttention) and m.custom and not m.memory_efficient
                and m.past_context is None):
            m.memory_efficient = True
            switched += 1
    return switched


def enable_activation_checkpointing(lm: LMModel) -> None:
    """Recompute each transformer layer in the backward pass (audiocraft's ``checkpointing='torch'``)."""
    lm.transformer.checkpointing = "torch"


# --------------------------------------------------------------------------- the training job


@dataclass
class Batch:
    """One rank's share of one step."""

    examples: list[TrainingExample]
    codes: torch.Tensor  # [B, K, T]
    wavs: list[torch.Tensor | None]


class Trainer:
    """State and steps of one category's fine-tuning inside one torchrun worker."""

    timings: list[float]  # seconds per step: reset by _run, restored by restore, saved by state

    def __init__(self, params: Params, category: str, ctx: Dist):
        self.params, self.category, self.ctx = params, category, ctx
        self.t = params.train
        if self.t.batch_size % ctx.world_size:
            raise ValueError(f"train.batch_size={self.t.batch_size} must be a multiple of the number of processes "
                             f"(train.nproc_per_node={ctx.world_size})")
        self.dir = params.run.category_dir(category)
        self.fingerprint = inputs_fingerprint(params, category)
        self.uuid = load_run_uuid(params.run_dir)
        self.train_set = load_training_examples(params.run_dir, category, "train")
        try:
            self.valid_set = load_training_examples(params.run_dir, category, "valid")
        except FileNotFoundError:
            self.valid_set = []
        if not self.train_set:
            raise ValueError(f"no training segments for category {category!r} in {params.run.curated}")
        self.model = models.load_model(params, device=str(ctx.device))
        self.lm, self.codec = self.model.lm, self.model.compression_model
        self.sample_rate = self.model.sample_rate
        cond: Any  # conditioners of several kinds: their attributes are probed with hasattr
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
        self.fused_attention = fused_attention_for_training(self.lm)
        if self.t.activation_checkpointing:
            enable_activation_checkpointing(self.lm)
        self.use_fsdp = bool(self.t.fsdp) and dist.is_initialized() and ctx.world_size > 1
        self.scaler: torch.amp.GradScaler | ShardedGradScaler | None = None
        if self.plan.scale_gradients:
            if self.use_fsdp:
                self.scaler = ShardedGradScaler(ctx.device.type)
            else:
                self.scaler = torch.amp.GradScaler(ctx.device.type)

    # ----- token cache
    def prepare_tokens(self) -> None:
        """Encode every train/valid segment once (sharded over ranks), then load all codes."""
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
        if self.t.token_cache:
            codes = [self.codes[e.path] for e in examples]
            wavs: list[torch.Tensor | None] = [None] * len(examples)
        else:
            audio = [tk.load_segment(e.path, self.sample_rate) for e in examples]
            n = min(a.shape[-1] for a in audio)
            cropped = [a[..., :n] for a in audio]
            wavs = list(cropped)
            codes = list(tk.encode_audio(self.codec, torch.stack(cropped)).cpu())
        t = min(c.shape[-1] for c in codes)
        return Batch(examples, torch.stack([c[:, :t] for c in codes]).to(self.ctx.device), wavs)

    # ----- optimisation
    def build_optim(self) -> None:
        """The DDP or FSDP wrapper, then the optimizer over what it trains, and the scheduler."""
        self.loss_module = LMLoss(self.lm)
        self.ddp: nn.Module = self.loss_module
        if self.use_fsdp:
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

    def out_of_memory(self, n_segments: int) -> RuntimeError:
        """The error that replaces a CUDA OOM: which knobs lower the memory a step needs."""
        return RuntimeError(
            f"CUDA out of memory on rank {self.ctx.rank} with {n_segments} segments per GPU: lower "
            f"train.batch_size (now {self.t.batch_size} global over {self.ctx.world_size} GPUs) or "
            f"curate.segment_seconds")

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
            raise self.out_of_memory(len(examples)) from e
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
            try:
                with self.autocast():
                    _, s, c = self.ddp(b.codes, attrs) if self.use_fsdp else self.loss_module(b.codes, attrs)
            except torch.OutOfMemoryError as e:
                raise self.out_of_memory(len(exs)) from e
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
        with open(self.params.run.train_log(self.category), "a", encoding="utf-8") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
        total = self.t.epochs * self.t.updates_per_epoch
        emit_progress({**{k: row.get(k) for k in ("kind", "event", "epoch", "step", "loss")}, "total": total,
                       "category": self.category})

    def truncate_log(self, upto_step: int) -> None:
        """On resume, drop log rows written after the checkpoint (they will be recomputed)."""
        path = self.params.run.train_log(self.category)
        if self.ctx.is_main and path.exists():
            rows = [r for r in read_jsonl(path) if r.get("kind") == "event" or r.get("step", 0) <= upto_step]
            atomic_write_jsonl(path, rows)

    # ----- the loop
    def run(self, resume: bool, stop: StopFlag | None = None) -> int:
        """Train, validate, checkpoint and export; return the process exit code.

        ``stop``: the job's installed :class:`StopFlag` (a job training several categories keeps one, so that a
        signal arriving while a category finishes is not forgotten); None installs one for this run only.
        """
        own = stop is None
        self.stop = stop if stop is not None else StopFlag()
        if own:
            self.stop.install()
        try:
            return self._run(resume)
        finally:
            if own:
                self.stop.uninstall()

    def _run(self, resume: bool) -> int:
        """:meth:`run` without the signal handling."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.global_step, self.skipped, self.bad_in_row = 0, 0, 0
        self.timings = []
        t0 = time.perf_counter()
        self.prepare_tokens()
        self.token_seconds = time.perf_counter() - t0
        epoch, start = 0, 0
        ckpt = self.dir / CHECKPOINT
        if self.ctx.is_main:
            remove_leftover_temps(ckpt)  # writes killed before their rename
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
                atomic_write_jsonl(self.params.run.train_log(self.category), [])
            self.log({"kind": "event", "event": "start", "epoch": 0, "step": 0, "world_size": self.ctx.world_size,
                      "fingerprint": self.fingerprint, "token_cache_seconds": self.token_seconds})
            # the starting model's loss on the same split: the baseline the fine-tune is measured against
            # (no randomness: eval mode, full captions; the steps' RNGs are seeded per step)
            before = self.validate()
            if before:
                self.log({**before, "epoch": 0, "step": 0})
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
            out = self.params.run.export(self.category)
            models.export_model(self.model, out, lm_state=lm_state)
            rows = read_jsonl(self.params.run.train_log(self.category))
            train = [r for r in rows if r.get("kind") == "train" and not r.get("skipped")]
            valid = [r["loss"] for r in rows if r.get("kind") == "valid" and r["step"] > 0]
            start = [r["loss"] for r in rows if r.get("kind") == "valid" and r["step"] == 0]
            per_epoch = self.t.updates_per_epoch
            first = train[:per_epoch] or train
            last = train[-per_epoch:] or train
            steady = [r for r in train if r["step"] > 1] or train  # step 1 pays one-off warm-up costs
            done = {
                "category": self.category, "fingerprint": self.fingerprint, "steps": self.global_step,
                "skipped_steps": self.skipped, "world_size": self.ctx.world_size,
                "first_train_loss": float(np.mean([r["loss"] for r in first])) if first else float("nan"),
                "final_train_loss": float(np.mean([r["loss"] for r in last])) if last else float("nan"),
                "valid_losses": valid, "start_valid_loss": start[-1] if start else float("nan"),
                "samples_per_s": float(np.median([r["samples_per_s"] for r in steady])) if steady else float("nan"),
                "tokens_per_s": float(np.median([r["tokens_per_s"] for r in steady])) if steady else float("nan"),
                "seconds": float(sum(self.timings)), "token_cache_seconds": self.token_seconds,
                "params": dataclasses.asdict(self.t), "device": self.ctx.device.type,
                "weights_cast_to_fp32": self.cast_to_fp32, "fsdp": self.use_fsdp,
                "conditioners": {k: type(v).__name__ for k, v in self.lm.condition_provider.conditioners.items()},
            }
            atomic_write_json(self.params.run.export_done(self.category), done)
            self.log({"kind": "event", "event": "done", "epoch": self.t.epochs, "step": self.global_step})
            with contextlib.suppress(FileNotFoundError):
                # the export holds the weights; the optimizer state would only take disk (GBs for the paper model)
                (self.dir / CHECKPOINT).unlink()
        barrier()


__all__ = ["PROGRESS", "emit_progress", "TrainingDiverged", "PrecisionPlan", "master_weights_fp32",
           "fused_attention_for_training", "enable_activation_checkpointing", "Batch", "Trainer"]
