"""The rehearsal caches: the paper profile's loaders, unchanged, read random-init weights offline.

The caches are built once per module; everything that loads them runs in a fresh Python process
whose environment only adds the variables the builder returns, so nothing imported or patched in
this process can stand in for the caches.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from silicon_sing import rehearsal as R
from silicon_sing.fsutil import read_json

REPO = Path(__file__).resolve().parents[1]
LM_LAYERS, T5_LAYERS, SEED = 2, 1, 0

PROBE = textwrap.dedent(r'''
    import json, os, sys, time
    import numpy as np
    import torch

    torch.set_num_threads(1)  # a shared 2-core machine: two threads contending with other work run many times slower
    facts, seconds = {}, {}
    from audiocraft.models import MusicGen
    from audiocraft.modules.conditioners import ChromaStemConditioner, T5Conditioner
    from transformers import T5EncoderModel

    t0 = time.perf_counter()
    model = MusicGen.get_pretrained("facebook/musicgen-melody", device="cpu")
    seconds["musicgen_load"] = time.perf_counter() - t0
    lm, codec = model.lm, model.compression_model
    conds = lm.condition_provider.conditioners
    t5c, chroma = conds["description"], conds["self_wav"]
    facts["lm"] = {"dim": lm.dim, "heads": lm.transformer.layers[0].self_attn.num_heads,
                   "layers": len(lm.transformer.layers), "n_q": lm.num_codebooks, "card": lm.card,
                   "dtype": str(next(lm.parameters()).dtype), "fuser_prepend": sorted(lm.fuser.fuse2cond["prepend"])}
    facts["t5"] = {"is_t5_conditioner": isinstance(t5c, T5Conditioner), "name": t5c.name,
                   "proj": [t5c.output_proj.in_features, t5c.output_proj.out_features],
                   "encoder": type(t5c.t5).__name__, "is_encoder": isinstance(t5c.t5, T5EncoderModel),
                   "d_model": t5c.t5.config.d_model, "layers": t5c.t5.config.num_layers,
                   "vocab_size": t5c.t5.config.vocab_size, "tokenizer": type(t5c.t5_tokenizer).__name__}
    caption = "7c9e6679-7425-40de-944b-e07fc1f90ae7 energetic pop track with female vocals over guitar, 120 BPM, in F# minor"
    ids = list(t5c.t5_tokenizer([caption])["input_ids"][0])
    facts["t5"]["caption_ids"] = len(ids)
    facts["t5"]["caption_unknown"] = ids.count(t5c.t5_tokenizer.unk_token_id)
    demucs = chroma.demucs
    facts["chroma"] = {"is_chroma_stem": isinstance(chroma, ChromaStemConditioner),
                       "proj": [chroma.output_proj.in_features, chroma.output_proj.out_features],
                       "demucs": type(demucs).__name__, "models": [type(m).__name__ for m in demucs.models],
                       "sources": list(demucs.sources), "samplerate": demucs.samplerate,
                       "segment": float(demucs.models[0].segment)}
    facts["codec"] = {"sample_rate": codec.sample_rate, "frame_rate": codec.frame_rate,
                      "n_q": codec.num_codebooks, "card": codec.cardinality}

    # the loaded weights are the cached ones (the hub files resolve through HF_HOME / TORCH_HOME)
    from huggingface_hub import hf_hub_download
    from safetensors import safe_open
    pkg = torch.load(hf_hub_download("facebook/musicgen-melody", "state_dict.bin"), map_location="cpu")
    stored = pkg["best_state"]["transformer.layers.0.self_attn.in_proj_weight"]
    facts["weights_from_cache"] = {
        "lm": bool(torch.equal(lm.state_dict()["transformer.layers.0.self_attn.in_proj_weight"], stored.float())),
        "lm_stored_dtype": str(stored.dtype)}
    with safe_open(hf_hub_download("t5-base", "model.safetensors"), framework="pt") as f:
        facts["weights_from_cache"]["t5"] = bool(torch.equal(
            t5c.t5.encoder.block[0].layer[0].SelfAttention.q.weight, f.get_tensor("encoder.block.0.layer.0.SelfAttention.q.weight")))
    demucs_pkg = torch.load(os.path.join(torch.hub.get_dir(), "checkpoints", "955717e8-8726e21a.th"), weights_only=False)
    facts["weights_from_cache"]["demucs"] = all(
        torch.equal(v.float(), demucs_pkg["state"][k].float()) for k, v in demucs.models[0].state_dict().items())

    demucs_calls = []
    demucs.models[0].register_forward_hook(lambda m, i, o: demucs_calls.append(tuple(i[0].shape)))
    model.set_generation_params(duration=0.5)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    text = model.generate(["calm jazz tune with piano, 80 BPM"], progress=False)
    seconds["generate_text"] = time.perf_counter() - t0
    facts["generate_text"] = {"shape": list(text.shape), "finite": bool(torch.isfinite(text).all()),
                              "demucs_calls": len(demucs_calls)}
    t = torch.arange(3 * 32000) / 32000
    melody = (0.3 * torch.sin(2 * torch.pi * 440.0 * t) + 0.2 * torch.sin(2 * torch.pi * 554.4 * t))[None, None]
    t0 = time.perf_counter()
    with_chroma = model.generate_with_chroma(["dark rock song"], melody, 32000, progress=False)
    seconds["generate_with_chroma"] = time.perf_counter() - t0
    facts["generate_with_chroma"] = {"shape": list(with_chroma.shape), "finite": bool(torch.isfinite(with_chroma).all()),
                                     "demucs_calls": len(demucs_calls)}

    from silicon_sing.metrics.backends import PasstBackend, VggishBackend, hub_checkpoint_dir
    from silicon_sing.models import missing_pretrained_files
    audio = np.random.default_rng(0).standard_normal(3 * 32000).astype(np.float32) * 0.1
    t0 = time.perf_counter()
    passt = PasstBackend(pretrained=True, device="cpu")
    seconds["passt_load"] = time.perf_counter() - t0
    probs = passt.window_probs(audio, 32000)
    t0 = time.perf_counter()
    vggish = VggishBackend(pretrained=True, device="cpu")
    seconds["vggish_load"] = time.perf_counter() - t0
    emb = vggish.embed(audio, 32000)
    facts["passt"] = {"weights": str(passt.weights_path), "shape": list(probs.shape),
                      "sums": probs.sum(axis=-1).tolist()}
    facts["vggish"] = {"weights": str(vggish.weights_path), "shape": list(emb.shape),
                       "finite": bool(np.isfinite(emb).all())}
    facts["hub_checkpoint_dir"] = str(hub_checkpoint_dir())
    facts["missing"] = missing_pretrained_files("facebook/musicgen-melody")
    print("PROBE " + json.dumps({"facts": facts, "seconds": seconds}, default=lambda o: o.item()))
''')


def _hashes(root: Path) -> dict[str, str]:
    """sha256 of every file of a build, keyed by its name (revisions differ only through contents)."""
    out = {}
    for p in R.expected_files(root):
        out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _snapshots(root: Path, repo_id: str) -> list[str]:
    """The snapshot revisions present for ``repo_id`` in a build's hub cache."""
    return sorted(p.name for p in (R.hf_repo_dir(root / "huggingface" / "hub", repo_id) / "snapshots").iterdir())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], float]:
    """One build of the caches: (root, returned env, seconds)."""
    root = tmp_path_factory.mktemp("rehearsal")
    t0 = time.perf_counter()
    env = R.build_rehearsal_caches(root, lm_layers=LM_LAYERS, t5_layers=T5_LAYERS, seed=SEED, progress=False)
    return root, env, time.perf_counter() - t0


