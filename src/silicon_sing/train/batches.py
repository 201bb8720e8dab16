"""What each step of fine-tuning sees: sample order, per-rank share, captions and conditions.

The sample order and every dropout draw derive from ``(seed, epoch, step, position in the global
batch)``, not from process state, so a run gives the same batches for any number of ranks and
``--resume`` after a kill continues bit-for-bit. Captions are augmented by
:func:`silicon_sing.data.augment_description` (audiocraft's metadata merge and word dropout, never
dropping the run UUID); classifier-free-guidance dropout nulls every condition of a batch with
probability ``cfg_dropout``, then the model's own attribute dropout applies, as in audiocraft.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from audiocraft.models.lm import LMModel
from audiocraft.modules.conditioners import ConditioningAttributes, WavCondition, dropout_condition
from torch import nn

from ..data import TrainingExample, augment_description


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


def make_attributes(lm: LMModel, examples: Sequence[TrainingExample], descriptions: Sequence[str | None],
                    wavs: Sequence[torch.Tensor | None], sample_rate: int) -> list[ConditioningAttributes]:
    """audiocraft ConditioningAttributes: the caption, and the segment itself for a chroma conditioner."""
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


def apply_condition_dropout(lm: nn.Module, attributes: list[ConditioningAttributes], rng: np.random.Generator,
                            cfg_dropout: float) -> list[ConditioningAttributes]:
    """Classifier-free-guidance dropout, then the model's attribute dropout, both per batch as audiocraft."""
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


__all__ = ["epoch_order", "rank_positions", "step_rngs", "augment", "make_attributes", "apply_condition_dropout"]
