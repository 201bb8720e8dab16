"""The nano compression model: audiocraft's EnCodec at a tiny size, its training (no adversary), a wider decoder
trained on its frozen codes, and metrics.

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
from audiocraft.losses import SISNR, Balancer, MRSTFTLoss, MultiScaleMelSpectrogramLoss
from audiocraft.losses.specloss import MelSpectrogramWrapper
from audiocraft.models import builders
from audiocraft.models.encodec import CompressionModel, EncodecModel
from omegaconf import DictConfig
from tqdm.auto import tqdm

from ..models import codec_decode, codec_encode
from ..music import harmonic_lines, lines_in_place
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


# frequency bands of :func:`band_levels_lost` (Hz): the bass holds the energy, the harmonic lines of
# chords and voices sit in the mids, cymbals and breath in the highs
BANDS_HZ = {"bass": (0.0, 400.0), "mid": (400.0, 4000.0), "high": (4000.0, math.inf)}


def _log_mels(estimate: torch.Tensor, reference: torch.Tensor,
              sample_rate: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(estimate, reference) 80-band log-mel power in dB ``[B, 80, frames]`` (1024-point FFT, audiocraft's
    wrapper) and the centre frequency of each band in Hz ``[80]``."""
    mel = MelSpectrogramWrapper(n_fft=1024, hop_length=256, win_length=1024, n_mels=80, sample_rate=sample_rate,
                                log=False)
    est, ref = (10 * torch.log10(mel(v).clamp(min=1e-12)) for v in (estimate, reference))
    fb = mel.mel_transform.mel_scale.fb  # [n_fft // 2 + 1, n_mels]
    centres = fb.argmax(dim=0).to(torch.float64) * (sample_rate / 2) / (fb.shape[0] - 1)
    return est, ref, centres


def _mel_distances(est: torch.Tensor, ref: torch.Tensor, ranges_db: Sequence[float]) -> dict[float, torch.Tensor]:
    """Per item of dB spectrograms ``[B, M, T]``: mean |est - ref| with both floored ``range`` under
    the reference's loudest bin, one entry per range."""
    peak = ref.amax(dim=(1, 2), keepdim=True)
    return {r: (est.maximum(peak - r) - ref.maximum(peak - r)).abs().mean(dim=(1, 2)) for r in ranges_db}


def _band_levels_lost(est: torch.Tensor, ref: torch.Tensor, centres: torch.Tensor,
                      within_db: float = 30.0) -> dict[str, torch.Tensor]:
    """Per item and band of :data:`BANDS_HZ`: the mean of ref - est (dB) over the reference's bins that lie in
    the band and within ``within_db`` of its loudest bin (NaN when the band has none)."""
    peak = ref.amax(dim=(1, 2), keepdim=True)
    loud = ref > peak - within_db
    out = {}
    for name, (lo, hi) in BANDS_HZ.items():
        sel = loud & ((centres >= lo) & (centres < hi))[:, None]
        n = sel.sum(dim=(1, 2))
        lost = torch.where(sel, ref - est, torch.zeros(())).sum(dim=(1, 2))
        out[name] = torch.where(n > 0, lost / n.clamp(min=1), torch.full_like(lost, math.nan))
    return out


def band_levels_lost(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int,
                     within_db: float = 30.0) -> dict[str, torch.Tensor]:
    """Level the estimate loses per band of :data:`BANDS_HZ`, in dB per item of ``[B, 1, N]``.

    Only the reference's bins within ``within_db`` of its loudest bin count: what a listener hears of that
    band. Averaged figures (SI-SNR, mel distance) are ruled by the bass, which holds the energy and most loud
    bins; a codec that keeps the bass and attenuates the harmonic lines above it by 10 dB still scores well
    on them. Positive = quieter than the reference; NaN = no loud bin in that band.
    """
    est, ref, centres = _log_mels(estimate, reference, sample_rate)
    return _band_levels_lost(est, ref, centres, within_db)


def mel_distance(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int,
                 dynamic_range_db: float = 60.0) -> torch.Tensor:
    """Mean absolute log-mel difference in dB per item (80 mels, 1024-point FFT, audiocraft's wrapper).

    Both spectrograms are floored ``dynamic_range_db`` below the reference's loudest bin, so that
    differences in inaudible detail (a −90 dB hiss over digital silence) do not dominate the mean.
    """
    est, ref, _ = _log_mels(estimate, reference, sample_rate)
    return _mel_distances(est, ref, [dynamic_range_db])[dynamic_range_db]


@torch.no_grad()
def reconstruct(codec: CompressionModel, wav: torch.Tensor) -> torch.Tensor:
    """decode(encode(x)) of ``[B, 1, N]`` (cropped to whole frames; clip by clip on a CPU, where that is faster)."""
    codec.eval()
    codes, scale = codec_encode(codec, wav)
    return codec_decode(codec, codes, scale)[..., : wav.shape[-1]]


