"""MusicGen for both profiles, built with audiocraft (used by notebooks 03 and 04).

* ``nano`` (smoke profile): the *pre-trained* nano MusicGen shipped in ``assets/nano/``
  (:data:`NANO_DIR`, made by ``scripts/pretrain_nano.py``, see :mod:`silicon_sing.pretrain`): a
  50 Hz EnCodec-architecture codec and a caption-conditioned LM trained on mostly instrumental
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
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import re
import typing as tp
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

import audiocraft
from audiocraft.models import MusicGen, builders
from audiocraft.models.encodec import CompressionModel, HFEncodecCompressionModel
from audiocraft.modules.conditioners import ConditioningProvider, TextConditioner
from audiocraft.modules.transformer import create_sin_embedding
from omegaconf import DictConfig, OmegaConf

from .fsutil import atomic_path, load_tensors_only

NANO = "nano"  # the shipped pre-trained nano model (NANO_DIR)
NANO_RANDOM = "nano-random"  # a random-init tiny model from nano_config (nano_musicgen), for tests
NANO_DIR = Path(__file__).resolve().parent / "assets" / "nano"
MELODY = "facebook/musicgen-melody"
SAMPLE_RATE = 32000
HASHED_TEXT = "hashed_text"  # the conditioner ``model`` key in an audiocraft config


class ModelWeightsMissing(RuntimeError):
    """Pretrained weights are not in the local caches and cannot be downloaded from here."""


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
        kwargs = OmegaConf.to_container(v.get(HASHED_TEXT) or {}, resolve=True)
        provider.conditioners[str(k)] = HashedTextConditioner(output_dim=output_dim, **kwargs).to(cfg.device)
    return provider


def register_offline_conditioners() -> None:
    """Teach audiocraft's builders (hence ``MusicGen.get_pretrained``) the ``hashed_text`` conditioner.

    Idempotent; done on import of this module. It wraps ``builders.get_conditioner_provider``,
    which ``get_lm_model`` looks up at call time, so audiocraft's loaders build our nano exports.
    """
    builders.get_conditioner_provider = _get_conditioner_provider


register_offline_conditioners()


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


def _encodec_cfg(n_filters: int, dimension: int, ratios: list[int], n_q: int, bins: int) -> dict[str, tp.Any]:
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
    # custom attention, no memory-efficient kernel: the fastest exact path for tiny CPU models
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
        **_encodec_cfg(n_filters=4, dimension=32, ratios=[10, 8, 16], n_q=n_q, bins=card),
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
        **_encodec_cfg(n_filters=codec_filters, dimension=codec_dimension, ratios=[8, 5, 4, 4], n_q=4, bins=card),
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
        compression.quantizer.train()
        torch.set_num_threads(1)
        try:
            compression.quantizer(torch.randn(8, compression.quantizer.dimension, 128, device=cfg.device), 1)
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


HTDEMUCS_CHECKPOINT = "955717e8-8726e21a.th"  # what demucs.pretrained.get_model("htdemucs") reads from the torch hub


def _hf_cached_path(repo_id: str, filename: str) -> Path | None:
    """``repo_id/filename`` in the local Hugging Face cache (``$HF_HOME/hub``), or None."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename)
    return Path(found) if isinstance(found, str) else None


def _hf_cached(repo_id: str, filename: str) -> bool:
    """Whether ``repo_id/filename`` is in the local Hugging Face cache."""
    return _hf_cached_path(repo_id, filename) is not None


def _read_package(path: Path) -> dict[str, tp.Any]:
    """An audiocraft checkpoint package (``xp.cfg`` YAML, tensors) read without unpickling code, memory-mapped."""
    return load_tensors_only(path, mmap=True)


