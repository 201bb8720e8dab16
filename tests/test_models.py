"""MusicGen construction for both profiles: nano model, offline conditioner, export round-trip, paper path."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import demucs.pretrained
import numpy as np
import pytest
import sentencepiece as spm
import soundfile as sf
import torch
from audiocraft.models import MusicGen
from audiocraft.modules import conditioners as ac_cond
from audiocraft.modules.codebooks_patterns import DelayedPatternProvider
from audiocraft.modules.conditioners import ChromaStemConditioner, ConditioningAttributes, T5Conditioner
from demucs.htdemucs import HTDemucs
from transformers import T5Config, T5EncoderModel, T5Tokenizer

from silicon_sing import models as M
from silicon_sing.params import load_params

UUID = "0f8c2a4e-5b1d-4c3a-9e7f-2d6b8a1c0e94"


SEED = 1234  # params/smoke.yaml's seed


@pytest.fixture(scope="module")
def nano() -> MusicGen:
    """The random-init tiny model (``nano-random``) with the smoke profile's seed."""
    return M.nano_musicgen(seed=SEED)


def _logits(model: MusicGen, codes: torch.Tensor, captions: list[str | None]) -> torch.Tensor:
    """Eval-mode logits of ``codes`` under ``captions`` (NaN at invalid delay positions zeroed)."""
    model.lm.eval()
    with torch.no_grad():
        attrs = [ConditioningAttributes(text={"description": c}) for c in captions]
        out = model.lm.compute_predictions(codes, attrs)
    return torch.nan_to_num(out.logits)


def test_nano_is_a_musicgen_with_delay_pattern_and_cross_attention(nano: MusicGen) -> None:
    lm = nano.lm
    assert nano.sample_rate == 32000 and nano.audio_channels == 1 and nano.frame_rate == 25
    assert isinstance(lm.pattern_provider, DelayedPatternProvider) and lm.num_codebooks == 4
    assert lm.fuser.fuse2cond["cross"] == ["description"]
    assert isinstance(lm.condition_provider.conditioners["description"], M.HashedTextConditioner)
    assert sum(p.numel() for p in lm.parameters()) < 2_000_000


def test_nano_construction_is_deterministic(nano: MusicGen) -> None:
    again, other = M.nano_musicgen(seed=SEED), M.nano_musicgen(seed=SEED + 1)
    assert M.state_fingerprint(again.lm) == M.state_fingerprint(nano.lm)
    assert M.state_fingerprint(again.compression_model) == M.state_fingerprint(nano.compression_model)
    assert M.state_fingerprint(other.lm) != M.state_fingerprint(nano.lm)


def test_nano_construction_does_not_depend_on_the_thread_count(nano: MusicGen) -> None:
    """torchrun ranks run one thread, a notebook several: both must build the same model from a seed."""
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        other = M.nano_musicgen(seed=SEED)
    finally:
        torch.set_num_threads(threads)
    assert M.state_fingerprint(other.compression_model) == M.state_fingerprint(nano.compression_model)
    assert torch.get_num_threads() == threads


def test_offline_text_conditioner_is_deterministic_and_keeps_the_uuid() -> None:
    toks = M.tokenize_caption(f"{UUID} Energetic track, 120 BPM", n_bins=4096)
    assert toks == M.tokenize_caption(f"{UUID} energetic track 120 bpm", n_bins=4096)  # case/punctuation-free
    words = [t[0] for t in toks]
    assert len(words) == 5 and len(set(words)) == 5  # the UUID is one word with its own bin
    assert M.tokenize_caption(None, 4096) == [] and M.tokenize_caption("", 4096) == []
    cond = M.HashedTextConditioner(output_dim=8, n_bins=4096, dim=16)
    emb, mask = cond(cond.tokenize([f"{UUID} calm", "calm", None]))
    assert emb.shape[:2] == mask.shape == (3, 2)
    assert mask.tolist() == [[1, 1], [1, 0], [0, 0]]
    assert not torch.allclose(emb[0, 0], emb[1, 0])  # the caption with the UUID starts differently
    assert torch.all(emb[2] == 0)


def test_captions_condition_the_nano_lm(nano: MusicGen) -> None:
    codes = torch.randint(0, nano.lm.card, (1, 4, 20))
    a = _logits(nano, codes, [f"{UUID} energetic track"])
    b = _logits(nano, codes, ["calm dark ballad"])
    assert not torch.allclose(a, b)


