"""The nano language model: MusicGen's transformer LM on the codec's codes, its training and held-out loss.

Notebook: notebooks/03_finetune.ipynb (the pre-trained nano baseline that fine-tuning starts from)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from audiocraft.models import builders
from audiocraft.models.lm import LMModel
from audiocraft.modules.conditioners import ConditioningAttributes
from omegaconf import DictConfig
from tqdm.auto import tqdm

from .. import models as M
from ..losses import codebook_cross_entropy, conditioned_lm_loss
from .config import LMSpec


def build_lm(cfg: DictConfig, seed: int) -> LMModel:
    """A random-init nano LM (with the offline text conditioner) from ``cfg``."""
    M.register_offline_conditioners()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lm = builders.get_lm_model(copy.deepcopy(cfg))
    lm.cfg = cfg  # type: ignore[assignment]  # an ad-hoc attribute, as audiocraft's loaders set it
    return lm


# --------------------------------------------------------------------------- LM training and metrics


def _attributes(captions: Sequence[str | None]) -> list[ConditioningAttributes]:
    """audiocraft ConditioningAttributes holding each caption as the ``description``."""
    return [ConditioningAttributes(text={"description": c}) for c in captions]


def lm_loss(lm: LMModel, codes: torch.Tensor,
            captions: Sequence[str | None]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fine-tuning's loss (:func:`silicon_sing.losses.conditioned_lm_loss`) of codes ``[B, K, T]`` under the captions.

    Returns ``(loss, per-codebook CE sums [K], per-codebook counts [K])``.
    """
    return conditioned_lm_loss(lm, codes, _attributes(captions))


def code_windows(codes: Sequence[torch.Tensor], frames: int, rng: np.random.Generator,
                 n: int) -> tuple[list[int], torch.Tensor]:
    """``n`` random windows of ``frames`` frames: (clip indices, ``[n, K, frames]``)."""
    idx = [int(i) for i in rng.integers(len(codes), size=n)]
    out = []
    for i in idx:
        c = codes[i]
        start = int(rng.integers(0, max(1, c.shape[-1] - frames + 1)))
        out.append(c[:, start:start + frames])
    t = min(w.shape[-1] for w in out)
    return idx, torch.stack([w[:, :t] for w in out])


def train_lm(lm: LMModel, codes: Sequence[torch.Tensor], captions: Sequence[str], spec: LMSpec, frame_rate: float,
             seed: int, progress: bool = True, restart: bool = False) -> list[dict[str, float]]:
    """AdamW with warmup + cosine on random caption-conditioned windows, with CFG dropout.

    ``restart``: the warm restart (``spec.restart_steps`` steps, a fresh optimizer, other windows than the first
    stage drew) on an LM that has had its first ``spec.steps``."""
    rng = np.random.default_rng([seed, 3 if restart else 2])
    torch.manual_seed(seed)  # dropout, if a config enables it
    frames = int(round(spec.segment_seconds * frame_rate))
    steps = spec.restart_steps if restart else spec.steps
    decay = [p for n, p in lm.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in lm.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=spec.lr, betas=(0.9, 0.95))

    def schedule(s: int) -> float:
        """Linear warmup, then cosine to 0."""
        if s < spec.warmup_steps:
            return (s + 1) / spec.warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (s - spec.warmup_steps) / max(1, steps - spec.warmup_steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    history = []
    lm.train()
    lm.requires_grad_(True)
    bar = tqdm(range(steps), desc="lm restart" if restart else "lm", unit="step", disable=not progress)
    for step in bar:
        idx, x = code_windows(codes, frames, rng, spec.batch_size)
        caps: list[str | None] = [captions[i] for i in idx]
        if rng.random() < spec.cfg_dropout:  # classifier-free guidance: the whole batch unconditioned
            caps = [None] * len(caps)
        loss, _, _ = lm_loss(lm, x, caps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(lm.parameters(), spec.grad_clip))
        opt.step()
        sched.step()
        history.append({"step": step + 1 + (spec.steps if restart else 0), "loss": loss.item(), "grad_norm": grad_norm, "lr": sched.get_last_lr()[0]})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}")
    lm.eval()
    return history


