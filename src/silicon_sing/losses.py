"""The language-model loss of fine-tuning and of the nano pre-training, defined once.

audiocraft's MusicGen loss: cross-entropy per codebook over the valid positions of the delay
pattern (``lm.compute_predictions``), averaged over codebooks
(``audiocraft.solvers.musicgen.MusicGenSolver._compute_cross_entropy``). :class:`LMLoss` is the
module DDP/FSDP wraps in :mod:`silicon_sing.train`; :mod:`silicon_sing.pretrain` computes the same
numbers through :func:`conditioned_lm_loss`.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # audiocraft is heavy; the loss only hands the attributes to the LM's condition provider
    from audiocraft.models.lm import LMModel
    from audiocraft.modules.conditioners import ConditioningAttributes


def codebook_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                           mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """audiocraft's loss: mean over codebooks of the CE over valid positions; also per-codebook sums/counts.

    Args:
        logits: ``[B, K, T, card]`` predictions (NaN where the delay pattern has no target).
        targets: ``[B, K, T]`` integer codes.
        mask: ``[B, K, T]`` bool, True where a position counts.

    Returns:
        ``(loss, sums, counts)``: the scalar loss, and per-codebook CE sums ``[K]`` (detached) and
        valid-position counts ``[K]``.
    """
    K = targets.shape[1]
    sums, counts = [], []
    for k in range(K):
        m = mask[:, k].reshape(-1)
        lk = logits[:, k].reshape(-1, logits.shape[-1])[m].float()
        sums.append(F.cross_entropy(lk, targets[:, k].reshape(-1)[m], reduction="sum"))
        counts.append(m.sum())
    sums_t, counts_t = torch.stack(sums), torch.stack(counts).to(sums[0].dtype)
    return (sums_t / counts_t.clamp(min=1)).mean(), sums_t.detach(), counts_t


def conditioned_lm_loss(lm: LMModel, codes: torch.Tensor,
                        attributes: list[ConditioningAttributes]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Conditions → delay-pattern predictions → :func:`codebook_cross_entropy` of codes ``[B, K, T]``.

    ``attributes`` are audiocraft ConditioningAttributes, one per batch item (dropout already applied).
    Returns what :func:`codebook_cross_entropy` returns.
    """
    provider = lm.condition_provider
    conditions = provider(provider.tokenize(attributes))
    out = lm.compute_predictions(codes, [], conditions)
    return codebook_cross_entropy(out.logits, codes, out.mask)


class LMLoss(nn.Module):
    """Conditions → delay-pattern predictions → per-codebook cross-entropy (the module DDP wraps)."""

    def __init__(self, lm: LMModel):
        super().__init__()
        self.lm = lm

    def forward(self, codes: torch.Tensor,
                attributes: list[ConditioningAttributes]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss for codes ``[B, K, T]`` given ConditioningAttributes (dropout already applied)."""
        return conditioned_lm_loss(self.lm, codes, attributes)


__all__ = ["codebook_cross_entropy", "conditioned_lm_loss", "LMLoss"]