def test_export_round_trips_through_get_pretrained(nano: MusicGen, tmp_path: Path) -> None:
    out = M.export_model(nano, tmp_path / "export")
    assert sorted(p.name for p in out.iterdir()) == ["compression_state_dict.bin", "state_dict.bin"]
    pkg = torch.load(out / "state_dict.bin", weights_only=False)
    assert {"best_state", "xp.cfg", "version", "exported"} <= set(pkg)
    loaded = MusicGen.get_pretrained(str(out), device="cpu")
    assert M.state_fingerprint(loaded.lm) == M.state_fingerprint(nano.lm)
    assert M.state_fingerprint(loaded.compression_model) == M.state_fingerprint(nano.compression_model)
    codes = torch.randint(0, nano.lm.card, (2, 4, 30))
    caps = [f"{UUID} energetic", None]
    assert torch.equal(_logits(loaded, codes, caps), _logits(nano, codes, caps))
    loaded.set_generation_params(duration=1.0, top_k=10)
    wav = loaded.generate_continuation(torch.zeros(1, 1, 16000), 32000, [f"{UUID} energetic"])
    assert wav.shape == (1, 1, 32000)
    again = M.load_model(out, device="cpu")  # the package's loader: same weights, re-exportable
    M.export_model(again, tmp_path / "again")
    reloaded = MusicGen.get_pretrained(str(tmp_path / "again"), "cpu")
    assert M.state_fingerprint(reloaded.lm) == M.state_fingerprint(nano.lm)


def test_load_model_nano_is_the_shipped_model_and_nano_random_uses_the_seed(nano: MusicGen) -> None:
    params = load_params("params/smoke.yaml")
    assert params.train.model == M.NANO and params.seed == SEED
    shipped = MusicGen.get_pretrained(str(M.NANO_DIR), device="cpu")  # pre-trained: tests/test_pretrain.py
    assert M.state_fingerprint(M.load_model(params, device="cpu").lm) == M.state_fingerprint(shipped.lm)
    assert M.resolve_model_name(params) == str(M.NANO_DIR)  # so fine-tuning fingerprints hash its files
    random_init = M.load_model(M.NANO_RANDOM, device="cpu", seed=SEED)
    assert M.state_fingerprint(random_init.lm) == M.state_fingerprint(nano.lm)


def test_load_model_rejects_a_directory_without_an_export(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="state_dict.bin"):
        M.load_model(tmp_path, device="cpu")


def test_missing_paper_weights_fail_fast_with_instructions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def no_socket(*args: object, **kwargs: object) -> None:
        raise AssertionError("the weights check must not probe the network itself")

    monkeypatch.setattr(socket, "create_connection", no_socket)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(M.hub, "hf_cached_path", lambda repo, filename: None)  # whatever this machine has cached
    params = load_params("params/paper.yaml", {"run_dir": str(tmp_path / "run")})
    start = time.perf_counter()
    with pytest.raises(M.ModelWeightsMissing) as err:
        M.load_model(params, device="cpu")
    assert time.perf_counter() - start < 5  # no retries against an unreachable hub
    msg = str(err.value)
    for needed in ("facebook/musicgen-melody/state_dict.bin", "facebook/musicgen-melody/compression_state_dict.bin",
                   "t5-base/spiece.model", "t5-base/model.safetensors", "htdemucs",
                   str(tmp_path / "torch" / "hub" / "checkpoints" / M.HTDEMUCS_CHECKPOINT), str(tmp_path / "hf"),
                   "HF_HUB_OFFLINE=1", "nano", *M.download_commands()):
        assert needed in msg
    # get_pretrained("facebook/musicgen-melody") reads the melody repo's own compression package
    assert "encodec_32khz" not in msg


def test_download_failure_is_reported_as_missing_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub.errors import LocalEntryNotFoundError

    def unreachable(*args: object, **kwargs: object) -> None:
        raise LocalEntryNotFoundError("cannot reach the hub")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # online: the hub client (with its proxy settings) tries, and fails
    monkeypatch.setattr(MusicGen, "get_pretrained", staticmethod(unreachable))
    with pytest.raises(M.ModelWeightsMissing, match="huggingface-cli download facebook/musicgen-melody"):
        M.load_pretrained(M.MELODY)


# --------------------------------------------------------------------------- random-init stand-ins