@pytest.fixture(scope="module")
def probe(built: tuple[Path, dict[str, str], float]) -> dict:
    """The paper's loaders run in a fresh process with only the rehearsal env added."""
    root, env, _ = built
    child_env = {**os.environ, **env,
                 "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", PROBE], env=child_env, capture_output=True, text=True,
                          timeout=600, cwd=root)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("PROBE ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    return json.loads(lines[-1][len("PROBE "):])


def test_env_selects_the_caches(built: tuple[Path, dict[str, str], float]) -> None:
    root, env, _ = built
    assert env == {"HF_HOME": str(root / "huggingface"), "TORCH_HOME": str(root / "torch"),
                   "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    hub = root / "huggingface" / "hub"
    for repo in (R.MELODY_REPO, R.T5_REPO):
        repo_dir = R.hf_repo_dir(hub, repo)
        rev = (repo_dir / "refs" / "main").read_text()
        assert len(rev) == 40 and _snapshots(root, repo) == [rev]
        for link in (repo_dir / "snapshots" / rev).iterdir():  # snapshot entries link to blobs named by etag
            assert link.is_symlink() and link.resolve().parent == (repo_dir / "blobs").resolve()


def test_musicgen_melody_loads_by_hub_name_at_full_width(probe: dict) -> None:
    f = probe["facts"]
    assert f["lm"] == {"dim": 1536, "heads": 24, "layers": LM_LAYERS, "n_q": 4, "card": 2048,
                       "dtype": "torch.float32", "fuser_prepend": ["description", "self_wav"]}
    assert f["codec"] == {"sample_rate": 32000, "frame_rate": 50, "n_q": 4, "card": 2048}
    assert f["weights_from_cache"] == {"lm": True, "lm_stored_dtype": "torch.float16", "t5": True, "demucs": True}


def test_conditioners_are_t5_base_and_chroma_stem(probe: dict) -> None:
    t5, chroma = probe["facts"]["t5"], probe["facts"]["chroma"]
    assert t5["is_t5_conditioner"] and t5["name"] == "t5-base" and t5["proj"] == [768, 1536]
    assert t5["is_encoder"] and t5["d_model"] == 768 and t5["layers"] == T5_LAYERS and t5["vocab_size"] == 32128
    assert t5["tokenizer"] == "T5Tokenizer"
    assert t5["caption_ids"] > 10 and t5["caption_unknown"] == 0  # the UUID and the words are in the vocabulary
    assert chroma["is_chroma_stem"] and chroma["proj"] == [12, 1536]
    assert chroma["demucs"] == "BagOfModels" and chroma["models"] == ["HTDemucs"]
    assert chroma["sources"] == ["drums", "bass", "other", "vocals"]
    assert chroma["samplerate"] == 44100 and chroma["segment"] == pytest.approx(7.8)


def test_generation_from_caption_and_melody(probe: dict) -> None:
    text, melody = probe["facts"]["generate_text"], probe["facts"]["generate_with_chroma"]
    assert text["shape"] == [1, 1, 16000] and text["finite"]
    assert melody["shape"] == [1, 1, 16000] and melody["finite"]
    assert text["demucs_calls"] == 0 and melody["demucs_calls"] >= 1  # demucs separated the melody's stems


def test_metric_backends_load_the_cached_weights(probe: dict, built: tuple[Path, dict[str, str], float]) -> None:
    root, _, _ = built
    f = probe["facts"]
    checkpoints = root / "torch" / "hub" / "checkpoints"
    assert f["hub_checkpoint_dir"] == str(checkpoints)
    assert f["passt"]["weights"] == str(checkpoints / R.PASST_CHECKPOINT)
    assert f["passt"]["shape"] == [1, 527] and f["passt"]["sums"] == pytest.approx([1.0], abs=1e-4)
    assert f["vggish"]["weights"] == str(checkpoints / R.VGGISH_CHECKPOINT)
    assert f["vggish"]["shape"] == [3, 128] and f["vggish"]["finite"]


def test_checkpoints_load_as_plain_tensors(built: tuple[Path, dict[str, str], float]) -> None:
    import torch

    root, _, _ = built
    checkpoints = root / "torch" / "hub" / "checkpoints"
    passt = torch.load(checkpoints / R.PASST_CHECKPOINT, map_location="cpu", weights_only=True)
    assert {"cls_token", "dist_token", "new_pos_embed", "freq_new_pos_embed", "time_new_pos_embed",
            "patch_embed.proj.weight", "head.1.weight", "head_dist.weight"} <= set(passt)
    assert passt["head.1.weight"].shape == (527, 768) and len({k.split(".")[1] for k in passt if k.startswith("blocks.")}) == 12
    vggish = torch.load(checkpoints / R.VGGISH_CHECKPOINT, map_location="cpu", weights_only=True)
    assert vggish["embeddings.4.weight"].shape == (128, 4096) and all(k.split(".")[0] in ("features", "embeddings")
                                                                      for k in vggish)


def test_the_weights_check_finds_everything_the_loaders_read(probe: dict) -> None:
    """Exactly what get_pretrained reads (no facebook/encodec_32khz, which the melody repo does not need)."""
    assert probe["facts"]["missing"] == []


def test_rerun_with_the_same_spec_does_nothing(built: tuple[Path, dict[str, str], float]) -> None:
    root, env, _ = built
    files = [*R.expected_files(root), root / R.STAMP_FILE]
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}
    t0 = time.perf_counter()
    again = R.build_rehearsal_caches(root, lm_layers=LM_LAYERS, t5_layers=T5_LAYERS, seed=SEED, progress=False)
    assert time.perf_counter() - t0 < 5.0
    assert again == env
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files} == before


