"""What decides the shipped nano checkpoints: seeds, corpus, codec and LM sizes, the audiocraft config.

Notebook: notebooks/03_finetune.ipynb (the pre-trained nano baseline that fine-tuning starts from)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from .. import models as M

PRETRAIN_SEED = 20240607  # not the smoke (1234) or paper seed: pre-training never hears an evaluation track
HELDOUT_SEED = PRETRAIN_SEED + 1  # held-out audio for the reported metrics: neither pre-training nor evaluation
ASSETS_DIR = M.NANO_DIR  # the shipped nano model (models.NANO_DIR)
CHECKPOINT_FILES = ("state_dict.bin", "compression_state_dict.bin")
PROVENANCE = "provenance.json"


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class CorpusSpec:
    """Which synthetic tracks pre-training hears (all artists of :data:`silicon_sing.synth.ARTISTS`)."""

    seed: int = PRETRAIN_SEED
    tracks_per_artist: int = 48  # 12 left the LM memorising its 14 min of instrumentals (train 2.5 vs held-out 4.0 nats)
    seconds: float = 24.0
    sample_rate: int = 32000
    target_lufs: float = -18.0  # the smoke profile's curate.target_lufs: same levels as the segments
    # tracks per artist whose stem of that category the LM trains on (mostly instrumental, as MusicGen)
    category_tracks: dict[str, int] = field(default_factory=lambda: {"instrumental": 48, "acapella": 4, "full": 8})


@dataclass(frozen=True)
class CodecSpec:
    """Size of the nano EnCodec and its training (audiocraft's compression solver, no adversary)."""

    n_filters: int = 8
    dimension: int = 64
    # hop 320 at 32 kHz = 100 Hz, twice MusicGen's rate: at this size, frame rate is what carries a voice
    # (held-out acapella SI-SNR 7.1 dB at 100 Hz x 8 codebooks vs 1.7 dB at 50 Hz x 16, the same bitrate)
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    n_q: int = 8
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
    # SI-SNR (audiocraft's loss, in its solver's option list) aligns the waveform further: +1 dB at 50 Hz.
    loss_weights: dict[str, float] = field(default_factory=lambda: {"l1": 1.0, "msspec": 2.0, "sisnr": 1.0})
    # audiocraft expires codes used < 2 times per batch of ~4800 frames for 1024 codes (~0.4 of the
    # mean use); our batches hold 256 frames (100 Hz) for 256 codes (mean use 1), so the same rule is ~0.4
    dead_code_threshold: float = 0.1
    kmeans_init_seconds: float = 20.0  # k-means initialises the codebooks on this much audio, not one small batch


@dataclass(frozen=True)
class LMSpec:
    """Size of the nano LM and its pre-training."""

    dim: int = 192
    num_layers: int = 3
    num_heads: int = 6
    # rotary positions (an audiocraft option): relative offsets, the beat and bar a continuation must copy;
    # on the same tokens the train loss after 600 steps was 2.4 nats with rope vs 4.1 with MusicGen's "sin"
    positional_embedding: str = "rope"
    steps: int = 1200
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


# --------------------------------------------------------------------------- model configs


def nano_pretrain_config(codec: CodecSpec, lm: LMSpec, max_duration: float = 30.0) -> DictConfig:
    """The shipped nano MusicGen's audiocraft config: ``models.nano_config`` with a 100 Hz codec and a larger LM."""
    cfg = M.nano_config(max_duration=max_duration, dim=lm.dim, num_layers=lm.num_layers, num_heads=lm.num_heads,
                        card=codec.bins, n_q=codec.n_q)
    OmegaConf.set_struct(cfg, False)
    cfg.transformer_lm.positional_embedding = lm.positional_embedding
    enc = OmegaConf.create(M.encodec_config(n_filters=codec.n_filters, dimension=codec.dimension,
                                          ratios=list(codec.ratios), n_q=codec.n_q, bins=codec.bins))
    enc.seanet.lstm = codec.lstm
    enc.rvq.threshold_ema_dead_code = codec.dead_code_threshold
    for key in ("compression_model", "encodec", "seanet", "rvq"):
        cfg[key] = enc[key]
    return cfg
