"""audiocraft configs and random-init construction: the nano models and musicgen-melody's architecture.

Notebook: notebooks/03_finetune.ipynb (loaded again for generation in notebooks/04_evaluate.ipynb)
"""

from __future__ import annotations

import copy
import typing as tp

import torch
from audiocraft.models import MusicGen, builders
from omegaconf import DictConfig, OmegaConf

from ..model_names import NANO
from .conditioner import HASHED_TEXT

if tp.TYPE_CHECKING:
    from audiocraft.quantization import ResidualVectorQuantizer


SAMPLE_RATE = 32000


# --------------------------------------------------------------------------- configs

def _lm_defaults() -> dict[str, tp.Any]:
    """audiocraft's ``model/lm/default.yaml`` + ``musicgen_lm.yaml`` transformer keys."""
    return dict(
        n_q=4, card=2048, dim=1536, num_heads=24, num_layers=48, hidden_scale=4, dropout=0.0,
        emb_lr=None, activation="gelu", norm_first=True, bias_ff=False, bias_attn=False,
        bias_proj=False, past_context=None, causal=True, custom=False, memory_efficient=True,
        attention_as_float32=False, layer_scale=None, positional_embedding="sin", xpos=False,
        checkpointing="none", weight_init="gaussian", depthwise_init="current", zero_bias_init=True,
        norm="layer_norm", cross_attention=False, qk_layer_norm=False, qk_layer_norm_cross=False,
        attention_dropout=None, kv_repeat=1, two_step_cfg=False,
    )


def encodec_config(n_filters: int, dimension: int, ratios: list[int], n_q: int, bins: int) -> dict[str, tp.Any]:
    """audiocraft's ``model/encodec/default.yaml`` with the given sizes (32 kHz mono)."""
    return {
        "compression_model": "encodec",
        "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": SAMPLE_RATE, "channels": 1,
                    "causal": False, "renormalize": False},
        "seanet": {"dimension": dimension, "channels": 1, "causal": False, "n_filters": n_filters,
                   "n_residual_layers": 1, "ratios": ratios, "activation": "ELU",
                   "activation_params": {"alpha": 1.0}, "norm": "weight_norm", "norm_params": {},
                   "kernel_size": 7, "residual_kernel_size": 3, "last_kernel_size": 7, "dilation_base": 2,
                   "pad_mode": "constant", "true_skip": True, "compress": 2, "lstm": 2,
                   "disable_norm_outer_blocks": 0,
                   "decoder": {"trim_right_ratio": 1.0, "final_activation": None,
                               "final_activation_params": None},
                   "encoder": {}},
        "rvq": {"n_q": n_q, "q_dropout": False, "bins": bins, "decay": 0.99, "kmeans_init": True,
                "kmeans_iters": 50, "threshold_ema_dead_code": 2, "orthogonal_reg_weight": 0.0,
                "orthogonal_reg_active_codes_only": False},
    }


def nano_config(max_duration: float = 30.0, dim: int = 64, num_layers: int = 2, num_heads: int = 4,
                card: int = 256, n_q: int = 4, text_bins: int = 4096, device: str = "cpu") -> DictConfig:
    """The nano MusicGen's audiocraft config (LM + compression model in one, like an ``xp.cfg``)."""
    lm = _lm_defaults()
    # custom attention, no memory-efficient kernel: the fastest exact path for tiny CPU models when generating. And with
    # rope (the shipped nano LM), not memory_efficient: audiocraft 1.3.0's _apply_rope reads the streaming offset from
    # past_keys.shape[1], which that layout (b h t d) makes the head count, so generation would rotate wrongly.
    # Training does not stream and switches these layers to the fused kernel (train.fused_attention_for_training)
    lm.update(n_q=n_q, card=card, dim=dim, num_heads=num_heads, num_layers=num_layers,
              custom=True, memory_efficient=False, cross_attention=True)
    cfg = {
        "device": device, "dtype": "float32", "sample_rate": SAMPLE_RATE, "channels": 1,
        "lm_model": "transformer_lm", "transformer_lm": lm,
        "codebooks_pattern": {"modeling": "delay", "delay": {"delays": list(range(n_q)), "flatten_first": 0,
                                                             "empty_initial": 0}},
        "classifier_free_guidance": {"training_dropout": 0.3, "inference_coef": 3.0},
        "attribute_dropout": {},
        "fuser": {"cross_attention_pos_emb": False, "cross_attention_pos_emb_scale": 1, "sum": [],
                  "prepend": [], "cross": ["description"], "input_interpolate": []},
        "conditioners": {"description": {"model": HASHED_TEXT,
                                         HASHED_TEXT: {"n_bins": text_bins, "dim": 32, "ngram": 3}}},
        # the generation window (MusicGen asserts its default 18 s extend stride fits in it), as
        # audiocraft's debug model; training segments may be shorter (sinusoidal positions)
        "dataset": {"segment_duration": float(max_duration)},
        # 32 kHz / (10*8*16) = 25 Hz, like audiocraft's debug compression model
        **encodec_config(n_filters=4, dimension=32, ratios=[10, 8, 16], n_q=n_q, bins=card),
    }
    cfg["rvq"]["kmeans_iters"] = 10  # the k-means init dominates construction time on CPU at 50
    return OmegaConf.create(cfg)