# mel distance figures by the floor they use: 60 dB (the first figure, kept comparable) and 40 dB
MEL_RANGES_DB = {"mel_distance_db": 60.0, "mel_distance_40db": 40.0}


@torch.no_grad()
def codec_scores(codec: CompressionModel, wavs: Sequence[np.ndarray], sample_rate: int,
                 chunk_seconds: float = 4.0) -> tuple[list[int], torch.Tensor, dict[str, torch.Tensor]]:
    """Per ``chunk_seconds`` chunk of ``wavs``: (index of its wav, SI-SNR dB, {figure: value}) of decode(encode(x)):
    one mel distance per floor of :data:`MEL_RANGES_DB`, ``band_lost_<band>_db`` per band of
    :data:`BANDS_HZ` (:func:`band_levels_lost`), the harmonic lines per frame
    (:func:`silicon_sing.music.harmonic_lines`) of the reconstruction (``harmonic_lines``) and of the
    chunk itself (``harmonic_lines_original``), and the share of the chunk's lines the reconstruction draws
    in the same place (``harmonic_lines_in_place``, :func:`silicon_sing.music.lines_in_place`; NaN without lines)."""
    n = min([int(chunk_seconds * sample_rate)] + [len(w) for w in wavs])
    owner = [j for j, w in enumerate(wavs) for _ in range(0, len(w) - n + 1, n)]
    x = torch.from_numpy(np.stack([w[i:i + n] for w in wavs for i in range(0, len(w) - n + 1, n)]))[:, None]
    snr: list[torch.Tensor] = []
    figures: dict[str, list[torch.Tensor]] = {}
    for b in torch.split(x, 8):
        y = reconstruct(codec, b)
        snr.append(si_snr_db(y, b))
        est, ref, centres = _log_mels(y, b, sample_rate)
        by_range = _mel_distances(est, ref, list(MEL_RANGES_DB.values()))
        row = {**{name: by_range[r] for name, r in MEL_RANGES_DB.items()},
               **{f"band_lost_{band}_db": v for band, v in _band_levels_lost(est, ref, centres).items()},
               **{name: torch.tensor([harmonic_lines(w[0].numpy(), sample_rate) for w in v])
                  for name, v in (("harmonic_lines", y), ("harmonic_lines_original", b))},
               "harmonic_lines_in_place": torch.tensor([lines_in_place(r[0].numpy(), e[0].numpy(), sample_rate)
                                                        for r, e in zip(b, y)], dtype=torch.float64)}
        for name, v in row.items():
            figures.setdefault(name, []).append(v)
    return owner, torch.cat(snr), {name: torch.cat(v) for name, v in figures.items()}


def codec_metrics(codec: CompressionModel, clips: Sequence[Clip], sample_rate: int,
                  chunk_seconds: float = 4.0) -> dict[str, Any]:
    """Mean SI-SNR, mel distances and band levels lost (dB) of decode(encode(x)) over chunks of ``clips``,
    overall and per category.

    ``mel_distance_db`` floors both spectrograms 60 dB under the loudest bin, ``mel_distance_40db`` 40 dB:
    the 60 dB figure is dominated by quiet bins (white noise 20 dB under the signal already scores
    ~7 dB on instrumentals), the 40 dB one by what a listener hears first. ``band_lost_mid_db`` is what
    neither sees: how much quieter the harmonic lines between 400 Hz and 4 kHz come back (chunks without
    loud bins in a band do not count towards it). ``harmonic_lines_kept`` is whether they come back at
    all: the harmonic lines per frame the reconstructions draw over those the originals draw (the
    evaluation chapter's measure of the continuations). ``harmonic_lines_in_place`` is where: the share of the
    originals' lines a reconstruction draws in the same place (a codec can draw as many lines, elsewhere).
    """
    owner, snr, scores = codec_scores(codec, [c.audio for c in clips], sample_rate, chunk_seconds)
    cats = [clips[j].category for j in owner]

    def figures(m: torch.Tensor) -> dict[str, float]:
        out = {"si_snr_db": float(snr[m].mean()), **{name: float(v[m].nanmean()) for name, v in scores.items()}}
        out["harmonic_lines_kept"] = out["harmonic_lines"] / max(out["harmonic_lines_original"], 1e-9)
        return out

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


def _crop_length(codec: CompressionModel, spec: CodecSpec, sample_rate: int) -> int:
    """Samples per training crop: whole frames of ``spec.crop_seconds`` (no padded tail)."""
    hop = int(round(sample_rate / codec.frame_rate))
    return max(1, round(spec.crop_seconds * codec.frame_rate)) * hop


