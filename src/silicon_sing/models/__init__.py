"""MusicGen for both profiles, built with audiocraft (used by notebooks 03 and 04).

* ``nano`` (smoke profile): the *pre-trained* nano MusicGen shipped in ``assets/nano/``
  (:data:`NANO_DIR`, made by ``scripts/pretrain_nano.py``, see :mod:`silicon_sing.pretrain`): a
  100 Hz EnCodec-architecture codec and a caption-conditioned LM trained on mostly instrumental
  synthetic stems, loaded offline. It is the smoke baseline and the fine-tuning start point.
* ``nano-random`` (:data:`NANO_RANDOM`, tests of the machinery): a tiny *random-init* MusicGen built
  from an audiocraft config with audiocraft's builders (:func:`nano_musicgen`) — EnCodec-style
  SEANet + RVQ compression model at 32 kHz mono (25 Hz, 4 codebooks), a transformer LM with the
  delay codebook pattern and cross-attention on the caption. Deterministic given a seed.
  Both use an offline text conditioner (:class:`HashedTextConditioner`): hashed words + character
  n-grams, no spaCy model, no T5 download.
* paper profile: ``facebook/musicgen-melody`` through ``MusicGen.get_pretrained`` (T5 text
  conditioner + chroma melody conditioner, audiocraft's ``chroma2music``). Missing weights on an
  offline machine raise :class:`ModelWeightsMissing`, which says what to download and where.

Export layout (:func:`export_model`): audiocraft's release layout, so that
``MusicGen.get_pretrained(<dir>)`` loads it. ``state_dict.bin`` = ``{'best_state': lm state,
'xp.cfg': yaml, 'version', 'exported'}``; ``compression_state_dict.bin`` = the same for a
compression model built from a config, or ``{'pretrained': 'facebook/encodec_32khz', ...}`` for a
hub compression model (as ``audiocraft.utils.export.export_pretrained_compression_model``). Because
the nano model's conditioner is ours, importing this module registers it with audiocraft's builders
(:func:`register_offline_conditioners`): import ``silicon_sing.models`` before calling
``MusicGen.get_pretrained`` on a nano export.

One module per responsibility, re-exported here: :mod:`.conditioner` (the offline text conditioner),
:mod:`.configs` (audiocraft configs, random-init construction), :mod:`.hub` (pretrained weights:
missing files, download commands, loading), :mod:`.loading` (:func:`load_model` for every kind of
name), :mod:`.export` (the export layout, weight fingerprints) and :mod:`.codec_io` (a compression
model's encode and decode, clip by clip on a CPU, where that is faster) and :mod:`.streaming`
(generation with the past keys and values kept in place).

Notebook: notebooks/03_finetune.ipynb (loaded again for generation in notebooks/04_evaluate.ipynb)
"""

from __future__ import annotations

from ..model_names import MELODY, NANO, NANO_DIR, NANO_RANDOM, resolve_model_name
from .codec_io import codec_decode, codec_encode
from .conditioner import HASHED_TEXT, HashedTextConditioner, register_offline_conditioners, stable_bin, tokenize_caption
from .configs import (
                      SAMPLE_RATE,
                      build_from_config,
                      encodec_config,
                      melody_config,
                      nano_config,
                      nano_musicgen,
)
from .export import export_model, state_fingerprint
from .hub import (
                      HTDEMUCS_CHECKPOINT,
                      ModelWeightsMissing,
                      download_commands,
                      hub_offline,
                      load_pretrained,
                      missing_message,
                      missing_pretrained_files,
)
from .loading import default_device, load_model, model_config
from .streaming import cached_kv_attention

__all__ = [
    "NANO", "NANO_RANDOM", "NANO_DIR", "MELODY", "SAMPLE_RATE", "HASHED_TEXT", "HTDEMUCS_CHECKPOINT",
    "ModelWeightsMissing", "HashedTextConditioner", "stable_bin", "tokenize_caption", "register_offline_conditioners",
    "nano_config", "melody_config", "encodec_config", "build_from_config", "nano_musicgen", "missing_pretrained_files",
    "download_commands", "hub_offline", "missing_message", "load_pretrained", "model_config", "resolve_model_name",
    "load_model", "export_model", "state_fingerprint", "default_device", "codec_encode", "codec_decode",
    "cached_kv_attention",
]