def _hub_checkpoint(filename: str) -> Path:
    """``<torch hub dir>/checkpoints/<filename>`` (``$TORCH_HOME/hub``), where demucs' weights are cached."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def missing_pretrained_files(name: str = MELODY) -> list[str]:
    """What ``MusicGen.get_pretrained(name)`` would have to download: exactly the files its loaders read.

    The LM package (``state_dict.bin``) and the compression package of ``name``; then what the LM's
    own config asks for: the T5 tokenizer and encoder of a ``t5`` conditioner, demucs ``htdemucs``
    for a ``chroma_stem`` conditioner, and the hub codec a compression package that only names one
    (``{'pretrained': ...}``) refers to. Empty when everything is cached.
    """
    missing: list[str] = []
    lm_file, comp_file = _hf_cached_path(name, "state_dict.bin"), _hf_cached_path(name, "compression_state_dict.bin")
    missing += [f"{name}/{f}" for f, p in (("state_dict.bin", lm_file), ("compression_state_dict.bin", comp_file))
                if p is None]
    if lm_file is not None:
        conds = OmegaConf.create(_read_package(lm_file)["xp.cfg"]).get("conditioners") or {}
        kinds = {str(v.model): v for k, v in conds.items() if k != "args"}
    else:  # not cached yet: musicgen-melody's (and musicgen's) text conditioner; chroma for melody models
        kinds = {"t5": OmegaConf.create({"t5": {"name": "t5-base"}})}
        if "melody" in name:
            kinds["chroma_stem"] = OmegaConf.create({})
    if "t5" in kinds:
        t5 = str(kinds["t5"].t5.name)
        missing += [f"{t5}/{f}" for f in ("config.json", "spiece.model") if not _hf_cached(t5, f)]
        if not (_hf_cached(t5, "model.safetensors") or _hf_cached(t5, "pytorch_model.bin")):
            missing.append(f"{t5}/model.safetensors")
    if "chroma_stem" in kinds and not _hub_checkpoint(HTDEMUCS_CHECKPOINT).exists():
        missing.append(f"demucs htdemucs ({_hub_checkpoint(HTDEMUCS_CHECKPOINT)})")
    if comp_file is not None:
        codec = _read_package(comp_file).get("pretrained")
        if codec and not _hf_cached(str(codec), "config.json"):
            missing.append(f"{codec}/config.json")
    return missing


def _hub_offline() -> bool:
    """Whether the Hugging Face hub is switched off for this process (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def download_commands(name: str = MELODY) -> list[str]:
    """One command per cache that fetches everything the paper profile loads (run where there is internet)."""
    return [
        f"huggingface-cli download {name} state_dict.bin compression_state_dict.bin",
        "huggingface-cli download t5-base config.json spiece.model model.safetensors",
        "python -c \"import demucs.pretrained; demucs.pretrained.get_model('htdemucs')\"",
    ]


def _missing_message(name: str, missing: list[str]) -> str:
    """The actionable explanation of missing pretrained weights."""
    hf_home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    torch_home = os.environ.get("TORCH_HOME", "~/.cache/torch")
    cmds = "\n".join(f"    {c}" for c in download_commands(MELODY if Path(name).is_dir() else name))
    return (
        f"MusicGen weights for {name!r} are not available offline; missing: {', '.join(missing)}.\n"
        f"On a machine with internet access, fill the Hugging Face cache (HF_HOME={hf_home}) and the torch hub "
        f"cache (TORCH_HOME={torch_home}, for demucs) with:\n{cmds}\n"
        f"then copy both caches to this machine, point HF_HOME/TORCH_HOME at them and set HF_HUB_OFFLINE=1. "
        f"Alternatively set train.model to a directory holding an exported state_dict.bin + "
        f"compression_state_dict.bin. The smoke profile (train.model: nano) needs no download."
    )


def load_pretrained(name: str = MELODY, device: str = "cpu") -> MusicGen:
    """``MusicGen.get_pretrained(name)`` with a clear :class:`ModelWeightsMissing` when weights are missing.

    Offline (``HF_HUB_OFFLINE=1``) a missing file fails at once; online, the hub client (which honours
    ``HTTPS_PROXY``) fetches it. The compression model's audiocraft config is attached, so that a
    fine-tuned model can be exported in audiocraft's layout.
    """
    missing = missing_pretrained_files(name)
    if missing and _hub_offline():
        raise ModelWeightsMissing(_missing_message(name, missing))
    try:
        model = MusicGen.get_pretrained(name, device=device)
    except (OSError, ValueError, ConnectionError) as e:  # hub errors subclass OSError/ValueError
        missing = missing_pretrained_files(name) or [f"(download failed: {e})"]
        raise ModelWeightsMissing(_missing_message(name, missing)) from e
    comp = _hf_cached_path(name, "compression_state_dict.bin")
    if comp is not None:
        _attach_compression_source(model, comp)
    return model


def _attach_compression_source(model: MusicGen, package: Path) -> None:
    """Remember how the compression model was stored (its config or hub name), so it can be exported again."""
    pkg = _read_package(package)
    if "xp.cfg" in pkg:
        model.compression_model.cfg = OmegaConf.create(pkg["xp.cfg"])  # type: ignore[assignment]
    elif "pretrained" in pkg:
        model.compression_model.pretrained_name = pkg["pretrained"]  # type: ignore[assignment]


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_model_name(params: tp.Any) -> str:
    """``params.train.model``, with a relative export directory resolved against the repository root."""
    name = str(params.train.model)
    if name == NANO:  # its files, so that training fingerprints change with the shipped weights
        return str(NANO_DIR)
    if name != NANO_RANDOM and not Path(name).expanduser().is_absolute() and getattr(params, "source", None):
        candidate = Path(params.source).resolve().parent.parent / name
        if candidate.is_dir():
            return str(candidate)
    return str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name


def load_model(params_or_name: tp.Any = NANO, device: str | None = None, seed: int | None = None) -> MusicGen:
    """A MusicGen from ``Params`` (its ``train.model``), ``"nano"``, ``"nano-random"``, an export dir or a hub name."""
    if hasattr(params_or_name, "train"):
        params = params_or_name
        name = resolve_model_name(params)
        seed = params.seed if seed is None else seed
    else:
        name = str(params_or_name)
    device = device or default_device()
    if name == NANO_RANDOM:
        return nano_musicgen(seed=seed or 0, device=device)
    if name == NANO:
        name = str(NANO_DIR)
        if not (NANO_DIR / "state_dict.bin").exists():
            raise FileNotFoundError(f"the shipped nano checkpoints are missing from {NANO_DIR}: "
                                    "rerun `python scripts/pretrain_nano.py`")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "state_dict.bin").exists():
            raise FileNotFoundError(f"{path} holds no state_dict.bin (expected an export_model directory)")
        try:
            model = MusicGen.get_pretrained(str(path), device=device)
        except (OSError, ValueError, ConnectionError) as e:
            # an export of musicgen-melody still needs T5, demucs and EnCodec from the caches
            parts = [m for m in missing_pretrained_files(MELODY) if not m.startswith(MELODY)]
            raise ModelWeightsMissing(_missing_message(str(path), parts or [f"(loading failed: {e})"])) from e
        _attach_compression_source(model, path / "compression_state_dict.bin")
        return model
    return load_pretrained(name, device=device)


