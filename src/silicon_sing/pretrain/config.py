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
    # tracks rendered per artist: as many as any stem below needs
    tracks_per_artist: int = 144
    seconds: float = 24.0
    sample_rate: int = 32000
    target_lufs: float = -18.0  # the smoke profile's curate.target_lufs: same levels as the segments
    # the codec hears every stem of the first tracks (every category equally: it is every category's tokenizer)
    codec_tracks_per_artist: int = 48
    # tracks per artist whose stem of that category the LM trains on (mostly instrumental, as MusicGen). 48
    # instrumentals per artist memorised at 3,000 steps (train 2.84 vs held-out 3.84 nats); the LM needs
    # more distinct tracks, not more passes over the same ones
    category_tracks: dict[str, int] = field(default_factory=lambda: {"instrumental": 144, "acapella": 4, "full": 24})

    def tracks_for(self, category: str) -> int:
        """Tracks per artist whose ``category`` stem is rendered: the codec's and the LM's."""
        return max(self.codec_tracks_per_artist, self.category_tracks.get(category, 0))


@dataclass(frozen=True)
class CodecSpec:
    """Size of the nano EnCodec and its training (audiocraft's compression solver, no adversary)."""

    # 12, not 8 (2.1 M parameters, not 1.0 M): held-out mel distance 1 dB lower in every category for 1.2x the time
    n_filters: int = 12
    dimension: int = 64
    # hop 320 at 32 kHz = 100 Hz, twice MusicGen's rate: at this size, frame rate is what carries a voice
    # (held-out acapella SI-SNR 7.1 dB at 100 Hz x 8 codebooks vs 1.7 dB at 50 Hz x 16, the same bitrate)
    ratios: tuple[int, ...] = (8, 5, 4, 2)
    n_q: int = 8
    bins: int = 256
    lstm: int = 2
    steps: int = 4800  # see loss_weights
    batch_size: int = 8
    crop_seconds: float = 0.32
    lr: float = 3e-3  # higher than the solver's 3e-4: thousands of steps here, not hundreds of thousands
    betas: tuple[float, float] = (0.5, 0.9)  # audiocraft's compression solver
    # the solver's names; its weights are l1 0.1, msspec 2 (+ adversarial 4, feature 4). Without the
    # adversary and with few steps, l1 at 0.1 left the waveform unaligned (SI-SNR near -40 dB after
    # 1200 steps, measured); at 1.0 it reaches positive SI-SNR with the same mel error.
    # SI-SNR (audiocraft's loss, in its solver's option list) aligns the waveform further: +1 dB at 50 Hz.
    # msspec 6, not the solver's 2: at 2 the highs came back 24-33 dB quieter, at 6 7-13 dB (at 12 the
    # acapella waveform fell apart: SI-SNR -4 dB)
    # mrstft (audiocraft's multi-resolution STFT loss) at 2 and 4,800 steps, not 2,400: measured 2026-11-26 on
    # held-out audio (same corpus and seed, 1 thread). mrstft 2 at 2,400 steps: mel 60 dB 4.94 -> 4.18 but
    # acapella SI-SNR 5.33 -> 4.64 (under the 5 dB target); 2,400 steps more (4,800 in all): mel 3.25, SI-SNR
    # 9.2 / 11.4 / 9.1 (instrumental / acapella / full), mid band lost 5.3 -> 3.2 dB, high 11.9 -> 4.1 dB,
    # harmonic lines kept 33 % -> 40 %, Kid Basalt's tempo kept through the codec 0 -> 4 of 6 test segments.
    # n_filters 24 at 2,400 steps gained little (mel 4.48, lines 0.33 of 1.15 on the smoke run's
    # instrumentals); a decoder-only fine-tune even less. What the shipped run measured: provenance.json
    loss_weights: dict[str, float] = field(default_factory=lambda: {"l1": 1.0, "msspec": 6.0, "sisnr": 1.0, "mrstft": 2.0})
    # audiocraft expires codes used < 2 times per batch of ~4800 frames for 1024 codes (~0.4 of the
    # mean use); our batches hold 256 frames (100 Hz) for 256 codes (mean use 1), so the same rule is ~0.4
    dead_code_threshold: float = 0.1
    # the msspec loss's floor on mel power (audiocraft: 1e-5). At 1e-5 about half the bins sit above it,
    # most of them 30-60 dB under the peak, so the log term spends itself on near-silence and the harmonic
    # lines came back 7 dB quieter; at 1e-4, 5 dB (held-out mid band; 1e-3 broke the waveform: SI-SNR -14 dB)
    msspec_floor: float = 1e-4
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
    # 2,400 over 3x the instrumentals: ~44 windows drawn per clip (1,200 steps over 144 clips: ~67)
    steps: int = 2400
    # then a warm restart: a fresh AdamW, warmup and cosine over this many more steps, on new windows, starting from
    # the first stage's stored (fp16) weights, so `--lm-from` on a stored first stage gives the same bytes
    # (it pays: held-out loss 3.46 -> 2.82 nats on instrumentals, 3.65 -> 3.37 on acapella, against the first stage)
    restart_steps: int = 2400
    # Tried and not taken (2026-12-07; 500 more steps from the shipped LM at lr 1e-3, on the LM stems of 32 tracks
    # per artist; scripts/sampling_sweep.py at 0.5, seeds 0-2, 72 held-out instrumental prompts; the shipped LM kept
    # tempo 40 % and key 88 %, the same 500 steps unchanged 35 % and 76 %): 20 % of the input codes replaced by random
    # ones (the targets clean, against exposure bias) kept tempo 15 % and key 49 %, faded 54 %, and its held-out loss
    # rose to 3.40 nats (2.96 unchanged); codebook losses weighted 4, 2, 1, ... (the coarse codebooks carry onsets)
    # kept tempo 29 % and key 78 %. Neither looked further back (lm_context_use at 0.8 s: 0.001 and 0.004 nats)
    batch_size: int = 8
    segment_seconds: float = 6.0  # the smoke profile's curate.segment_seconds
    lr: float = 3e-3
    warmup_steps: int = 40
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    cfg_dropout: float = 0.3  # as fine-tuning: generation uses classifier-free guidance


