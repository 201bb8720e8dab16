"""Pre-training the nano MusicGen that the smoke profile ships (``assets/nano/``), rerunnable anywhere.

The smoke profile's "baseline" must be a *pre-trained* model for the book to show the paper's
phenomenon, not noise. This module trains, on 2 CPU cores in minutes, a miniature of MusicGen's
two stages and writes them in audiocraft's export layout (see :func:`silicon_sing.models.export_model`):

1. **Corpus** — :func:`synth_corpus` renders tracks of the three smoke artists with
   :mod:`silicon_sing.synth` under :data:`PRETRAIN_SEED`, a seed different from every profile's
   ``seed`` (smoke: 1234), so no evaluation track is ever heard in pre-training (same artist
   *styles* — tempo, key, progression pool, drum patterns — different compositions and renderings).
   32 kHz mono, loudness-normalised per track like stage 01.
2. **Compression model** — audiocraft's EnCodec (SEANet encoder/decoder + residual VQ, built by
   ``audiocraft.models.builders``) at a tiny size, trained with audiocraft's compression losses:
   time-domain L1 and multi-scale mel (``audiocraft.losses``) combined by audiocraft's loss
   ``Balancer`` with the solver's default weights (0.1 / 2.0), plus the VQ commitment penalty.
   The adversarial and feature-matching losses are *omitted* for the CPU budget, so the codec is
   blurrier than a real EnCodec. It sees all three stems equally: it is the shared tokenizer, and a
   codec that could not represent a voice would confound the LM's instrumental bias.
3. **Language model** — MusicGen's transformer LM (delay pattern, cross-attention on the caption
   through :class:`silicon_sing.models.HashedTextConditioner`) trained on the codes of a mostly
   instrumental corpus (:attr:`CorpusSpec.category_tracks`: every track's instrumental, a few
   tracks' acapella and full mix), mirroring the paper's premise that MusicGen "has been exposed to
   more instrumental music in its pre-training phase". Captions are short generic descriptions
   (:func:`pretrain_caption`, e.g. "instrumental hip-hop beat, 140 BPM") — never a run UUID.

Run: ``python scripts/pretrain_nano.py`` (see ``--help``); provenance (seed, corpus, steps, losses,
metrics, wall time, versions, file hashes) lands in ``provenance.json`` next to the checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import math
import platform
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from .losses import conditioned_lm_loss
from .fsutil import atomic_write_bytes, atomic_write_json, file_sha1, read_json

PRETRAIN_SEED = 20240607  # not the smoke (1234) or paper seed: pre-training never hears an evaluation track
HELDOUT_SEED = PRETRAIN_SEED + 1  # held-out audio for the reported metrics: neither pre-training nor evaluation
ASSETS_DIR = Path(__file__).resolve().parent / "assets" / "nano"
CHECKPOINT_FILES = ("state_dict.bin", "compression_state_dict.bin")
PROVENANCE = "provenance.json"
CATEGORIES = ("instrumental", "acapella", "full")


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class CorpusSpec:
    """Which synthetic tracks pre-training hears (all artists of :data:`silicon_sing.synth.ARTISTS`)."""

    seed: int = PRETRAIN_SEED
    tracks_per_artist: int = 12
    seconds: float = 24.0
    sample_rate: int = 32000
    target_lufs: float = -18.0  # the smoke profile's curate.target_lufs: same levels as the segments
    # tracks per artist whose stem of that category the LM trains on (mostly instrumental, as MusicGen)
    category_tracks: dict[str, int] = field(default_factory=lambda: {"instrumental": 12, "acapella": 1, "full": 2})


@dataclass(frozen=True)
class CodecSpec:
    """Size of the nano EnCodec and its training (audiocraft's compression solver, no adversary)."""

    n_filters: int = 8
    dimension: int = 64
    ratios: tuple[int, ...] = (8, 5, 4, 4)  # hop 640 at 32 kHz = 50 Hz, MusicGen's frame rate
    n_q: int = 4
    bins: int = 256
    lstm: int = 2
    steps: int = 2400
    batch_size: int = 8
    crop_seconds: float = 0.32
    lr: float = 3e-3  # higher than the solver's 3e-4: thousands of steps here, not hundreds of thousands
    betas: tuple[float, float] = (0.5, 0.9)  # audiocraft's compression solver
    # the solver's names; its weights are l1 0.1, msspec 2 (+ adversarial 4, feature 4). Without the
    # adversary and with few steps, l1 at 0.1 left the waveform unaligned (SI-SNR near -40 dB after
    # 1200 steps, measured); at 1.0 it reaches positive SI-SNR with the same mel error.
    loss_weights: dict[str, float] = field(default_factory=lambda: {"l1": 1.0, "msspec": 2.0})
    # audiocraft expires codes used < 2 times per batch of ~4800 frames for 1024 codes (~0.4 of the
    # mean use); our batches hold 128 frames for 256 codes (mean use 0.5), so the same rule is ~0.2
    dead_code_threshold: float = 0.1
    kmeans_init_seconds: float = 20.0  # k-means initialises the codebooks on this much audio, not one small batch


@dataclass(frozen=True)
class LMSpec:
    """Size of the nano LM and its pre-training."""

    dim: int = 192
    num_layers: int = 3
    num_heads: int = 6
    steps: int = 1000
    batch_size: int = 8
    segment_seconds: float = 6.0  # the smoke profile's curate.segment_seconds
    lr: float = 3e-3
    warmup_steps: int = 40
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    cfg_dropout: float = 0.3  # as fine-tuning: generation uses classifier-free guidance


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that decides the shipped nano checkpoints."""

    corpus: CorpusSpec = field(default_factory=CorpusSpec)
    codec: CodecSpec = field(default_factory=CodecSpec)
    lm: LMSpec = field(default_factory=LMSpec)
    heldout_seed: int = HELDOUT_SEED
    heldout_tracks_per_artist: int = 2
    heldout_seconds: float = 12.0
    seed: int = 0  # torch seed of initialisation and batch sampling
    threads: int = 2

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def tiny_config() -> PretrainConfig:
    """A few-step configuration that exercises every code path in seconds (tests, ``--tiny``)."""
    return PretrainConfig(
        corpus=CorpusSpec(tracks_per_artist=1, seconds=4.0,
                          category_tracks={"instrumental": 1, "acapella": 1, "full": 1}),
        codec=CodecSpec(n_filters=4, dimension=16, lstm=0, steps=3, batch_size=2, kmeans_init_seconds=2.0),
        lm=LMSpec(dim=32, num_layers=1, num_heads=2, steps=3, batch_size=2, segment_seconds=2.0, warmup_steps=1),
        heldout_tracks_per_artist=1, heldout_seconds=4.0,
    )


# --------------------------------------------------------------------------- corpus


@dataclass
class Clip:
    """One mono stem of one synthetic track, loudness-normalised, with its pre-training caption."""

    artist: str
    track_index: int
    category: str
    caption: str
    audio: np.ndarray  # float32 [N] at the corpus rate


_GENRE = {"ballad": ("piano ballad", "slow ballad", "ballad"),
          "trap": ("hip-hop beat", "trap beat", "hip-hop"),
          "dance": ("dance pop", "house track", "dance")}
_MOODS = {"ballad": ("calm", "sad", "dreamy", "gentle"),
          "trap": ("dark", "aggressive", "powerful", "gritty"),
          "dance": ("happy", "energetic", "bright", "uplifting")}
_REGISTER = {"soprano": "high", "tenor": "mid-range", "bass": "deep low"}


def pretrain_caption(style: Any, plan: Any, category: str, rng: np.random.Generator) -> str:
    """A short generic caption (genre, mood, tempo, key) like a tagged catalogue entry; no UUID."""
    genre = str(rng.choice(_GENRE[style.instrumental]))
    mood = str(rng.choice(_MOODS[style.instrumental]))
    tail = [f"{round(plan.tempo_bpm)} BPM", f"in {plan.key}"]
    rng.shuffle(tail)
    tail = tail[: int(rng.integers(1, 3))]
    voice = f"{_REGISTER.get(style.voice, '')} {'rap' if style.delivery == 'rap' else 'vocals'}".strip()
    body = {"instrumental": (f"instrumental {genre}", f"{mood} {genre} instrumental", f"{mood} {genre}, no vocals"),
            "acapella": (f"a cappella {voice}", f"{mood} {voice}, a cappella", f"isolated {voice}, {genre}"),
            "full": (f"{mood} {genre} with {voice}", f"{genre} song with {voice}", f"{mood} song, {voice}")}[category]
    return ", ".join([str(rng.choice(body)), *tail])


def _track_stems(style: Any, index: int, spec: CorpusSpec) -> tuple[Any, dict[str, np.ndarray]]:
    """Render one track's stems as mono at the corpus rate, gained like stage 01 (shared gain)."""
    from .audio import to_mono
    from .curate import shared_gain_db
    from .synth import plan_track, synth_track

    plan = plan_track(style, index, spec.seconds, spec.seed)
    stems = {k: to_mono(v).astype(np.float32) for k, v in synth_track(style, index, spec.seconds, spec.sample_rate,
                                                                       spec.seed).items()}
    gain_db, _ = shared_gain_db(stems, spec.sample_rate, spec.target_lufs)
    g = np.float32(10.0 ** (gain_db / 20.0))
    return plan, {k: v * g for k, v in stems.items()}


def synth_corpus(spec: CorpusSpec, categories: Sequence[str] = CATEGORIES, all_stems: bool = False,
                 progress: bool = True) -> list[Clip]:
    """Render the corpus in memory: per artist and track, the stems ``spec.category_tracks`` asks for.

    ``all_stems`` keeps every category of every track (the codec's corpus and held-out sets).
    """
    from tqdm.auto import tqdm

    from .synth import ARTISTS

    clips: list[Clip] = []
    jobs = [(a, i) for a in ARTISTS for i in range(spec.tracks_per_artist)]
    for style, i in tqdm(jobs, desc=f"synthesising (seed {spec.seed})", unit="track", disable=not progress):
        wanted = [c for c in categories if all_stems or i < spec.category_tracks.get(c, 0)]
        if not wanted:
            continue
        plan, stems = _track_stems(style, i, spec)
        rng = np.random.default_rng([spec.seed, zlib.crc32(style.name.encode()), i, 3])  # captions: own stream
        for c in wanted:
            clips.append(Clip(style.name, i, c, pretrain_caption(style, plan, c, rng), stems[c]))
    return clips


# --------------------------------------------------------------------------- model configs


def nano_pretrain_config(codec: CodecSpec, lm: LMSpec, max_duration: float = 30.0) -> DictConfig:
    """The shipped nano MusicGen's audiocraft config: ``models.nano_config`` with a 50 Hz codec and a larger LM."""
    from . import models as M

    cfg = M.nano_config(max_duration=max_duration, dim=lm.dim, num_layers=lm.num_layers, num_heads=lm.num_heads,
                        card=codec.bins, n_q=codec.n_q)
    OmegaConf.set_struct(cfg, False)
    enc = OmegaConf.create(M._encodec_cfg(n_filters=codec.n_filters, dimension=codec.dimension,
                                          ratios=list(codec.ratios), n_q=codec.n_q, bins=codec.bins))
    enc.seanet.lstm = codec.lstm
    enc.rvq.threshold_ema_dead_code = codec.dead_code_threshold
    for key in ("compression_model", "encodec", "seanet", "rvq"):
        cfg[key] = enc[key]
    return cfg


def build_codec(cfg: DictConfig, seed: int) -> Any:
    """A random-init compression model whose RVQ codebooks await k-means on the first training batch."""
    from audiocraft.models import builders

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = builders.get_compression_model(copy.deepcopy(cfg))
    model.cfg = cfg  # export_model needs it
    return model


def build_lm(cfg: DictConfig, seed: int) -> Any:
    """A random-init nano LM (with the offline text conditioner) from ``cfg``."""
    from audiocraft.models import builders

    from . import models as M

    M.register_offline_conditioners()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        lm = builders.get_lm_model(copy.deepcopy(cfg))
    lm.cfg = cfg
    return lm


# --------------------------------------------------------------------------- codec training and metrics


def si_snr_db(estimate: torch.Tensor, reference: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale-invariant SNR in dB per item of ``[B, 1, N]`` (higher is better; 0 dB = as much error as signal)."""
    ref = reference - reference.mean(-1, keepdim=True)
    est = estimate - estimate.mean(-1, keepdim=True)
    proj = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps) * ref
    noise = est - proj
    return (10 * torch.log10(proj.pow(2).sum(-1) / (noise.pow(2).sum(-1) + eps) + eps)).flatten()


def mel_distance(estimate: torch.Tensor, reference: torch.Tensor, sample_rate: int,
                 dynamic_range_db: float = 60.0) -> torch.Tensor:
    """Mean absolute log-mel difference in dB per item (80 mels, 1024-point FFT, audiocraft's wrapper).

    Both spectrograms are floored ``dynamic_range_db`` below the reference's loudest bin, so that
    differences in inaudible detail (a −90 dB hiss over digital silence) do not dominate the mean.
    """
    from audiocraft.losses.specloss import MelSpectrogramWrapper

    mel = MelSpectrogramWrapper(n_fft=1024, hop_length=256, win_length=1024, n_mels=80, sample_rate=sample_rate,
                                log=False)
    est, ref = (10 * torch.log10(mel(v).clamp(min=1e-12)) for v in (estimate, reference))
    floor = ref.amax(dim=(1, 2), keepdim=True) - dynamic_range_db
    return (est.maximum(floor) - ref.maximum(floor)).abs().mean(dim=(1, 2))


@torch.no_grad()
def reconstruct(codec: Any, wav: torch.Tensor) -> torch.Tensor:
    """decode(encode(x)) of ``[B, 1, N]`` (cropped to whole frames)."""
    codec.eval()
    codes, scale = codec.encode(wav)
    return codec.decode(codes, scale)[..., : wav.shape[-1]]


@torch.no_grad()
def codec_scores(codec: Any, wavs: Sequence[np.ndarray], sample_rate: int,
                 chunk_seconds: float = 4.0) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """Per ``chunk_seconds`` chunk of ``wavs``: (index of its wav, SI-SNR dB, mel distance dB) of decode(encode(x))."""
    n = min([int(chunk_seconds * sample_rate)] + [len(w) for w in wavs])
    owner = [j for j, w in enumerate(wavs) for _ in range(0, len(w) - n + 1, n)]
    x = torch.from_numpy(np.stack([w[i:i + n] for w in wavs for i in range(0, len(w) - n + 1, n)]))[:, None]
    snr, mel = [], []
    for b in torch.split(x, 8):
        y = reconstruct(codec, b)
        snr.append(si_snr_db(y, b))
        mel.append(mel_distance(y, b, sample_rate))
    return owner, torch.cat(snr), torch.cat(mel)


def codec_metrics(codec: Any, clips: Sequence[Clip], sample_rate: int, chunk_seconds: float = 4.0) -> dict[str, Any]:
    """Mean SI-SNR and mel distance (dB) of decode(encode(x)) over chunks of ``clips``, overall and per category."""
    owner, snr, mel = codec_scores(codec, [c.audio for c in clips], sample_rate, chunk_seconds)
    cats = [clips[j].category for j in owner]
    out: dict[str, Any] = {"si_snr_db": float(snr.mean()), "mel_distance_db": float(mel.mean()),
                           "n_chunks": len(owner), "chunk_seconds": chunk_seconds, "per_category": {}}
    for cat in dict.fromkeys(cats):
        m = torch.tensor([c == cat for c in cats])
        out["per_category"][cat] = {"si_snr_db": float(snr[m].mean()), "mel_distance_db": float(mel[m].mean())}
    return out


def random_crops(clips: Sequence[Clip], n: int, length: int, rng: np.random.Generator) -> torch.Tensor:
    """``[n, 1, length]`` crops from clips chosen uniformly (non-silent: the codec learns from sound)."""
    out = []
    while len(out) < n:
        a = clips[int(rng.integers(len(clips)))].audio
        start = int(rng.integers(0, max(1, len(a) - length)))
        crop = a[start:start + length]
        if len(crop) == length and float(np.sqrt(np.mean(crop ** 2))) > 1e-3:
            out.append(crop)
    return torch.from_numpy(np.stack(out))[:, None]


def train_codec(codec: Any, clips: Sequence[Clip], spec: CodecSpec, sample_rate: int, seed: int, progress: bool = True,
                on_step: Callable[[int, dict[str, float]], None] | None = None) -> list[dict[str, float]]:
    """audiocraft's compression recipe without the adversary: balanced L1 + msspec, plus the VQ penalty."""
    from audiocraft.losses import SISNR, Balancer, MultiScaleMelSpectrogramLoss
    from tqdm.auto import tqdm

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
        codec.quantizer(codec.encoder(random_crops(clips, n_init, length, rng)), codec.frame_rate)
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


# --------------------------------------------------------------------------- LM training and metrics


@torch.no_grad()
def encode_clips(codec: Any, clips: Sequence[Clip], progress: bool = True) -> list[torch.Tensor]:
    """Codes ``[K, T]`` of each whole clip (encoded in 4 s chunks to bound memory)."""
    from tqdm.auto import tqdm

    from .tokens import encode_audio

    codec.eval()
    out = []
    hop = int(codec.sample_rate / codec.frame_rate)
    chunk = hop * int(4 * codec.frame_rate)
    for c in tqdm(clips, desc="encoding", unit="clip", disable=not progress):
        n = len(c.audio) // hop * hop
        x = torch.from_numpy(c.audio[:n])[None, None]
        out.append(torch.cat([encode_audio(codec, x[..., i:i + chunk])[0] for i in range(0, n, chunk)], dim=-1))
    return out


def _attributes(captions: Sequence[str | None]) -> list[Any]:
    """audiocraft ConditioningAttributes holding each caption as the ``description``."""
    from audiocraft.modules.conditioners import ConditioningAttributes

    return [ConditioningAttributes(text={"description": c}) for c in captions]


def lm_loss(lm: Any, codes: torch.Tensor,
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


def train_lm(lm: Any, codes: Sequence[torch.Tensor], captions: Sequence[str], spec: LMSpec, frame_rate: float,
             seed: int, progress: bool = True) -> list[dict[str, float]]:
    """AdamW with warmup + cosine on random caption-conditioned windows, with CFG dropout."""
    from tqdm.auto import tqdm

    rng = np.random.default_rng([seed, 2])
    torch.manual_seed(seed)  # dropout, if a config enables it
    frames = int(round(spec.segment_seconds * frame_rate))
    decay = [p for n, p in lm.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in lm.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=spec.lr, betas=(0.9, 0.95))

    def schedule(s: int) -> float:
        """Linear warmup, then cosine to 0."""
        if s < spec.warmup_steps:
            return (s + 1) / spec.warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (s - spec.warmup_steps) / max(1, spec.steps - spec.warmup_steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    history = []
    lm.train()
    bar = tqdm(range(spec.steps), desc="lm", unit="step", disable=not progress)
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
        history.append({"step": step + 1, "loss": loss.item(), "grad_norm": grad_norm, "lr": sched.get_last_lr()[0]})
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
def heldout_lm_loss(lm: Any, codes: Sequence[torch.Tensor], captions: Sequence[str | None], frames: int,
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
        # audiocraft leaves NaN logits where the delay pattern has no target
        logits = torch.where(valid[..., None], out.logits.float(), torch.zeros((), dtype=torch.float32))
        ce = F.cross_entropy(logits.permute(0, 3, 1, 2), x, reduction="none")  # [B, K, T]
        if activity is not None:
            act = activity[j]
            valid &= torch.stack([act[i:i + x.shape[-1]] for i in starts])[:, None, :]
        sums += torch.where(valid, ce, 0.0).sum(dim=(0, 2)).double()
        counts += valid.sum(dim=(0, 2)).double()
    return float((sums / counts.clamp(min=1)).mean())


# --------------------------------------------------------------------------- shipping


def to_half_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with floating tensors stored as fp16 (loaders cast back to the model's fp32)."""
    return {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
            for k, v in module.state_dict().items()}


def write_checkpoints(codec: Any, lm: Any, out_dir: Path, half: bool = True) -> dict[str, str]:
    """Write audiocraft's ``state_dict.bin`` + ``compression_state_dict.bin`` atomically; return their sha1."""
    import audiocraft

    out_dir.mkdir(parents=True, exist_ok=True)
    base = {"version": audiocraft.__version__, "exported": True}
    state = to_half_state if half else (lambda m: {k: v.detach().cpu() for k, v in m.state_dict().items()})
    pkgs = {"compression_state_dict.bin": {**base, "best_state": state(codec), "xp.cfg": OmegaConf.to_yaml(codec.cfg)},
            "state_dict.bin": {**base, "best_state": state(lm), "xp.cfg": OmegaConf.to_yaml(lm.cfg)}}
    for name, pkg in pkgs.items():
        buf = io.BytesIO()  # not the temporary path: torch.save names its zip records after the file
        torch.save(pkg, buf)
        atomic_write_bytes(out_dir / name, buf.getvalue()).chmod(0o644)  # package data (mkstemp makes 0600)
    return {name: file_sha1(out_dir / name) for name in CHECKPOINT_FILES}


def load_shipped(directory: str | Path = ASSETS_DIR, device: str = "cpu") -> Any:
    """The shipped (or a freshly written) nano MusicGen, loaded offline (``models.load_model`` on the directory)."""
    from . import models as M

    directory = Path(directory)
    missing = [f for f in CHECKPOINT_FILES if not (directory / f).exists()]
    if missing:
        raise FileNotFoundError(f"{directory} lacks {', '.join(missing)}: run `python scripts/pretrain_nano.py`")
    return M.load_model(str(directory), device=device)


def random_init_like(directory: str | Path = ASSETS_DIR, seed: int = 0) -> Any:
    """A random-init MusicGen with exactly the shipped architecture (the comparison in tests and metrics)."""
    from . import models as M

    from .fsutil import load_tensors_only

    cfg = OmegaConf.create(load_tensors_only(Path(directory) / "state_dict.bin", mmap=True)["xp.cfg"])
    return M.build_from_config(cfg, seed=seed, name="nano-random")


def read_provenance(directory: str | Path = ASSETS_DIR) -> dict[str, Any]:
    """The shipped checkpoints' ``provenance.json``."""
    return dict(read_json(Path(directory) / PROVENANCE))


def verify_checkpoints(directory: str | Path = ASSETS_DIR) -> dict[str, bool]:
    """Whether each checkpoint file's sha1 matches its provenance record."""
    recorded = read_provenance(directory)["files"]
    return {name: file_sha1(Path(directory) / name) == recorded[name]["sha1"] for name in CHECKPOINT_FILES}


# --------------------------------------------------------------------------- the whole run


@contextlib.contextmanager
def _threads(n: int) -> Iterator[None]:
    """Use ``n`` intra-op threads inside the block."""
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _versions() -> dict[str, str]:
    """Library versions that decide the bytes of the checkpoints."""
    import audiocraft

    return {"python": platform.python_version(), "torch": torch.__version__, "audiocraft": audiocraft.__version__,
            "numpy": np.__version__}


def evaluate_models(codec: Any, lm: Any, random_codec: Any, random_lm: Any, heldout: Sequence[Clip],
                    sample_rate: int, frames: int) -> dict[str, Any]:
    """Held-out metrics: codec reconstruction and LM loss per category, trained vs random-init."""
    metrics: dict[str, Any] = {"codec": {}, "lm_loss": {}}
    for name, model in (("pretrained", codec), ("random_init", random_codec)):
        metrics["codec"][name] = codec_metrics(model, heldout, sample_rate)
    codes = encode_clips(codec, heldout, progress=False)
    hop = int(round(sample_rate / codec.frame_rate))
    active = [frame_activity(c.audio, hop) for c in heldout]
    metrics["lm_loss_sounding"] = {}
    for name, model in (("pretrained", lm), ("random_init", random_lm)):
        for key, act in (("lm_loss", None), ("lm_loss_sounding", active)):
            metrics[key][name] = {}
            for cat in CATEGORIES:
                sel = [j for j, c in enumerate(heldout) if c.category == cat]
                metrics[key][name][cat] = heldout_lm_loss(model, [codes[j] for j in sel],
                                                          [heldout[j].caption for j in sel], frames,
                                                          None if act is None else [act[j] for j in sel])
    metrics["lm_loss"]["uniform"] = metrics["lm_loss_sounding"]["uniform"] = math.log(lm.card)
    metrics["sounding_fraction"] = {cat: float(torch.cat([a for a, c in zip(active, heldout) if c.category == cat])
                                               .float().mean()) for cat in CATEGORIES}
    return metrics


def run_pretraining(config: PretrainConfig, out_dir: str | Path = ASSETS_DIR, progress: bool = True,
                    half: bool = True) -> dict[str, Any]:
    """Synthesise, train codec then LM, evaluate on held-out audio, write checkpoints + provenance."""
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    with _threads(config.threads), torch.random.fork_rng(devices=[]):  # seeds below stay inside
        t = time.perf_counter()
        corpus = synth_corpus(config.corpus, all_stems=True, progress=progress)
        held_spec = dataclasses.replace(config.corpus, seed=config.heldout_seed,
                                        tracks_per_artist=config.heldout_tracks_per_artist,
                                        seconds=config.heldout_seconds)
        heldout = synth_corpus(held_spec, all_stems=True, progress=progress)
        timings["synthesis_s"] = time.perf_counter() - t

        cfg = nano_pretrain_config(config.codec, config.lm)
        sr = config.corpus.sample_rate
        t = time.perf_counter()
        codec = build_codec(cfg, config.seed)
        codec_history = train_codec(codec, corpus, config.codec, sr, config.seed, progress=progress)
        timings["codec_s"] = time.perf_counter() - t

        # the LM hears every instrumental and only a few acapella/full stems (category_tracks)
        lm_clips = [c for c in corpus if c.track_index < config.corpus.category_tracks.get(c.category, 0)]
        t = time.perf_counter()
        codes = encode_clips(codec, lm_clips, progress=progress)
        timings["encoding_s"] = time.perf_counter() - t
        t = time.perf_counter()
        lm = build_lm(cfg, config.seed)
        lm_history = train_lm(lm, codes, [c.caption for c in lm_clips], config.lm, codec.frame_rate, config.seed,
                              progress=progress)
        timings["lm_s"] = time.perf_counter() - t
        training_s = time.perf_counter() - t_start

        hashes = write_checkpoints(codec, lm, out_dir, half=half)
        t = time.perf_counter()
        shipped = load_shipped(out_dir)  # metrics of what ships (fp16-rounded), not of the in-memory model
        rand = random_init_like(out_dir, seed=config.seed)
        frames = int(round(config.lm.segment_seconds * codec.frame_rate))
        metrics = evaluate_models(shipped.compression_model, shipped.lm, rand.compression_model, rand.lm, heldout,
                                  sr, frames)
        timings["evaluation_s"] = time.perf_counter() - t
    timings["training_total_s"] = training_s
    timings["total_s"] = time.perf_counter() - t_start
    mix = {c: sum(1 for x in lm_clips if x.category == c) for c in CATEGORIES}
    provenance = {
        "what": "nano MusicGen pre-trained on synthetic stems: the smoke profile's baseline and fine-tuning start",
        "script": "scripts/pretrain_nano.py (silicon_sing.pretrain.run_pretraining)",
        "config": config.to_dict(),
        "data": {
            "generator": "silicon_sing.synth", "artists": sorted({c.artist for c in corpus}),
            "pretrain_seed": config.corpus.seed, "heldout_seed": config.heldout_seed,
            "note": ("synthetic tracks of the smoke artists rendered with a seed no profile uses (smoke: 1234), so "
                     "no evaluation track is heard in pre-training; same artist styles, different compositions"),
            "codec_corpus_seconds": {c: sum(len(x.audio) for x in corpus if x.category == c) / sr for c in CATEGORIES},
            "lm_corpus_clips": mix,
            "lm_corpus_seconds": {c: sum(len(x.audio) for x in lm_clips if x.category == c) / sr for c in CATEGORIES},
            "example_captions": sorted({c.caption for c in lm_clips})[:8],
        },
        "codec": {"architecture": "audiocraft EncodecModel (SEANet + RVQ)", "frame_rate": float(codec.frame_rate),
                  "n_q": int(codec.num_codebooks), "cardinality": int(codec.cardinality),
                  "parameters": sum(p.numel() for p in codec.parameters()),
                  "trained_on": "every stem (instrumental, acapella, full) of every pre-training track, equally",
                  "losses": " + ".join(f"{k} ({w:g})" for k, w in config.codec.loss_weights.items())
                            + " via audiocraft's Balancer, + VQ commitment penalty; adversarial and feature-matching "
                              "losses omitted (CPU budget)",
                  "steps": config.codec.steps, "final": codec_history[-1] if codec_history else {},
                  "history_every_25": codec_history[::25]},
        "lm": {"architecture": "audiocraft transformer LM, delay pattern, cross-attention on hashed-text captions",
               "trained_on": "codes of lm_corpus (mostly instrumental), generic captions without a UUID, "
                             f"classifier-free-guidance dropout {config.lm.cfg_dropout}",
               "parameters": sum(p.numel() for p in lm.parameters()), "steps": config.lm.steps,
               "final_loss": lm_history[-1]["loss"] if lm_history else None,
               "history_every_25": lm_history[::25]},
        "metrics_heldout": metrics,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "machine": {"torch_threads": config.threads, "cpu_count": _cpu_count(), "platform": platform.platform()},
        "versions": _versions(),
        "storage": "fp16" if half else "fp32",
        "files": {name: {"sha1": hashes[name], "bytes": (out_dir / name).stat().st_size} for name in CHECKPOINT_FILES},
    }
    atomic_write_json(out_dir / PROVENANCE, provenance).chmod(0o644)  # package data (mkstemp makes 0600)
    return provenance


def _cpu_count() -> int:
    """Usable CPU cores."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


__all__ = [
    "PRETRAIN_SEED", "HELDOUT_SEED", "ASSETS_DIR", "CorpusSpec", "CodecSpec", "LMSpec", "PretrainConfig",
    "tiny_config", "Clip", "pretrain_caption", "synth_corpus", "nano_pretrain_config", "build_codec", "build_lm",
    "si_snr_db", "mel_distance", "reconstruct", "codec_scores", "codec_metrics", "train_codec", "encode_clips",
    "lm_loss", "train_lm", "frame_activity", "heldout_lm_loss", "write_checkpoints", "load_shipped",
    "random_init_like", "read_provenance",
    "verify_checkpoints", "evaluate_models", "run_pretraining",
]