def model_config(name: str) -> DictConfig:
    """The audiocraft config of a model (LM + compression keys) read from its files, without loading weights.

    ``name`` as :func:`load_model` takes it. A hub model that is not cached yet: its known architecture
    (:func:`melody_config` for ``facebook/musicgen-melody``).
    """
    if name == NANO_RANDOM:
        return nano_config()
    path = NANO_DIR if name == NANO else Path(name).expanduser()
    if path.is_dir():
        lm_file, comp_file = path / "state_dict.bin", path / "compression_state_dict.bin"
    else:
        lm_file, comp_file = _hf_cached_path(name, "state_dict.bin"), _hf_cached_path(name, "compression_state_dict.bin")
    if lm_file is None or not lm_file.exists():
        if name == MELODY:
            return melody_config()
        raise ModelWeightsMissing(_missing_message(name, missing_pretrained_files(name)))
    cfg = OmegaConf.create(_read_package(lm_file)["xp.cfg"])
    if comp_file is not None and comp_file.exists():
        comp = _read_package(comp_file)
        if "xp.cfg" in comp:
            ccfg = OmegaConf.create(comp["xp.cfg"])
            cfg = OmegaConf.merge(cfg, {k: ccfg[k] for k in ("compression_model", "encodec", "seanet", "rvq")
                                        if k in ccfg})
    return cfg


# --------------------------------------------------------------------------- export

def _compression_package(cm: CompressionModel) -> dict[str, tp.Any]:
    """audiocraft's ``compression_state_dict.bin`` content for ``cm``."""
    base = {"version": audiocraft.__version__, "exported": True}
    pretrained = getattr(cm, "pretrained_name", None)
    if pretrained is None and isinstance(cm, HFEncodecCompressionModel):
        pretrained = cm.model.config._name_or_path
    if pretrained:
        return {**base, "pretrained": pretrained}
    cfg = getattr(cm, "cfg", None)
    if cfg is None:
        raise ValueError("cannot export a compression model without its audiocraft config (cfg attribute): "
                         "load models with silicon_sing.models.load_model, which attaches it")
    return {**base, "best_state": {k: v.detach().cpu() for k, v in cm.state_dict().items()},
            "xp.cfg": OmegaConf.to_yaml(cfg)}