@dataclass(frozen=True)
class DecoderSpec:
    """The recipe's last stage: a wider decoder trained on the stored codec's frozen codes.

    The encoder and the codebooks stay as the first stage trained them, so every code, and the LM trained on the codes,
    is unchanged: only what the codes sound like changes. Its training is the codec's (:class:`CodecSpec`: losses,
    crops, batch, learning rate and betas), from a random init, the decoder alone.
    """

    # 24, not the codec's 12 (4.0 M decoder parameters instead of 1.1 M; 10.8 MB stored instead of 4.8): on held-out
    # audio (provenance.json: lm_stages.metrics_heldout against metrics_heldout) SI-SNR 8.5 -> 10.2 dB (acapella 8.8 ->
    # 11.9), mel distance 3.28 -> 2.71 dB, mid band lost 3.4 -> 2.6 dB, the originals' harmonic lines drawn in their
    # place 7 -> 13 % (acapella 6 -> 22 %, instrumentals 9 -> 8 %; the first figures measured since, on the same
    # audio). Tried and not taken (2026-12-06, 2,400 steps on a
    # third of the corpus): a whole codec of 24 filters and 128 dimensions kept no more lines in place (9 %) at a worse
    # mel distance (3.85 dB); an adversarial fine-tune of the 12-filter decoder (audiocraft's MS-STFT discriminator,
    # 16 filters, 3 scales, 1,500 steps at 0.8 s each) did worse on mel (3.60 dB) and instrumental lines
    n_filters: int = 24
    steps: int = 4800  # 0: no such stage, the codec's own decoder ships

    @classmethod
    def none(cls) -> DecoderSpec:
        """No decoder stage: what the stages before it record."""
        return cls(n_filters=0, steps=0)


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that decides the shipped nano checkpoints."""

    corpus: CorpusSpec = field(default_factory=CorpusSpec)
    codec: CodecSpec = field(default_factory=CodecSpec)
    lm: LMSpec = field(default_factory=LMSpec)
    decoder: DecoderSpec = field(default_factory=DecoderSpec)
    heldout_seed: int = HELDOUT_SEED
    heldout_tracks_per_artist: int = 2
    heldout_seconds: float = 12.0
    seed: int = 0  # torch seed of initialisation and batch sampling
    threads: int = 2

    def first_stage(self) -> PretrainConfig:
        """The recipe without the LM's warm restart (nor the decoder stage): what a ``--lm-from`` directory must have
        been made with."""
        return dataclasses.replace(self.lm_stages(), lm=dataclasses.replace(self.lm, restart_steps=0))

    def lm_stages(self) -> PretrainConfig:
        """The recipe without its decoder stage: what a ``--decoder-from`` directory must have been made with."""
        return dataclasses.replace(self, decoder=DecoderSpec.none())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def tiny_config() -> PretrainConfig:
    """A few-step configuration that exercises every code path in seconds (tests, ``--tiny``)."""
    return PretrainConfig(
        corpus=CorpusSpec(tracks_per_artist=1, seconds=4.0, codec_tracks_per_artist=1,
                          category_tracks={"instrumental": 1, "acapella": 1, "full": 1}),
        codec=CodecSpec(n_filters=4, dimension=16, lstm=0, steps=3, batch_size=2, kmeans_init_seconds=2.0),
        lm=LMSpec(dim=32, num_layers=1, num_heads=2, steps=3, restart_steps=2, batch_size=2, segment_seconds=2.0,
                  warmup_steps=1),
        decoder=DecoderSpec(n_filters=6, steps=2),
        heldout_tracks_per_artist=1, heldout_seconds=4.0,
    )


# --------------------------------------------------------------------------- model configs


def nano_pretrain_config(codec: CodecSpec, lm: LMSpec, max_duration: float = 30.0,
                         decoder: DecoderSpec | None = None) -> DictConfig:
    """The shipped nano MusicGen's audiocraft config: ``models.nano_config`` with a 100 Hz codec and a larger LM, and
    with a decoder stage (``decoder.steps``) a wider decoder (audiocraft's ``seanet.decoder`` override: every loader
    builds it from the stored config)."""
    cfg = M.nano_config(max_duration=max_duration, dim=lm.dim, num_layers=lm.num_layers, num_heads=lm.num_heads,
                        card=codec.bins, n_q=codec.n_q)
    OmegaConf.set_struct(cfg, False)
    cfg.transformer_lm.positional_embedding = lm.positional_embedding
    enc = OmegaConf.create(M.encodec_config(n_filters=codec.n_filters, dimension=codec.dimension,
                                          ratios=list(codec.ratios), n_q=codec.n_q, bins=codec.bins))
    enc.seanet.lstm = codec.lstm
    enc.rvq.threshold_ema_dead_code = codec.dead_code_threshold
    if decoder is not None and decoder.steps:
        enc.seanet.decoder.n_filters = decoder.n_filters
    for key in ("compression_model", "encodec", "seanet", "rvq"):
        cfg[key] = enc[key]
    return cfg
