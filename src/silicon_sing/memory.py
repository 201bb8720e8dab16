"""Per-GPU memory of a fine-tuning job, estimated before launch (stage 03).

A 1.5 B-parameter MusicGen trained in fp32 master weights with D-Adaptation Adam does not fit
every GPU, and finding that out after the weights are loaded on eight of them wastes the time of
the people waiting for the node. :func:`estimate` adds up, per GPU, what the trainer in
:mod:`silicon_sing.train` keeps resident:

* **weights** — fp32 master copy of the LM (loaders hand fp16 on GPU; the trainer casts up);
* **gradients** — fp32, one per weight;
* **DDP buckets** — none: the trainer wraps with ``gradient_as_bucket_view=True``, so gradients live
  in the buckets (with FSDP there is no DDP);
* **optimizer** — D-Adaptation Adam keeps three fp32 tensors per weight (``s``, ``exp_avg``,
  ``exp_avg_sq``; AdamW two);
* **frozen models** — T5 encoder, EnCodec and demucs (chroma) in fp32;
* **activations** — per layer and token, what autograd keeps for the backward pass of one
  pre-norm transformer layer (listed in :func:`activation_bytes_per_token_layer`), times layers and
  the sequence length (audio frames plus prepended conditions), plus the output logits;
  activation checkpointing keeps only each layer's input and one layer's activations at a time;
* **FSDP** divides weights, gradients and optimizer states by the number of ranks and adds the
  one layer it gathers at a time.

Used by :func:`silicon_sing.train.launch` (printed, then checked against the GPUs) and by
``python -m silicon_sing.memory`` (the README's table for 8 × A40). Explained in
``notebooks/03_finetune.ipynb`` and the README ("Paper profile: memory").

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import argparse
import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from unittest import mock

if TYPE_CHECKING:
    from omegaconf import DictConfig

GIB = 1024 ** 3
OPTIMIZER_STATES = {"dadam": 3, "adamw": 2}  # fp32 tensors per trained weight
CUDA_CONTEXT_GIB = 0.6  # CUDA context + cuBLAS/NCCL workspaces, measured order of magnitude
ALLOCATOR_MARGIN = 0.10  # fragmentation of PyTorch's caching allocator
T5_ENCODER_PARAMETERS = {"t5-small": 35_330_816, "t5-base": 109_628_544, "t5-large": 334_939_648}
HTDEMUCS_PARAMETERS = 26_899_536  # demucs.htdemucs.HTDemucs with its default (released) sizes
T5_MAX_TOKENS = 64  # captions are ~30 words; prepended text conditions are at most this long


class DoesNotFit(RuntimeError):
    """The estimate exceeds the GPUs' memory; the message names the parameters to change."""


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know of a MusicGen: sizes, not weights."""

    lm_parameters: int
    num_layers: int
    dim: int
    hidden_scale: int
    n_q: int
    card: int
    frame_rate: float
    prepend_tokens_per_second: float  # prepended melody (chroma) frames per second of audio
    prepend_text_tokens: int  # prepended text tokens (T5), 0 with cross-attention text
    frozen_parameters: int  # T5 encoder + compression model + demucs

    def tokens(self, seconds: float) -> int:
        """Sequence length the transformer sees for ``seconds`` of audio."""
        return int(math.ceil(seconds * self.frame_rate + seconds * self.prepend_tokens_per_second)) + \
            self.prepend_text_tokens


@dataclass(frozen=True)
class MemoryEstimate:
    """Per-GPU bytes of one training job, by component."""

    shape: ModelShape
    world_size: int
    batch_per_gpu: int
    seconds: float
    precision: str
    optimizer: str
    fsdp: bool
    activation_checkpointing: bool
    weights: float
    gradients: float
    ddp_buckets: float
    optimizer_states: float
    frozen: float
    activations: float
    activations_per_layer_token: float
    logits: float
    overhead: float

    @property
    def total(self) -> float:
        """Everything, bytes."""
        return (self.weights + self.gradients + self.ddp_buckets + self.optimizer_states + self.frozen +
                self.activations + self.logits + self.overhead)

    def rows(self) -> list[tuple[str, float]]:
        """``(component, GiB)`` rows, the total last."""
        return [("weights (fp32 master)", self.weights / GIB), ("gradients (fp32)", self.gradients / GIB),
                ("DDP buckets", self.ddp_buckets / GIB),
                (f"optimizer states ({self.optimizer})", self.optimizer_states / GIB),
                ("frozen T5 + codec + demucs", self.frozen / GIB),
                (f"activations ({self.shape.num_layers} layers x {self.shape.tokens(self.seconds)} tokens"
                 f" x {self.batch_per_gpu})", self.activations / GIB),
                ("logits and loss", self.logits / GIB), ("CUDA context + allocator margin", self.overhead / GIB),
                ("total per GPU", self.total / GIB)]

    def describe(self) -> str:
        """A small table for the notebook and the console."""
        knobs = (f"fsdp={'on' if self.fsdp else 'off'}, activation_checkpointing="
                 f"{'on' if self.activation_checkpointing else 'off'}")
        head = (f"Estimated memory per GPU: {self.shape.lm_parameters / 1e9:.2f} B trained parameters, "
                f"{self.world_size} rank(s), {self.batch_per_gpu} x {self.seconds:g} s per rank, "
                f"{self.precision}, {knobs}")
        width = max(len(name) for name, _ in self.rows())
        return "\n".join([head] + [f"  {name:<{width}}  {gib:7.2f} GiB" for name, gib in self.rows()])


def activation_bytes_per_token_layer(dim: int, hidden_scale: int, precision: str) -> float:
    """Bytes autograd keeps per token for one pre-norm transformer layer (no checkpointing).

    fp32 residual stream at both layer norms (2 x dim), the normed inputs of the attention and
    feed-forward matmuls (2 x dim), q/k/v (3 x dim), the attention output (dim), and the
    feed-forward pre- and post-activation (2 x hidden_scale x dim). Under fp16/bf16 autocast all but
    the residual stream are half precision.
    """
    low = 4 if precision == "fp32" else 2
    return 2 * dim * 4 + (2 + 3 + 1 + 2 * hidden_scale) * dim * low


def model_shape(cfg: DictConfig) -> ModelShape:
    """Sizes of the MusicGen an audiocraft ``xp.cfg`` describes; the LM is built on the meta device (no memory)."""
    # lazy: audiocraft (and torch) are heavy; the estimate itself and the CLI's arithmetic need neither
    import torch
    from audiocraft.models import builders
    from audiocraft.modules.conditioners import ConditioningProvider

    cfg = copy.deepcopy(cfg)
    cfg.device = "meta"
    # conditioners would load T5/demucs weights: build the LM without them, add their projections below
    with mock.patch.object(builders, "get_conditioner_provider", lambda dim, c: ConditioningProvider({})):
        lm = builders.get_lm_model(cfg)
    with torch.device("meta"):
        codec = builders.get_compression_model(cfg) if "seanet" in cfg else None
    lm_cfg = cfg.transformer_lm
    dim, extra, frozen, chroma_rate, text_tokens = int(lm_cfg.dim), 0, 0, 0.0, 0
    prepend = set(cfg.fuser.get("prepend", []))
    for name, cond in cfg.conditioners.items():
        if name == "args":
            continue
        kind = str(cond.model)
        if kind == "t5":
            width = {"t5-small": 512, "t5-base": 768, "t5-large": 1024}.get(str(cond.t5.name), 768)
            extra += width * dim + dim
            frozen += T5_ENCODER_PARAMETERS.get(str(cond.t5.name), 0)
            text_tokens += T5_MAX_TOKENS if name in prepend else 0
        elif kind == "chroma_stem":
            extra += int(cond.chroma_stem.n_chroma) * dim + dim
            frozen += HTDEMUCS_PARAMETERS
            chroma_rate += float(cond.chroma_stem.sample_rate) / (2 ** int(cond.chroma_stem.radix2_exp) // 4)
        elif kind == "hashed_text":  # ours (smoke): hashed word/n-gram table + projection, trained
            n_bins, width = int(cond.hashed_text.get("n_bins", 4096)), int(cond.hashed_text.get("dim", 32))
            extra += n_bins * width + width * dim + dim
        else:
            raise ValueError(f"conditioner {name!r} of type {kind!r}: no parameter count for it in memory.py")
    hop = math.prod(int(r) for r in cfg.seanet.ratios) if codec is not None else 640
    return ModelShape(
        lm_parameters=sum(p.numel() for p in lm.parameters()) + extra, num_layers=int(lm_cfg.num_layers), dim=dim,
        hidden_scale=int(lm_cfg.hidden_scale), n_q=int(lm_cfg.n_q), card=int(lm_cfg.card),
        frame_rate=float(cfg.sample_rate) / hop, prepend_tokens_per_second=chroma_rate,
        prepend_text_tokens=text_tokens,
        frozen_parameters=frozen + (sum(p.numel() for p in codec.parameters()) if codec is not None else 0))


# facebook/musicgen-melody as `model_shape(models.melody_config())` counts it (tests/test_memory.py checks the two
# agree). A constant, so that the reproduce chapter and the CLI need neither torch nor audiocraft (~7 s to import)
MUSICGEN_MELODY = ModelShape(
    lm_parameters=1_385_625_600, num_layers=48, dim=1536, hidden_scale=4, n_q=4, card=2048, frame_rate=50.0,
    prepend_tokens_per_second=7.8125, prepend_text_tokens=T5_MAX_TOKENS, frozen_parameters=193_412_754)


def estimate(shape: ModelShape, world_size: int, batch_per_gpu: int, seconds: float, precision: str = "fp16",
             optimizer: str = "dadam", fsdp: bool = False, activation_checkpointing: bool = False,
             gpu: bool = True) -> MemoryEstimate:
    """Per-GPU memory of training ``shape`` on ``world_size`` ranks with ``batch_per_gpu`` segments of ``seconds``."""
    n = shape.lm_parameters
    shard = world_size if fsdp else 1
    layer_params = 12 * shape.dim ** 2  # what FSDP gathers at a time (one transformer layer, fp32)
    weights = 4 * n / shard + (4 * layer_params if fsdp else 0)
    gradients = 4 * n / shard + (4 * layer_params if fsdp else 0)
    states = OPTIMIZER_STATES.get(optimizer, 3) * 4 * n / shard
    per = activation_bytes_per_token_layer(shape.dim, shape.hidden_scale, precision)
    tokens = shape.tokens(seconds) * batch_per_gpu
    if activation_checkpointing:
        activations = shape.num_layers * tokens * shape.dim * 4 + tokens * per  # layer inputs + one layer
    else:
        activations = shape.num_layers * tokens * per
    low = 4 if precision == "fp32" else 2
    logits = tokens * shape.n_q * shape.card * (low + 4 + 4)  # logits, fp32 copy for the loss, its gradient
    frozen = 4 * shape.frozen_parameters
    static = weights + gradients + states + frozen + activations + logits
    overhead = (CUDA_CONTEXT_GIB * GIB + ALLOCATOR_MARGIN * static) if gpu else 0.0
    return MemoryEstimate(shape, world_size, batch_per_gpu, seconds, precision, optimizer, fsdp,
                          activation_checkpointing, weights, gradients, 0.0, states, frozen, activations, per,
                          logits, overhead)


def suggestions(est: MemoryEstimate, available: float) -> list[str]:
    """Parameter changes that bring ``est`` under ``available`` bytes, each with its estimate."""
    out = []
    for knob, change in (("train.activation_checkpointing: true", {"activation_checkpointing": True}),
                         ("train.fsdp: true", {"fsdp": True}),
                         ("train.fsdp: true and train.activation_checkpointing: true",
                          {"fsdp": True, "activation_checkpointing": True})):
        if all(getattr(est, k) == v for k, v in change.items()):
            continue
        alt = estimate(est.shape, est.world_size, est.batch_per_gpu, est.seconds, est.precision, est.optimizer,
                       **{"fsdp": est.fsdp, "activation_checkpointing": est.activation_checkpointing, **change})
        fits = "fits" if alt.total <= available else "still too large"
        out.append(f"{knob} -> {alt.total / GIB:.1f} GiB ({fits})")
    return out


def check_fits(est: MemoryEstimate, available: float, where: str = "the GPUs") -> None:
    """Raise :class:`DoesNotFit` naming the parameters to change when ``est`` exceeds ``available`` bytes."""
    if est.total <= available:
        return
    tips = "\n".join(f"  - {s}" for s in suggestions(est, available))
    raise DoesNotFit(f"{est.describe()}\nThis needs {est.total / GIB:.1f} GiB per GPU but {where} have "
                     f"{available / GIB:.1f} GiB. Set in your parameter file:\n{tips}\n"
                     f"or lower train.batch_size / curate.segment_seconds (or set train.gpu_memory_gib if the "
                     f"detected size is wrong).")


def table(shape: ModelShape, world_size: int, batch_per_gpu: int, seconds: float, precision: str = "fp16",
          optimizer: str = "dadam") -> list[dict[str, Any]]:
    """One row per knob combination, GiB per GPU (the README's and the reproduce chapter's table)."""
    rows = []
    for fsdp in (False, True):
        for ckpt in (False, True):
            est = estimate(shape, world_size, batch_per_gpu, seconds, precision, optimizer, fsdp, ckpt)
            rows.append({"fsdp": fsdp, "activation checkpointing": ckpt,
                         "weights + gradients": round((est.weights + est.gradients) / GIB, 1),
                         "optimizer": round(est.optimizer_states / GIB, 1),
                         "activations": round(est.activations / GIB, 1),
                         "total per GPU": round(est.total / GIB, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the per-GPU estimate of the paper recipe for each knob (``python -m silicon_sing.memory``)."""
    ap = argparse.ArgumentParser(prog="python -m silicon_sing.memory", description=main.__doc__)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--batch-per-gpu", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--precision", default="fp16", choices=["fp16", "bf16", "fp32"])
    ap.add_argument("--gpu-gib", type=float, default=44.5, help="usable memory per GPU (A40: 44.5 GiB)")
    args = ap.parse_args(argv)
    shape = MUSICGEN_MELODY
    for fsdp in (False, True):
        for ckpt in (False, True):
            est = estimate(shape, args.gpus, args.batch_per_gpu, args.seconds, args.precision, "dadam", fsdp, ckpt)
            verdict = "fits" if est.total <= args.gpu_gib * GIB else "does NOT fit"
            print(est.describe())
            print(f"  -> {verdict} in {args.gpu_gib:g} GiB\n")
    return 0


__all__ = ["GIB", "DoesNotFit", "ModelShape", "MUSICGEN_MELODY", "MemoryEstimate", "activation_bytes_per_token_layer", "model_shape",
           "estimate", "suggestions", "check_fits", "table", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