def export_model(model: MusicGen, out_dir: str | os.PathLike[str],
                 lm_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``state_dict.bin`` + ``compression_state_dict.bin`` that ``MusicGen.get_pretrained`` loads.

    ``lm_state`` replaces ``model.lm.state_dict()`` (FSDP: the full state gathered from the shards).
    """
    out = Path(out_dir)
    cfg = getattr(model.lm, "cfg", None)
    if cfg is None:
        raise ValueError("cannot export an LM without its audiocraft config (lm.cfg)")
    state = lm_state if lm_state is not None else model.lm.state_dict()
    lm_pkg = {"best_state": {k: v.detach().cpu() for k, v in state.items()},
              "xp.cfg": OmegaConf.to_yaml(cfg), "version": audiocraft.__version__, "exported": True}
    for filename, pkg in (("compression_state_dict.bin", _compression_package(model.compression_model)),
                          ("state_dict.bin", lm_pkg)):
        with atomic_path(out / filename) as tmp:
            torch.save(pkg, tmp)
    return out


def state_fingerprint(module: nn.Module) -> str:
    """SHA-1 over a module's state (names, dtypes, shapes, values): identifies weights exactly."""
    h = hashlib.sha1()
    for k, v in sorted(module.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# --------------------------------------------------------------------------- random-init stand-ins (tests)

def _tiny_t5_tokenizer(workdir: Path) -> tp.Any:
    """A T5 tokenizer over a sentencepiece model trained here on a few words (no download)."""
    import sentencepiece as spm
    from transformers import T5Tokenizer

    model_file = workdir / "tiny_spm.model"
    if not model_file.exists():
        words = ("energetic calm dark bright track song voice vocals instrumental guitar piano drums bass "
                 "slow fast major minor happy sad tempo bpm key mood genre pop rock jazz acapella full").split()
        sentences = [" ".join(words[i:] + words[:i]) for i in range(len(words))] * 4
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_prefix=str(workdir / "tiny_spm"), vocab_size=48,
            hard_vocab_limit=False,
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1, model_type="unigram", minloglevel=2)
    return T5Tokenizer(vocab_file=str(model_file), legacy=True)


@contextlib.contextmanager
def random_init_pretrained_parts(workdir: str | os.PathLike[str], seed: int = 0) -> Iterator[None]:
    """Within the block, T5 and demucs load as tiny random-init stand-ins instead of downloading.

    For tests of the paper-profile construction path on machines that reach no hub: T5 keeps
    t5-base's hidden size (768, what the conditioner expects) with one small layer; demucs is a
    small HTDemucs with the same four sources. Never used by the pipeline itself.
    """
    from unittest import mock

    import demucs.pretrained
    from audiocraft.modules import conditioners as ac_cond
    from demucs.htdemucs import HTDemucs
    from transformers import T5Config, T5EncoderModel

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tokenizer = _tiny_t5_tokenizer(workdir)

    def t5_model(name: str, *args: tp.Any, **kwargs: tp.Any) -> T5EncoderModel:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            cfg = T5Config(vocab_size=len(tokenizer), d_model=ac_cond.T5Conditioner.MODELS_DIMS[name], d_kv=16,
                           d_ff=64, num_layers=1, num_heads=2)
            return T5EncoderModel(cfg).eval()

    def demucs_model(name: str, *args: tp.Any, **kwargs: tp.Any) -> HTDemucs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=4, depth=2, t_layers=1,
                             t_heads=1, nfft=512, dconv_comp=2, t_hidden_scale=1.0, segment=4)
            return model.eval()

    with mock.patch.object(ac_cond.T5Tokenizer, "from_pretrained", side_effect=lambda *a, **k: tokenizer), \
         mock.patch.object(ac_cond.T5EncoderModel, "from_pretrained", side_effect=t5_model), \
         mock.patch.object(demucs.pretrained, "get_model", side_effect=demucs_model):
        yield


__all__ = [
    "NANO", "NANO_RANDOM", "NANO_DIR", "MELODY", "SAMPLE_RATE", "ModelWeightsMissing", "HashedTextConditioner",
    "tokenize_caption",
    "register_offline_conditioners", "nano_config", "melody_config", "build_from_config", "nano_musicgen",
    "missing_pretrained_files", "download_commands", "load_pretrained", "model_config", "resolve_model_name", "load_model", "export_model",
    "state_fingerprint",
    "random_init_pretrained_parts", "default_device",
]