def frame_activity(audio: np.ndarray, hop: int, range_db: float = 40.0) -> torch.Tensor:
    """Per codec frame: whether it sounds (RMS within ``range_db`` of the clip's loudest frame)."""
    n = len(audio) // hop
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-20)
    level = 20 * np.log10(rms)
    return torch.from_numpy(level > level.max() - range_db)


@torch.no_grad()
def heldout_lm_loss(lm: LMModel, codes: Sequence[torch.Tensor], captions: Sequence[str | None], frames: int,
                    activity: Sequence[torch.Tensor] | None = None) -> float:
    """Mean per-codebook cross-entropy (nats) over consecutive ``frames``-long windows of every clip.

    With ``activity`` (per clip, per frame, see :func:`frame_activity`) only sounding frames count:
    a voice's rests are digital silence, trivially predictable, and would flatter acapella.
    """
    lm.eval()
    K = lm.num_codebooks
    sums, counts = torch.zeros(K, dtype=torch.float64), torch.zeros(K, dtype=torch.float64)
    provider = lm.condition_provider
    for j, (c, cap) in enumerate(zip(codes, captions)):
        starts = list(range(0, c.shape[-1] - frames + 1, frames)) or [0]
        x = torch.stack([c[:, i:i + frames] for i in starts])
        out = lm.compute_predictions(x, [], provider(provider.tokenize(_attributes([cap] * len(starts)))))
        valid = out.mask.clone()
        if activity is not None:
            act = activity[j]
            valid &= torch.stack([act[i:i + x.shape[-1]] for i in starts])[:, None, :]
        _, s, n = codebook_cross_entropy(out.logits, x, valid)
        sums += s.double()
        counts += n.double()
    return float((sums / counts.clamp(min=1)).mean())


# how much of its own past the LM is left, in seconds (a beat is 0.43-0.75 s in the synthetic corpus, a bar 1.7-3 s)
CONTEXT_KEPT_SECONDS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


@torch.no_grad()
def context_use(lm: LMModel, codes: Sequence[torch.Tensor], captions: Sequence[str | None], frames: int,
                frame_rate: float, kept_seconds: Sequence[float] = CONTEXT_KEPT_SECONDS,
                scored_seconds: float = 0.8) -> dict[str, Any]:
    """How far back the LM looks: the cross-entropy it loses when its older context is another clip's.

    The first ``frames`` frames of every clip are scored, teacher-forced, on their last
    ``scored_seconds``; then everything before the last ``kept`` seconds of context is replaced by
    the next clip's codes (captions unchanged) and the same frames are scored again. An increase
    near 0 at ``kept`` means the LM uses nothing older than that: to keep a tempo it must use at
    least a beat, to keep a groove a bar.

    Args:
        lm: the language model (put in eval mode).
        codes: per clip ``[K, T]`` with ``T >= frames``; at least two clips (the swap needs another).
        captions: per clip.
        frames: window length in frames.
        frame_rate: codec frames per second.
    Returns:
        ``{"scored_seconds", "base_ce" (nats, mean over codebooks), "kept_seconds": [...],
        "ce_increase": [...]}``, the lengths that leave something to swap.
    """
    if len(codes) < 2:
        raise ValueError(f"context_use needs at least 2 clips to swap context between, got {len(codes)}")
    shortest = min(c.shape[-1] for c in codes)
    if shortest < frames:
        raise ValueError(f"every clip needs {frames} frames; the shortest has {shortest}")
    lm.eval()
    x = torch.stack([c[:, :frames] for c in codes])  # [B, K, frames]
    provider = lm.condition_provider
    conditions = provider(provider.tokenize(_attributes(captions)))
    scored = max(1, int(round(scored_seconds * frame_rate)))

    def scored_ce(y: torch.Tensor) -> float:
        out = lm.compute_predictions(y, [], conditions)
        mask = out.mask.clone()
        mask[..., :frames - scored] = False  # only the last scored_seconds count
        return float(codebook_cross_entropy(out.logits, y, mask)[0])

    base = scored_ce(x)
    other = x.roll(1, dims=0)
    kept, rise = [], []
    for k in kept_seconds:
        cut = frames - scored - int(round(k * frame_rate))
        if cut <= 0:
            continue
        y = x.clone()
        y[..., :cut] = other[..., :cut]
        kept.append(float(k))
        rise.append(scored_ce(y) - base)
    return {"scored_seconds": scored / frame_rate, "base_ce": base, "kept_seconds": kept, "ce_increase": rise}
