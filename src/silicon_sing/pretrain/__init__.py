"""Pre-training the nano MusicGen that the smoke profile ships (``assets/nano/``), rerunnable anywhere.

The smoke profile's "baseline" must be a *pre-trained* model for the book to show the paper's
phenomenon, not noise. This module trains, on 2 CPU cores (about 3 hours), a miniature of MusicGen's
two stages and writes them in audiocraft's export layout (see :func:`silicon_sing.models.export_model`):

1. **Corpus** — :func:`synth_corpus` renders tracks of the three smoke artists with
   :mod:`silicon_sing.synth` under :data:`PRETRAIN_SEED`, a seed different from every profile's
   ``seed`` (smoke: 1234), so no evaluation track is ever heard in pre-training (same artist
   *styles* — tempo, key, progression pool, drum patterns — different compositions and renderings).
   32 kHz mono, loudness-normalised per track like stage 01.
2. **Compression model** — audiocraft's EnCodec (SEANet encoder/decoder + residual VQ, built by
   ``audiocraft.models.builders``) at a tiny size and 100 Hz (8 codebooks of 256), trained with
   audiocraft's compression losses: time-domain L1, multi-scale mel and SI-SNR
   (``audiocraft.losses``) combined by audiocraft's loss ``Balancer`` (weights
   :attr:`CodecSpec.loss_weights`), plus the VQ commitment penalty. The adversarial and
   feature-matching losses are *omitted* for the CPU budget (audiocraft's discriminator costs ~13×
   the codec's own step here), so the codec is blurrier and hissier than a real EnCodec: it keeps the
   bass and returns the harmonic lines above it quieter (:func:`band_levels_lost`, in provenance). It
   sees all three stems of the first :attr:`CorpusSpec.codec_tracks_per_artist` tracks equally: it is
   the shared tokenizer, and a codec that could not represent a voice would confound the LM's
   instrumental bias.
3. **Language model** — MusicGen's transformer LM (delay pattern, cross-attention on the caption
   through :class:`silicon_sing.models.HashedTextConditioner`, rotary positions) trained on the codes of a mostly
   instrumental corpus (:attr:`CorpusSpec.category_tracks`: every track's instrumental, a few
   tracks' acapella and full mix; three times the codec's tracks, since the LM memorises too few),
   mirroring the paper's premise that MusicGen "has been exposed to
   more instrumental music in its pre-training phase". Captions are what stage 02 would write
   for each stem (:func:`stage_captions`: the caption stage's measurements, decisions and templates,
   e.g. "dark backing track without vocals, featuring punchy drums and deep bass, in F minor,
   140 BPM") — never a run UUID, which fine-tuning is there to teach. Then a warm restart
   (:attr:`LMSpec.restart_steps`): a fresh optimizer and schedule from the first stage's stored
   weights, which ``--keep-first-stage`` keeps and ``--lm-from`` reuses (:func:`run_pretraining`).
4. **A wider decoder** — :attr:`DecoderSpec`: the stored codec's encoder and codebooks stay frozen, so every code
   and the LM are unchanged, and a decoder with more filters learns to decode the codes anew, with the codec's
   losses (:func:`train_decoder`). What it starts from, ``--keep-lm-stages`` keeps and ``--decoder-from`` reuses.

Run: ``python scripts/pretrain_nano.py`` (see ``--help``); provenance (seed, corpus, steps, losses,
metrics, wall time, versions, file hashes) lands in ``provenance.json`` next to the checkpoints.

One module per part, re-exported here: :mod:`.config` (seeds, sizes, the audiocraft config),
:mod:`.corpus`, :mod:`.codec`, :mod:`.lm` (its loss is :func:`silicon_sing.losses.conditioned_lm_loss`,
the fine-tuning loss), :mod:`.ship` (checkpoints, provenance) and :mod:`.run` (the whole run).

Notebook: notebooks/03_finetune.ipynb (the pre-trained nano baseline that fine-tuning starts from)
"""

from __future__ import annotations

from .codec import (
                    BANDS_HZ,
                    band_levels_lost,
                    build_codec,
                    codec_metrics,
                    codec_scores,
                    encode_clips,
                    mel_distance,
                    random_crops,
                    reconstruct,
                    si_snr_db,
                    train_codec,
                    train_decoder,
                    widen_decoder,
)
from .config import (
                    ASSETS_DIR,
                    CHECKPOINT_FILES,
                    HELDOUT_SEED,
                    PRETRAIN_SEED,
                    PROVENANCE,
                    CodecSpec,
                    CorpusSpec,
                    DecoderSpec,
                    LMSpec,
                    PretrainConfig,
                    nano_pretrain_config,
                    tiny_config,
)
from .corpus import Clip, stage_captions, synth_corpus
from .lm import (
                    CONTEXT_KEPT_SECONDS,
                    build_lm,
                    code_windows,
                    context_use,
                    frame_activity,
                    heldout_lm_loss,
                    lm_loss,
                    train_lm,
)
from .run import codec_corpus_spec, evaluate_models, heldout_corpus, run_pretraining, stage_provenance
from .ship import load_shipped, random_init_like, read_provenance, to_half_state, verify_checkpoints, write_checkpoints

__all__ = [
    "PRETRAIN_SEED", "HELDOUT_SEED", "ASSETS_DIR", "CHECKPOINT_FILES", "PROVENANCE", "CorpusSpec", "CodecSpec",
    "LMSpec", "DecoderSpec", "train_decoder", "widen_decoder", "codec_corpus_spec", "stage_provenance", "PretrainConfig", "tiny_config", "Clip", "stage_captions", "synth_corpus", "nano_pretrain_config",
    "build_codec", "build_lm", "si_snr_db", "mel_distance", "BANDS_HZ", "band_levels_lost", "reconstruct",
    "codec_scores", "codec_metrics",
    "random_crops", "train_codec", "encode_clips", "lm_loss", "code_windows", "train_lm", "frame_activity",
    "heldout_lm_loss", "CONTEXT_KEPT_SECONDS", "context_use", "to_half_state", "write_checkpoints", "load_shipped", "random_init_like", "read_provenance",
    "verify_checkpoints", "evaluate_models", "heldout_corpus", "run_pretraining",
]