def test_output_is_deterministic_and_a_new_spec_rebuilds(built: tuple[Path, dict[str, str], float],
                                                        tmp_path: Path) -> None:
    root, _, _ = built
    R.build_rehearsal_caches(tmp_path, lm_layers=LM_LAYERS, t5_layers=T5_LAYERS, seed=SEED, progress=False)
    first, second = _hashes(root), _hashes(tmp_path)
    assert second == first and "state_dict.bin" in second
    for repo in (R.MELODY_REPO, R.T5_REPO):
        assert _snapshots(tmp_path, repo) == _snapshots(root, repo)

    R.build_rehearsal_caches(tmp_path, lm_layers=LM_LAYERS, t5_layers=T5_LAYERS, seed=SEED + 1, progress=False)
    other = _hashes(tmp_path)
    assert read_json(tmp_path / R.STAMP_FILE)["spec"]["seed"] == SEED + 1
    assert {k for k in other if other[k] != first[k]} >= {"state_dict.bin", "compression_state_dict.bin",
                                                          "model.safetensors", R.DEMUCS_CHECKPOINT,
                                                          R.PASST_CHECKPOINT, R.VGGISH_CHECKPOINT}
    for repo in (R.MELODY_REPO, R.T5_REPO):  # the previous revision is gone
        assert len(_snapshots(tmp_path, repo)) == 1 and _snapshots(tmp_path, repo) != _snapshots(root, repo)


def test_a_root_not_made_by_the_builder_is_never_overwritten(tmp_path: Path) -> None:
    real_ref = R.hf_repo_dir(tmp_path / "huggingface" / "hub", R.T5_REPO) / "refs" / "main"
    real_ref.parent.mkdir(parents=True)
    real_ref.write_text("a real download's revision")
    with pytest.raises(FileExistsError, match="not a rehearsal cache root"):
        R.build_rehearsal_caches(tmp_path, progress=False)
    assert real_ref.read_text() == "a real download's revision" and not (tmp_path / R.STAMP_FILE).exists()
