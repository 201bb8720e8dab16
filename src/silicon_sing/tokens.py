"""Token cache (stage 03): each segment is encoded by the compression model once, training reads codes.

Layout: ``<run_dir>/tokens/<category>/<model fingerprint>/<sha[:2]>/<sha>.pt`` where ``sha`` is the
SHA-1 of the segment file's bytes and the fingerprint hashes the compression model's weights and
geometry — a changed segment or a different codec never reuses stale codes. Each file holds
``{'codes': int16 [K, T], 'sha1', 'fingerprint', 'sample_rate', 'n_samples'}``. Encoding is sharded
over ranks (segment ``i`` goes to rank ``i % world_size``) and files are written atomically, so
ranks never collide and an interrupted pass resumes where it stopped. An existing file is reused only
if it loads and records this segment's SHA-1, this fingerprint and codes ``[K, T]``; otherwise it is
re-encoded with a warning naming it.

For the melody model (paper profile) the chroma of each segment is cached the same way, with
audiocraft's own ``EmbeddingCache`` on the ``ChromaStemConditioner`` (:func:`enable_chroma_cache`),
which is what audiocraft requires when training from cached tokens.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from audiocraft.models.encodec import CompressionModel
from audiocraft.models.lm import LMModel
from audiocraft.modules.conditioners import ChromaStemConditioner, WavCondition
from audiocraft.utils.cache import EmbeddingCache

from .audio import load_audio, resample, to_mono
from .fsutil import atomic_path, file_sha1
from .models import codec_encode, state_fingerprint


def compression_fingerprint(model: CompressionModel) -> str:
    """16 hex chars identifying a compression model's weights, rate, frame rate and codebooks."""
    h = hashlib.sha1(state_fingerprint(model).encode())
    h.update(f"{model.sample_rate}:{model.frame_rate}:{model.num_codebooks}:{model.cardinality}".encode())
    return h.hexdigest()[:16]


def cache_dir(tokens_root: str | os.PathLike[str], category: str, fingerprint: str) -> Path:
    """Directory of one category's codes for one compression model."""
    return Path(tokens_root) / category / fingerprint


def cache_file(directory: Path, sha1: str) -> Path:
    """Where the codes of the segment whose bytes hash to ``sha1`` live."""
    return directory / sha1[:2] / f"{sha1}.pt"


def load_segment(path: str | os.PathLike[str], sample_rate: int) -> torch.Tensor:
    """A segment as mono float32 ``[1, N]`` at ``sample_rate`` (curated segments already are)."""
    x, sr = load_audio(path)
    return torch.from_numpy(np.ascontiguousarray(resample(to_mono(x), sr, sample_rate)))[None]


@torch.no_grad()
def encode_audio(model: CompressionModel, wav: torch.Tensor) -> torch.Tensor:
    """Codes ``[B, K, T]`` (long) of audio ``[B, 1, N]`` at the model's rate (clip by clip on a CPU: faster there)."""
    codes, scale = codec_encode(model, wav)
    assert scale is None, "scaled compression models are not supported by MusicGen's LM"
    return codes.long()


def _group_by_length(items: list[tuple[int, torch.Tensor]]) -> list[list[tuple[int, torch.Tensor]]]:
    """Batches of equal-length clips (padding would change the codes of the shorter ones)."""
    groups: dict[int, list[tuple[int, torch.Tensor]]] = {}
    for i, w in items:
        groups.setdefault(w.shape[-1], []).append((i, w))
    return list(groups.values())


def build_token_cache(model: CompressionModel, paths: Sequence[str | os.PathLike[str]], directory: Path,
                      rank: int = 0, world_size: int = 1, batch_size: int = 8) -> list[Path]:
    """Encode this rank's share of ``paths`` whose codes are missing; return every segment's cache file."""
    fingerprint = directory.name
    shas = [file_sha1(p) for p in paths]
    files = [cache_file(directory, s) for s in shas]
    todo = [i for i in range(len(paths))
            if i % world_size == rank and not _cached_ok(files[i], shas[i], fingerprint, model.num_codebooks)]
    for start in range(0, len(todo), batch_size):
        chunk = [(i, load_segment(paths[i], model.sample_rate)) for i in todo[start:start + batch_size]]
        for group in _group_by_length(chunk):
            codes = encode_audio(model, torch.stack([w for _, w in group]))
            for (i, w), c in zip(group, codes):
                assert int(c.max()) < 2 ** 15, "codes must fit int16"
                pkg = {"codes": c.to(torch.int16).cpu(), "sha1": shas[i], "fingerprint": fingerprint,
                       "sample_rate": model.sample_rate, "n_samples": int(w.shape[-1])}
                with atomic_path(files[i]) as tmp:
                    torch.save(pkg, tmp)
    return files


def _cached_ok(file: Path, sha1: str, fingerprint: str, num_codebooks: int) -> bool:
    """Whether ``file`` holds codes ``[K, T]`` for the segment ``sha1``; a present but bad file is warned about."""
    if not file.exists():
        return False
    try:
        pkg = torch.load(file, map_location="cpu", weights_only=True)
        codes = pkg["codes"]
        if (pkg["sha1"] == sha1 and pkg["fingerprint"] == fingerprint and torch.is_tensor(codes)
                and codes.ndim == 2 and codes.shape[0] == num_codebooks and codes.shape[1] > 0):
            return True
        why = "it records another segment, codec or shape"
    except Exception as e:  # truncated, garbled or not a dict: any failure to load means re-encode
        why = f"it does not load ({type(e).__name__}: {e})"
    warnings.warn(f"token cache file {file} is bad ({why}); re-encoding its segment", stacklevel=3)
    return False


def load_codes(path: str | os.PathLike[str]) -> torch.Tensor:
    """Cached codes ``[K, T]`` as long."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["codes"].long()
    except Exception as e:
        raise RuntimeError(f"token cache file {path} does not load ({type(e).__name__}: {e}); delete it and rerun: "
                           f"the token cache re-encodes missing or bad files") from e


def enable_chroma_cache(lm: LMModel, directory: Path) -> bool:
    """Give the LM's chroma conditioner (if any) an on-disk EmbeddingCache; return whether it has one."""
    found = False
    for cond in lm.condition_provider.conditioners.values():
        if isinstance(cond, ChromaStemConditioner):
            cond.cache = EmbeddingCache(directory, cond.device, compute_embed_fn=cond._get_full_chroma_for_cache,
                                        extract_embed_fn=cond._extract_chroma_chunk)
            found = True
    return found


def build_chroma_cache(lm: LMModel, paths: Sequence[str | os.PathLike[str]], n_samples: int,
                       sample_rate: int, rank: int = 0, world_size: int = 1) -> int:
    """Compute this rank's share of missing chroma embeddings (demucs stems → chroma); return how many."""
    done = 0
    for cond in lm.condition_provider.conditioners.values():
        if not isinstance(cond, ChromaStemConditioner) or cond.cache is None:
            continue
        for i, p in enumerate(paths):
            if i % world_size != rank or cond.cache._get_cache_path(Path(p)).exists():
                continue
            x = WavCondition(torch.zeros(1, 1, n_samples), torch.tensor([n_samples]), [sample_rate], [str(p)], [0.0])
            cond.cache.get_embed_from_cache([Path(p)], x)
            done += 1
    return done


__all__ = ["compression_fingerprint", "cache_dir", "cache_file", "load_segment", "encode_audio",
           "build_token_cache", "load_codes", "enable_chroma_cache", "build_chroma_cache"]