def melody_config(segment_seconds: float = 30.0, dim: int = 1536, num_layers: int = 48, num_heads: int = 24,
                  card: int = 2048, codec_filters: int = 64, codec_dimension: int = 128,
                  device: str = "cpu") -> DictConfig:
    """musicgen-melody's architecture (``musicgen_melody_32khz`` + ``chroma2music``); shrink for tests.

    Text: T5-base, frozen, prepended; melody: chroma (12 bins, argmax) of the demucs
    vocals+other stems of the conditioning audio, prepended. Compression: EnCodec 32 kHz, stride
    640 (50 Hz), 4 codebooks (the released model references ``facebook/encodec_32khz`` instead).
    """
    lm = _lm_defaults()
    lm.update(card=card, dim=dim, num_layers=num_layers, num_heads=num_heads)
    cfg = {
        "device": device, "dtype": "float32", "sample_rate": SAMPLE_RATE, "channels": 1,
        "lm_model": "transformer_lm", "transformer_lm": lm,
        "codebooks_pattern": {"modeling": "delay", "delay": {"delays": [0, 1, 2, 3], "flatten_first": 0,
                                                             "empty_initial": 0}},
        "classifier_free_guidance": {"training_dropout": 0.2, "inference_coef": 3.0},
        "attribute_dropout": {"args": {"active_on_eval": False}, "text": {}, "wav": {"self_wav": 0.5}},
        "fuser": {"cross_attention_pos_emb": False, "cross_attention_pos_emb_scale": 1, "sum": [],
                  "prepend": ["self_wav", "description"], "cross": [], "input_interpolate": []},
        "conditioners": {
            "self_wav": {"model": "chroma_stem", "chroma_stem": {
                "sample_rate": SAMPLE_RATE, "n_chroma": 12, "radix2_exp": 14, "argmax": True,
                "match_len_on_eval": False, "eval_wavs": None, "n_eval_wavs": 100, "cache_path": None}},
            "description": {"model": "t5", "t5": {"name": "t5-base", "finetune": False, "word_dropout": 0.2,
                                                  "normalize_text": False}},
        },
        "dataset": {"segment_duration": float(segment_seconds)},
        **encodec_config(n_filters=codec_filters, dimension=codec_dimension, ratios=[8, 5, 4, 4], n_q=4, bins=card),
    }
    return OmegaConf.create(cfg)


# --------------------------------------------------------------------------- construction

def build_from_config(cfg: DictConfig, seed: int = 0, name: str = NANO) -> MusicGen:
    """Build a random-init MusicGen (compression model + LM) from one config, deterministically."""
    cfg = copy.deepcopy(cfg)
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        compression = builders.get_compression_model(cfg)
        # RVQ codebooks start from k-means on a first batch; a fixed random batch keeps it seeded, and one
        # thread keeps its sums in one order (2 threads gave other codebooks than the 1-thread torchrun ranks)
        # CompressionModel declares no quantizer; the configs built here are EncodecModels with an RVQ
        quantizer = tp.cast("ResidualVectorQuantizer", compression.quantizer)
        quantizer.train()
        torch.set_num_threads(1)
        try:
            quantizer(torch.randn(8, quantizer.dimension, 128, device=cfg.device), 1)
        finally:
            torch.set_num_threads(threads)
        compression.eval()
        lm = builders.get_lm_model(cfg)
    compression.cfg = cfg  # type: ignore[assignment]  # export_model needs it
    lm.cfg = cfg  # type: ignore[assignment]  # as audiocraft's loaders do
    return MusicGen(name, compression, lm, max_duration=float(cfg.dataset.segment_duration))


def nano_musicgen(seed: int = 0, device: str = "cpu") -> MusicGen:
    """A tiny *random-init* MusicGen (``nano-random``), identical for identical seeds; the shipped one is ``nano``."""
    return build_from_config(nano_config(device=device), seed=seed, name=NANO)
