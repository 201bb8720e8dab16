"""The one LM loss (silicon_sing.losses): audiocraft's numbers, shared by fine-tuning and pre-training."""

from __future__ import annotations

import torch
from audiocraft.modules.conditioners import ConditioningAttributes

from silicon_sing import pretrain as P
from silicon_sing.losses import LMLoss, codebook_cross_entropy, conditioned_lm_loss
from silicon_sing.models import nano_musicgen


def test_loss_is_audiocrafts_per_codebook_cross_entropy() -> None:
    from audiocraft.solvers.musicgen import MusicGenSolver

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 7, 11, generator=g)
    targets = torch.randint(0, 11, (2, 4, 7), generator=g)
    mask = torch.rand(2, 4, 7, generator=g) > 0.3
    ours, sums, counts = codebook_cross_entropy(logits, targets, mask)
    theirs, per_k = MusicGenSolver._compute_cross_entropy(None, logits, targets, mask)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(sums / counts, torch.stack(per_k))


def test_pretraining_and_fine_tuning_compute_the_same_loss_bit_for_bit() -> None:
    lm = nano_musicgen(seed=0).lm.eval()
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(0, lm.card, (3, lm.num_codebooks, 20), generator=g)
    captions = ["calm dark ballad", None, "fast happy rock, 120 BPM"]
    attributes = [ConditioningAttributes(text={"description": c}) for c in captions]
    with torch.no_grad():
        pretrain = P.lm_loss(lm, codes, captions)
        shared = conditioned_lm_loss(lm, codes, [ConditioningAttributes(text={"description": c}) for c in captions])
        wrapped = LMLoss(lm)(codes, attributes)
    for a, b, c in zip(pretrain, shared, wrapped):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert torch.isfinite(pretrain[0])