def _losses(spec: CodecSpec, length: int, sample_rate: int
            ) -> tuple[dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]], Balancer]:
    """The compression losses ``spec.loss_weights`` names (audiocraft's solver names) and their Balancer."""
    msspec = MultiScaleMelSpectrogramLoss(sample_rate, range_start=6, range_end=11, n_mels=64, f_min=64,
                                          normalized=True, alphas=False, floor_level=spec.msspec_floor)
    mrstft = MRSTFTLoss()  # linear-frequency log magnitudes: every bin up to Nyquist counts, not mel-weighted
    # the solver's loss names (SISNR: one window per crop; its segment=None path asserts on a padded frame)
    criteria: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "l1": F.l1_loss, "msspec": msspec,
        "sisnr": SISNR(sample_rate, segment=(length + 0.5) / sample_rate, overlap=0.0),
        "mrstft": lambda y, x: mrstft(y, x).reshape(())}  # a [1] tensor; the Balancer sums scalars
    unknown = sorted(set(spec.loss_weights) - set(criteria))
    if unknown:
        raise ValueError(f"CodecSpec.loss_weights names unknown losses {unknown}; known: {sorted(criteria)}")
    balancer = Balancer(dict(spec.loss_weights), balance_grads=True, total_norm=1.0, ema_decay=0.999,
                        per_batch_item=True)
    return {name: criteria[name] for name in spec.loss_weights}, balancer


def _cosine(opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Cosine decay to 0 over ``steps``: a short run ends on small steps instead of oscillating around a minimum."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(1, steps))))


def train_codec(codec: CompressionModel, clips: Sequence[Clip], spec: CodecSpec, sample_rate: int, seed: int,
                progress: bool = True,
                on_step: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """audiocraft's compression recipe without the adversary: the balanced ``spec.loss_weights`` (L1, msspec,
    SI-SNR, optionally audiocraft's multi-resolution STFT loss ``mrstft``), plus the VQ penalty."""
    rng = np.random.default_rng([seed, 1])
    torch.manual_seed(seed)  # k-means init and dead-code replacement draw from torch's global generator
    length = _crop_length(codec, spec, sample_rate)
    criteria, balancer = _losses(spec, length, sample_rate)
    opt = torch.optim.Adam(codec.parameters(), lr=spec.lr, betas=spec.betas)
    sched = _cosine(opt, spec.steps)
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
        losses = {name: f(y, x) for name, f in criteria.items()}
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


def widen_decoder(codec: CompressionModel, cfg: DictConfig, seed: int) -> CompressionModel:
    """A compression model of ``cfg`` (a wider ``seanet.decoder``) with ``codec``'s encoder and codebooks and a
    random-init decoder: the same codes, to be decoded anew (:func:`train_decoder`)."""
    wide = build_codec(cfg, seed)
    keep = {k: v for k, v in codec.state_dict().items() if not k.startswith("decoder.")}
    missing, unexpected = wide.load_state_dict(keep, strict=False)
    if unexpected or any(not k.startswith("decoder.") for k in missing):
        raise ValueError(f"the codec and {cfg.seanet} differ beyond the decoder: missing {missing}, unexpected {unexpected}")
    return wide


def train_decoder(codec: CompressionModel, clips: Sequence[Clip], spec: CodecSpec, steps: int, sample_rate: int,
                  seed: int, progress: bool = True,
                  on_step: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """Train ``codec``'s decoder alone on its frozen codes, with the codec's losses (``spec``) over ``steps`` steps.

    The encoder and codebooks take no gradient and stay in eval mode (no dead-code replacement), so every code of
    every clip is what it was before: a model trained on the codes (the LM) needs no retraining.
    """
    rng = np.random.default_rng([seed, 4])
    torch.manual_seed(seed)
    length = _crop_length(codec, spec, sample_rate)
    criteria, balancer = _losses(spec, length, sample_rate)
    enc = cast(EncodecModel, codec)
    enc.requires_grad_(False)
    enc.decoder.requires_grad_(True)
    opt = torch.optim.Adam(enc.decoder.parameters(), lr=spec.lr, betas=spec.betas)
    sched = _cosine(opt, steps)
    history = []
    codec.eval()
    enc.decoder.train()
    bar = tqdm(range(steps), desc="decoder", unit="step", disable=not progress)
    for step in bar:
        x = random_crops(clips, spec.batch_size, length, rng)
        with torch.no_grad():
            codes, _ = codec.encode(x)
            latent = codec.decode_latent(codes)
        y = enc.decoder(latent)[..., : x.shape[-1]]
        losses = {name: f(y, x) for name, f in criteria.items()}
        opt.zero_grad(set_to_none=True)
        balancer.backward(losses, y)
        opt.step()
        sched.step()
        row = {"step": step + 1, **{k: float(v.detach()) for k, v in losses.items()}}
        history.append(row)
        bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k in losses})
        if on_step:
            on_step(step, row)
    codec.eval()
    codec.requires_grad_(True)  # as build_codec returns a model: trainable, in eval mode
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