def _tiny_t5_tokenizer(workdir: Path) -> T5Tokenizer:
    """A T5 tokenizer over a sentencepiece model trained here on a few words (no download)."""
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
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tokenizer = _tiny_t5_tokenizer(workdir)

    def t5_model(name: str, *args: object, **kwargs: object) -> T5EncoderModel:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            cfg = T5Config(vocab_size=len(tokenizer), d_model=ac_cond.T5Conditioner.MODELS_DIMS[name], d_kv=16,
                           d_ff=64, num_layers=1, num_heads=2)
            return T5EncoderModel(cfg).eval()

    def demucs_model(name: str, *args: object, **kwargs: object) -> HTDemucs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = HTDemucs(sources=["drums", "bass", "other", "vocals"], channels=4, depth=2, t_layers=1,
                             t_heads=1, nfft=512, dconv_comp=2, t_hidden_scale=1.0, segment=4)
            return model.eval()

    with mock.patch.object(ac_cond.T5Tokenizer, "from_pretrained", side_effect=lambda *a, **k: tokenizer), \
         mock.patch.object(ac_cond.T5EncoderModel, "from_pretrained", side_effect=t5_model), \
         mock.patch.object(demucs.pretrained, "get_model", side_effect=demucs_model):
        yield


@pytest.fixture(scope="module")
def melody_parts(tmp_path_factory: pytest.TempPathFactory):
    """T5 and demucs as tiny random-init stand-ins for the whole module."""
    with random_init_pretrained_parts(tmp_path_factory.mktemp("parts")):
        yield


def _reduced_melody_config():
    """musicgen-melody's architecture at a test size."""
    cfg = M.melody_config(dim=32, num_layers=1, num_heads=2, card=64, codec_filters=2, codec_dimension=16)
    cfg.rvq.kmeans_iters = 5  # construction speed only
    return cfg


def test_paper_profile_architecture_builds_exports_and_loads(melody_parts: None, tmp_path: Path) -> None:
    full = M.melody_config()
    assert full.transformer_lm.dim == 1536 and full.transformer_lm.num_layers == 48
    assert full.conditioners.description.t5.name == "t5-base"
    model = M.build_from_config(_reduced_melody_config(), seed=0, name="melody-reduced")
    conds = model.lm.condition_provider.conditioners
    assert isinstance(conds["self_wav"], ChromaStemConditioner) and isinstance(conds["description"], T5Conditioner)
    assert model.lm.fuser.fuse2cond["prepend"] == ["self_wav", "description"]
    assert model.frame_rate == 50 and model.lm.num_codebooks == 4
    assert model.lm.att_dropout.p["wav"]["self_wav"] == 0.5
    out = M.export_model(model, tmp_path / "melody")
    loaded = M.load_model(out, device="cpu")  # audiocraft's loader with the T5/chroma config
    assert M.state_fingerprint(loaded.lm) == M.state_fingerprint(model.lm)
    assert M.state_fingerprint(loaded.compression_model) == M.state_fingerprint(model.compression_model)


def test_paper_profile_trains_from_cached_tokens_and_chroma(melody_parts: None, tmp_path: Path) -> None:
    from silicon_sing import tokens as tk
    from silicon_sing.data import TrainingExample
    from silicon_sing.train import LMLoss, apply_condition_dropout, make_attributes

    model = M.build_from_config(_reduced_melody_config(), seed=0, name="melody-reduced")
    path = tmp_path / "seg.wav"
    t = np.arange(32000) / 32000
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 32000)
    directory = tk.cache_dir(tmp_path / "tokens", "full", tk.compression_fingerprint(model.compression_model))
    codes = tk.load_codes(tk.build_token_cache(model.compression_model, [path], directory)[0])
    assert tk.enable_chroma_cache(model.lm, directory / "chroma")
    assert tk.build_chroma_cache(model.lm, [path], 32000, 32000) == 1
    assert tk.build_chroma_cache(model.lm, [path], 32000, 32000) == 0  # cached
    ex = TrainingExample(str(path), f"{UUID} happy", {"duration": 1.0})
    model.lm.train()
    loss_fn = LMLoss(model.lm)
    attrs = make_attributes(model.lm, [ex, ex], [ex.description, "calm"], [None, None], 32000)
    loss, sums, counts = loss_fn(torch.stack([codes, codes]), attrs)
    assert torch.isfinite(loss) and counts.tolist() == [100, 98, 96, 94]  # 2 × (50 − delay) per codebook
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.lm.parameters() if p.grad is not None)
    dropped = apply_condition_dropout(model.lm, make_attributes(model.lm, [ex], [ex.description], [None], 32000),
                                      np.random.default_rng(0), cfg_dropout=1.0)
    assert dropped[0].text["description"] is None and dropped[0].wav["self_wav"].wav.shape[-1] == 1
    assert torch.isfinite(loss_fn(codes[None], dropped)[0])
