"""The offline text conditioner of the nano models: hashed words and character n-grams, no download.

:class:`HashedTextConditioner` replaces T5 for ``nano`` and ``nano-random``; importing this module registers its
``hashed_text`` type with audiocraft's builders (:func:`register_offline_conditioners`), so that
``MusicGen.get_pretrained`` builds nano exports.

Notebook: notebooks/03_finetune.ipynb (loaded again for generation in notebooks/04_evaluate.ipynb)
"""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any, cast

import torch
from audiocraft.models import builders
from audiocraft.modules.conditioners import ConditioningProvider, TextConditioner
from audiocraft.modules.transformer import create_sin_embedding
from omegaconf import DictConfig, OmegaConf
from torch import nn

HASHED_TEXT = "hashed_text"  # the conditioner ``model`` key in an audiocraft config


# --------------------------------------------------------------------------- offline text conditioner

_WORD_RE = re.compile(r"[0-9a-z]+(?:[-'][0-9a-z]+)*")


def stable_bin(token: str, n_bins: int) -> int:
    """A process-independent hash of ``token`` into ``[1, n_bins)`` (0 is padding)."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "little") % (n_bins - 1)


def tokenize_caption(text: str | None, n_bins: int, ngram: int = 3, max_words: int = 64,
                     max_ngrams: int = 12) -> list[list[int]]:
    """Per word: its own bin followed by the bins of its character n-grams (fastText style)."""
    if not text:
        return []
    words = _WORD_RE.findall(text.lower())[:max_words]
    out = []
    for w in words:
        padded = f"<{w}>"
        grams = [padded[i:i + ngram] for i in range(max(1, len(padded) - ngram + 1))][:max_ngrams]
        out.append([stable_bin("w:" + w, n_bins)] + [stable_bin("g:" + g, n_bins) for g in grams])
    return out


class HashedTextConditioner(TextConditioner):
    """Offline caption conditioner: one vector per word = mean of hashed word + n-gram embeddings.

    Deterministic tokenisation (blake2b hashes, no vocabulary file), so a run UUID and the
    Essentia words of a caption each get their own embedding without any download.
    """

    def __init__(self, output_dim: int, n_bins: int = 4096, dim: int = 32, ngram: int = 3,
                 max_words: int = 64, max_ngrams: int = 12):
        super().__init__(dim, output_dim)
        self.n_bins, self.ngram, self.max_words, self.max_ngrams = n_bins, ngram, max_words, max_ngrams
        self.embed = nn.Embedding(n_bins, dim, padding_idx=0)

    def tokenize(self, x: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions → ids ``[B, W, 1 + max_ngrams]`` (0-padded) and word mask ``[B, W]``."""
        toks = [tokenize_caption(t, self.n_bins, self.ngram, self.max_words, self.max_ngrams) for t in x]
        n_words = max([len(t) for t in toks] + [1])  # at least one (masked) position, as audiocraft's tokenizers
        ids = torch.zeros(len(x), n_words, 1 + self.max_ngrams, dtype=torch.long)
        mask = torch.zeros(len(x), n_words, dtype=torch.int)
        for b, words in enumerate(toks):
            for w, word_ids in enumerate(words):
                ids[b, w, :len(word_ids)] = torch.tensor(word_ids)
                mask[b, w] = 1
        device = self.embed.weight.device
        return ids.to(device), mask.to(device)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed, average the word's pieces, add word position, project to the LM's dim."""
        ids, mask = inputs
        pieces = (ids > 0).unsqueeze(-1).to(self.embed.weight.dtype)
        words = (self.embed(ids) * pieces).sum(2) / pieces.sum(2).clamp(min=1.0)  # [B, W, dim]
        positions = torch.arange(words.shape[1], device=words.device).view(1, -1, 1)
        words = words + create_sin_embedding(positions, self.dim, dtype=words.dtype)
        embeds = self.output_proj(words) * mask.unsqueeze(-1)
        return embeds, mask


_ORIGINAL_GET_CONDITIONER_PROVIDER = builders.get_conditioner_provider


def _get_conditioner_provider(output_dim: int, cfg: DictConfig) -> ConditioningProvider:
    """audiocraft's builder, plus our ``hashed_text`` conditioner type."""
    conds = cfg.get("conditioners") or {}
    ours = {k: v for k, v in conds.items() if k != "args" and v.get("model") == HASHED_TEXT}
    if not ours:
        return _ORIGINAL_GET_CONDITIONER_PROVIDER(output_dim, cfg)
    rest = copy.deepcopy(cfg)
    OmegaConf.set_struct(rest, False)
    for k in ours:
        del rest.conditioners[k]
    provider = _ORIGINAL_GET_CONDITIONER_PROVIDER(output_dim, rest)
    for k, v in ours.items():
        # a mapping node (or {}) converts to a dict; to_container is typed for any node
        kwargs = cast("dict[str, Any]", OmegaConf.to_container(v.get(HASHED_TEXT) or {}, resolve=True))
        provider.conditioners[str(k)] = HashedTextConditioner(output_dim=output_dim, **kwargs).to(cfg.device)
    return provider


def register_offline_conditioners() -> None:
    """Teach audiocraft's builders (hence ``MusicGen.get_pretrained``) the ``hashed_text`` conditioner.

    Idempotent; done on import of this module. It wraps ``builders.get_conditioner_provider``,
    which ``get_lm_model`` looks up at call time, so audiocraft's loaders build our nano exports.
    """
    builders.get_conditioner_provider = _get_conditioner_provider


register_offline_conditioners()
