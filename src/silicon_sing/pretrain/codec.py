"""The nano compression model: audiocraft's EnCodec at a tiny size, its training (no adversary) and metrics.

Notebook: notebooks/03_finetune.ipynb (the pre-trained nano baseline that fine-tuning starts from)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from audiocraft.losses import SISNR, Balancer, MultiScaleMelSpectrogramLoss
from audiocraft.losses.specloss import MelSpectrogramWrapper
from audiocraft.models import builders
from audiocraft.models.encodec import CompressionModel, EncodecModel
from omegaconf import DictConfig
from tqdm.auto import tqdm

from ..tokens import encode_audio
from .config import CodecSpec
from .corpus import Clip


def build_codec(cfg: DictConfig, seed: int) -> CompressionModel:
    """A random-init compression model whose RVQ codebooks await k-means on the first training batch."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = builders.get_compression_model(copy.deepcopy(cfg))
    model.cfg = cfg  # type: ignore[assignment]  # export_model needs it (an ad-hoc attribute, as in audiocraft)
    return model


# --------------------------------------------------------------------------- codec training and metrics


def si_snr_db(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SNR in dB per item of ``[B, 1, N]`` (higher is better; 0 dB = as much error as signal)."""
    ref = reference - reference.mean(-1, keepdim=True)
    est = estimate - estimate.mean(-1, keepdim=True)
    proj = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps) * ref
    noise = est - proj
    return (10 * torch.log10(proj.pow(2).sum(-1) / (noise.pow(2).sum(-1) + eps) + eps)).flatten()


def mel_distances(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int,
                  ranges_db: Sequence[float]) -> dict[float, torch.Tensor]:
    """{range: :func:`mel_distance` at that range} per item, the spectrograms computed once for all ranges."""
    mel = MelSpectrogramWrapper(n_fft=1024, hop_length=256, win_length=1024, n_mels=80, sample_rate=sample_rate,
                                log=False)
    est, ref = (10 * torch.log10(mel(v).clamp(min=1e-12)) for v in (estimate, reference))
    peak = ref.amax(dim=(1, 2), keepdim=True)
    return {r: (est.maximum(peak - r) - ref.maximum(peak - r)).abs().mean(dim=(1, 2)) for r in ranges_db}


def mel_distance(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int,
                 dynamic_range_db: float = 60.0) -> torch.Tensor:
    """Mean absolute log-mel difference in dB per item (80 mels, 1024-point FFT, audiocraft's wrapper).

    Both spectrograms are floored ``dynamic_range_db`` below the reference's loudest bin, so that
    differences in inaudible detail (a −90 dB hiss over digital silence) do not dominate the mean.
    """
    return mel_distances(estimate, reference, sample_rate, [dynamic_range_db])[dynamic_range_db]


@torch.no_grad()
def reconstruct(codec: CompressionModel, wav: torch.Tensor) -> torch.Tensor:
    """decode(encode(x)) of ``[B, 1, N]`` (cropped to whole frames)."""
    codec.eval()
    codes, scale = codec.encode(wav)
    return codec.decode(codes, scale)[..., : wav.shape[-1]]


# mel distance figures by the floor they use: 60 dB (the first figure, kept comparable) and 40 dB
MEL_RANGES_DB = {"mel_distance_db": 60.0, "mel_distance_40db": 40.0}


@torch.no_grad()
def codec_scores(codec: CompressionModel, wavs: Sequence[np.ndarray], sample_rate: int,
                 chunk_seconds: float = 4.0) -> tuple[list[int], torch.Tensor, dict[str, torch.Tensor]]:
    """Per ``chunk_seconds`` chunk of ``wavs``: (index of its wav, SI-SNR dB, {figure: mel distance dB}) of
    decode(encode(x)), one mel distance per floor of :data:`MEL_RANGES_DB` under the loudest bin."""
    n = min([int(chunk_seconds * sample_rate)] + [len(w) for w in wavs])
    owner = [j for j, w in enumerate(wavs) for _ in range(0, len(w) - n + 1, n)]
    x = torch.from_numpy(np.stack([w[i:i + n] for w in wavs for i in range(0, len(w) - n + 1, n)]))[:, None]
    snr: list[torch.Tensor] = []
    mel: dict[str, list[torch.Tensor]] = {name: [] for name in MEL_RANGES_DB}
    for b in torch.split(x, 8):
        y = reconstruct(codec, b)
        snr.append(si_snr_db(y, b))
        by_range = mel_distances(y, b, sample_rate, list(MEL_RANGES_DB.values()))
        for name, r in MEL_RANGES_DB.items():
            mel[name].append(by_range[r])
    return owner, torch.cat(snr), {name: torch.cat(v) for name, v in mel.items()}


def codec_metrics(codec: CompressionModel, clips: Sequence[Clip], sample_rate: int,
                  chunk_seconds: float = 4.0) -> dict[str, Any]:
    """Mean SI-SNR and mel distance (dB) of decode(encode(x)) over chunks of ``clips``, overall and per category.

    ``mel_distance_db`` floors both spectrograms 60 dB under the loudest bin, ``mel_distance_40db`` 40 dB:
    the 60 dB figure is dominated by quiet bins (white noise 20 dB under the signal already scores
    ~7 dB on instrumentals), the 40 dB one by what a listener hears first.
    """
    owner, snr, mel = codec_scores(codec, [c.audio for c in clips], sample_rate, chunk_seconds)
    cats = [clips[j].category for j in owner]

    def figures(m: torch.Tensor) -> dict[str, float]:
        return {"si_snr_db": float(snr[m].mean()), **{name: float(v[m].mean()) for name, v in mel.items()}}

    out: dict[str, Any] = {**figures(torch.ones(len(owner), dtype=torch.bool)), "n_chunks": len(owner),
                           "chunk_seconds": chunk_seconds, "per_category": {}}
    for cat in dict.fromkeys(cats):
        out["per_category"][cat] = figures(torch.tensor([c == cat for c in cats]))
    return out


def random_crops(clips: Sequence[Clip], n: int, length: int, rng: np.random.Generator) -> torch.Tensor:
    """``[n, 1, length]`` crops from clips chosen uniformly (non-silent: the codec learns from sound)."""
    out: list[np.ndarray] = []
    while len(out) < n:
        a = clips[int(rng.integers(len(clips)))].audio
        start = int(rng.integers(0, max(1, len(a) - length)))
        crop = a[start:start + length]
        if len(crop) == length and float(np.sqrt(np.mean(crop ** 2))) > 1e-3:
            out.append(crop)
    return torch.from_numpy(np.stack(out))[:, None]


def train_codec(codec: CompressionModel, clips: Sequence[Clip], spec: CodecSpec, sample_rate: int, seed: int,
                progress: bool = True,
                on_step: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """audiocraft's compression recipe without the adversary: the balanced ``spec.loss_weights`` (L1, msspec,
    SI-SNR), plus the VQ penalty."""
    rng = np.random.default_rng([seed, 1])
    torch.manual_seed(seed)  # k-means init and dead-code replacement draw from torch's global generator
    hop = int(round(sample_rate / codec.frame_rate))
    length = max(1, round(spec.crop_seconds * codec.frame_rate)) * hop  # whole frames: no padded tail
    msspec = MultiScaleMelSpectrogramLoss(sample_rate, range_start=6, range_end=11, n_mels=64, f_min=64,
                                          normalized=True, alphas=False, floor_level=1e-5)
    # the solver's loss names (SISNR: one window per crop; its segment=None path asserts on a padded frame)
    criteria: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "l1": F.l1_loss, "msspec": msspec,
        "sisnr": SISNR(sample_rate, segment=(length + 0.5) / sample_rate, overlap=0.0)}
    balancer = Balancer(dict(spec.loss_weights), balance_grads=True, total_norm=1.0, ema_decay=0.999,
                        per_batch_item=True)
    opt = torch.optim.Adam(codec.parameters(), lr=spec.lr, betas=spec.betas)
    # cosine decay: a short run ends on small steps instead of oscillating around a minimum
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, spec.steps) / max(1, spec.steps))))
    history = []
    codec.train()
    with torch.no_grad():  # k-means on many frames: one small batch would duplicate codes
        n_init = max(1, int(spec.kmeans_init_seconds * sample_rate) // length)
        enc = cast(EncodecModel, codec)  # CompressionModel declares no encoder/quantizer; build_codec's is Encodec
        enc.quantizer(enc.encoder(random_crops(clips, n_init, length, rng)), codec.frame_rate)
    bar = tqdm(range(spec.steps), desc="codec", unit="step", disable=not progress)
    for step in bar:
        x = random_crops(clips, spec.batch_size, length, rng)
        q = codec(x)
        y = q.x[..., : x.shape[-1]]
        opt.zero_grad(set_to_none=True)
        penalty = q.penalty if q.penalty is not None else torch.zeros(())
        if penalty.requires_grad:  # the commitment loss only trains the encoder, as in audiocraft's solver
            penalty.backward(retain_graph=True)
        losses = {name: criteria[name](y, x) for name in spec.loss_weights}
        balancer.backward(losses, y)
        opt.step()
        sched.step()
        row = {"step": step + 1, **{k: float(v.detach()) for k, v in losses.items()},
               "penalty": float(penalty.detach())}
        history.append(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in losses})
        if on_step:
            on_step(step, row)
    codec.eval()
    return history


@torch.no_grad()
def encode_clips(codec: CompressionModel, clips: Sequence[Clip], progress: bool = True) -> list[torch.Tensor]:
    """Codes ``[K, T]`` of each whole clip (encoded in 4 s chunks to bound memory)."""
    codec.eval()
    out = []
    hop = int(codec.sample_rate / codec.frame_rate)
    chunk = hop * int(4 * codec.frame_rate)
    for c in tqdm(clips, desc="encoding", unit="clip", disable=not progress):
        n = len(c.audio) // hop * hop
        x = torch.from_numpy(c.audio[:n])[None, None]
        out.append(torch.cat([encode_audio(codec, x[..., i:i + chunk])[0] for i in range(0, n, chunk)], dim=-1))
    return out
