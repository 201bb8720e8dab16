"""Rehearsal caches: the paper profile's pretrained models as random-init stand-ins, offline.

The paper profile loads ``facebook/musicgen-melody`` with ``MusicGen.get_pretrained`` (LM +
32 kHz EnCodec from the Hugging Face hub, T5-base through transformers, demucs ``htdemucs``
through demucs' remote repository) and scores with PaSST (hear21passt) and VGGish (torchvggish)
weights from the torch hub cache. None of those weights can be downloaded on a machine without
internet access, so :func:`build_rehearsal_caches` writes *random-init* weights laid out exactly
as those caches lay out the real ones:

``<root>/huggingface/hub/`` (``HF_HOME=<root>/huggingface``)
    ``models--facebook--musicgen-melody``: ``state_dict.bin`` (the LM at full width — dim 1536,
    24 heads, 4 codebooks of 2048, T5 + chroma prepended — with ``lm_layers`` layers, float16 as
    released) and ``compression_state_dict.bin`` (full-width 32 kHz EnCodec, 50 Hz, 4 codebooks);
    ``models--t5-base``: ``config.json`` (t5-base's width with ``t5_layers`` layers),
    ``generation_config.json``, ``model.safetensors`` (a random-init T5ForConditionalGeneration,
    like the real checkpoint) and a SentencePiece ``spiece.model`` trained here on caption-like
    sentences. Files are blobs named by their etag, linked from ``snapshots/<revision>/``, with
    ``refs/main`` naming the revision, as ``huggingface_hub`` stores downloads.
``<root>/torch/hub/checkpoints/`` (``TORCH_HOME=<root>/torch``)
    ``955717e8-8726e21a.th`` (demucs' ``htdemucs``: an HTDemucs package — ``klass``, ``args``,
    ``kwargs``, half-precision ``state`` — as demucs' remote repository serves it),
    ``passt-s-f128-p16-s10-ap.476-swa.pt`` (PaSST-S state dict) and ``vggish-10086976.pth`` (VGGish
    state dict), both full size.

Besides depth (``lm_layers``, ``t5_layers``), one architectural difference: by default the
HTDemucs is *narrower* than the release (:data:`HTDEMUCS_NARROW`: 24 channels instead of 48, a
256-channel 2-layer cross-transformer instead of 512 channels and 5 layers; same class, 4 sources,
44.1 kHz, STFT and 7.8 s segment, so demucs pads and splits audio as with the release). Measured on one CPU core of the development
machine, ``ChromaStemConditioner`` on a 3 s clip takes 3.5-5.8 s at the released width (demucs
always runs whole 7.8 s chunks) and ~1.9 s narrow; on a 30 s clip ~27 s and ~10 s.
``full_demucs=True`` writes the released architecture.

With the returned environment (``HF_HOME``, ``TORCH_HOME``, ``HF_HUB_OFFLINE=1``,
``TRANSFORMERS_OFFLINE=1``) the paper's loaders run unchanged: ``MusicGen.get_pretrained(
"facebook/musicgen-melody")``, ``PasstBackend(pretrained=True)``, ``VggishBackend(pretrained=True)``.
Their outputs are meaningless; the point is the code path (shapes, dtypes, conditioners, demucs,
export, generation, metrics) at the real width. The paper profile itself never uses this module.

demucs 4.1 first looks for ``htdemucs`` on the Hugging Face hub (``adefossez/HTDemucs``) and falls
back, on any error, to the torch hub checkpoint written here; offline, that lookup fails at once.

Output is deterministic given the seed (byte-identical files) and the library versions recorded in
the stamp file ``<root>/rehearsal.json``; a rerun with the same spec returns without work, another
spec rebuilds. Usage: ``python scripts/make_rehearsal_caches.py --root /tmp/rehearsal``.

torch, transformers, demucs, audiocraft, hear21passt and torchvggish are imported inside the
builders that use them (``# lazy``): :func:`rehearsal_env`, :func:`is_built` and
:func:`export_lines`, which decide whether a build is needed, import none of them.

Kept as one module of ~520 lines: it is one recipe — the cache layout (which file goes where, named
as the hub clients name it) and the builders of the files in it — and the layout functions and the
builders change together whenever a library's cache format does.

Notebook: notebooks/06_reproduce.ipynb (rehearsing the paper profile offline)
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.metadata
import io
import logging
import os
import random
import shlex
import shutil
import tempfile
import time
import typing as tp
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from unittest import mock

from .fsutil import atomic_write_bytes, atomic_write_json, read_json

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
STAMP_FILE = "rehearsal.json"
MELODY_REPO = "facebook/musicgen-melody"
T5_REPO = "t5-base"
DEMUCS_CHECKPOINT = "955717e8-8726e21a.th"  # demucs/remote/files.txt: hybrid_transformer/, bag htdemucs.yaml
PASST_CHECKPOINT = "passt-s-f128-p16-s10-ap.476-swa.pt"
VGGISH_CHECKPOINT = "vggish-10086976.pth"
DEMUCS_SOURCES = ["drums", "bass", "other", "vocals"]
# The constructor arguments stored in the released htdemucs package (pkg["kwargs"]); the others
# of HTDemucs.__init__ keep their defaults there too.
HTDEMUCS_KWARGS: dict[str, tp.Any] = {
    "sources": DEMUCS_SOURCES, "audio_channels": 2, "samplerate": 44100, "segment": Fraction(39, 5),
    "channels": 48, "channels_time": None, "growth": 2, "nfft": 4096, "wiener_iters": 0, "end_iters": 0,
    "wiener_residual": False, "cac": True, "depth": 4, "rewrite": True, "multi_freqs": [],
    "multi_freqs_depth": 3, "freq_emb": 0.2, "emb_scale": 10, "emb_smooth": True, "kernel_size": 8,
    "stride": 4, "time_stride": 2, "context": 1, "context_enc": 0, "norm_starts": 4, "norm_groups": 4,
    "dconv_mode": 3, "dconv_depth": 2, "dconv_comp": 8, "dconv_init": 1e-3, "bottom_channels": 512,
    "t_layers": 5, "t_hidden_scale": 4.0, "t_heads": 8, "t_dropout": 0.02, "t_layer_scale": True,
    "t_gelu": True, "t_emb": "sin", "t_max_positions": 10000, "t_max_period": 10000.0,
    "t_weight_pos_embed": 1.0, "t_sparse_self_attn": False, "t_sparse_cross_attn": False,
    "t_cross_first": False, "rescale": 0.1,
}
# The rehearsal's default htdemucs: same class, sources, sample rate, STFT and 7.8 s segment (so
# demucs pads and splits audio exactly as with the release), narrower. The released width costs
# ~4.6 s of one CPU core per 7.8 s chunk (demucs' part of the chroma of a 3 s clip) on the
# development machine, this one ~1.6 s; ``full_demucs=True`` writes the released architecture.
HTDEMUCS_NARROW = {"channels": 24, "bottom_channels": 256, "t_layers": 2}
# Distributions whose versions decide the bytes written (recorded in the stamp).
VERSIONED = ("audiocraft", "torch", "transformers", "safetensors", "sentencepiece", "demucs", "hear21passt",
             "timm", "torchvggish", "omegaconf")


# --------------------------------------------------------------------------- spec and environment

def rehearsal_env(root: str | os.PathLike[str]) -> dict[str, str]:
    """The environment variables that make the paper's loaders read the rehearsal caches under ``root``."""
    root = Path(root).resolve()
    return {"HF_HOME": str(root / "huggingface"), "TORCH_HOME": str(root / "torch"),
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _version(dist: str) -> str:
    """Installed version of a distribution, or 'absent'."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def rehearsal_spec(lm_layers: int = 4, t5_layers: int = 2, seed: int = 0, full_demucs: bool = False
                   ) -> dict[str, tp.Any]:
    """Everything that decides the caches' bytes: sizes, seed, format and library versions."""
    return {"format": FORMAT_VERSION, "lm_layers": int(lm_layers), "t5_layers": int(t5_layers), "seed": int(seed),
            "full_demucs": bool(full_demucs), "versions": {d: _version(d) for d in VERSIONED}}


def _hub_dir(root: Path) -> Path:
    """``$HF_HOME/hub``: the Hugging Face hub cache."""
    return root / "huggingface" / "hub"


def _checkpoint_dir(root: Path) -> Path:
    """``$TORCH_HOME/hub/checkpoints``: where torch.hub (and timm) cache weights."""
    return root / "torch" / "hub" / "checkpoints"


def hf_repo_dir(hub: Path, repo_id: str) -> Path:
    """A model repository's folder in a hub cache (``models--owner--name``)."""
    return hub / ("models--" + repo_id.replace("/", "--"))


def _managed_paths(root: Path) -> list[Path]:
    """Everything the builder writes (removed before a rebuild)."""
    hub, ckpt = _hub_dir(root), _checkpoint_dir(root)
    return [hf_repo_dir(hub, MELODY_REPO), hf_repo_dir(hub, T5_REPO),
            *(ckpt / f for f in (DEMUCS_CHECKPOINT, PASST_CHECKPOINT, VGGISH_CHECKPOINT))]


def expected_files(root: str | os.PathLike[str]) -> list[Path]:
    """The files a complete build has (the loaders' view: snapshot entries and hub checkpoints)."""
    root = Path(root).resolve()
    hub, files = _hub_dir(root), []
    for repo, names in ((MELODY_REPO, ("state_dict.bin", "compression_state_dict.bin")),
                        (T5_REPO, ("config.json", "generation_config.json", "model.safetensors", "spiece.model"))):
        ref = hf_repo_dir(hub, repo) / "refs" / "main"
        rev = ref.read_text().strip() if ref.is_file() else "<missing>"
        files += [hf_repo_dir(hub, repo) / "snapshots" / rev / n for n in names]
    return files + [_checkpoint_dir(root) / f for f in (DEMUCS_CHECKPOINT, PASST_CHECKPOINT, VGGISH_CHECKPOINT)]


def is_built(root: str | os.PathLike[str], spec: dict[str, tp.Any]) -> bool:
    """Whether ``root`` holds a complete build of exactly ``spec``."""
    stamp = Path(root) / STAMP_FILE
    if not stamp.is_file():
        return False
    try:
        recorded = read_json(stamp)
    except (OSError, ValueError):
        return False
    return (recorded.get("status") == "complete" and recorded.get("spec") == spec
            and all(p.is_file() for p in expected_files(root)))


# --------------------------------------------------------------------------- writing

def _seed_for(seed: int, component: str) -> int:
    """A per-component torch seed derived from the build seed."""
    return int(hashlib.sha1(f"rehearsal|{seed}|{component}".encode()).hexdigest()[:8], 16)


def torch_bytes(obj: tp.Any) -> bytes:
    """``torch.save(obj)`` as bytes; saved to memory so the zip records do not carry a temporary file name."""
    import torch  # lazy: heavy, builders only

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _etag(name: str, data: bytes) -> str:
    """The hub's etag: sha256 for LFS-tracked files (weights, ``*.model``), git's blob sha1 for text files."""
    if name.endswith((".json", ".txt", ".md")):
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return hashlib.sha256(data).hexdigest()


def _atomic_symlink(target: str, link: Path) -> None:
    """Create or replace the symlink ``link`` → ``target`` atomically."""
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


def write_hf_snapshot(hub: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """Store ``files`` as one revision of ``repo_id`` in a hub cache, as ``huggingface_hub`` does; return the snapshot.

    Blobs are named by etag; ``snapshots/<rev>/<name>`` links to them; ``refs/main`` (written last)
    holds the revision, a sha1 over the names and etags (so it changes whenever a file does).
    """
    repo = hf_repo_dir(hub, repo_id)
    etags = {name: _etag(name, data) for name, data in files.items()}
    revision = hashlib.sha1("".join(f"{n}\0{etags[n]}\n" for n in sorted(files)).encode()).hexdigest()
    snapshot = repo / "snapshots" / revision
    for name, data in files.items():
        blob = repo / "blobs" / etags[name]
        if not blob.is_file():
            atomic_write_bytes(blob, data).chmod(0o644)
        _atomic_symlink(os.path.relpath(blob, (snapshot / name).parent), snapshot / name)
    atomic_write_bytes(repo / "refs" / "main", revision.encode())  # no newline, as huggingface_hub
    return snapshot


def write_checkpoint(directory: Path, name: str, data: bytes) -> Path:
    """Write a torch hub checkpoint atomically (world-readable, like a download)."""
    path = atomic_write_bytes(directory / name, data)
    path.chmod(0o644)
    return path


# --------------------------------------------------------------------------- T5-base

CAPTION_WORDS: dict[str, list[str]] = {
    "mood": ["energetic", "upbeat", "happy", "uplifting", "fun", "dark", "powerful", "dramatic", "heavy", "epic",
             "relaxing", "calm", "romantic", "hopeful", "soft", "melancholic", "sad", "emotional", "deep", "slow",
             "dreamy", "cinematic", "laid-back", "steady", "high-energy"],
    "genre": ["pop", "rock", "jazz", "hip hop", "electronic", "folk", "soul", "funk", "r&b", "classical",
              "country", "reggae", "metal", "ambient", "blues", "indie"],
    "instrument": ["guitar", "piano", "drums", "bass", "synth", "strings", "organ", "saxophone", "trumpet",
                   "violin", "percussion", "electric guitar", "acoustic guitar", "pads"],
    "body": ["track", "song", "tune", "instrumental", "backing track without vocals", "beat", "vocal track",
             "a cappella vocals", "unaccompanied singing", "isolated vocals"],
    "voice": ["male vocals", "female vocals", "high voice", "low voice", "breathy singing", "bright voice"],
    "key": ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"],
    "scale": ["major", "minor"],
}


def caption_sentences(n: int = 400, seed: int = 0) -> list[str]:
    """``n`` caption-like sentences (UUID prefix, mood, genre, instruments, BPM, key), deterministic."""
    rng = random.Random(seed)
    w = CAPTION_WORDS
    out = []
    for _ in range(n):
        uuid = "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}".format(*(rng.getrandbits(b) for b in (32, 16, 16, 16, 48)))
        body = f"{rng.choice(w['mood'])} {rng.choice(w['genre'])} {rng.choice(w['body'])}"
        if rng.random() < 0.5:
            body += f" with {rng.choice(w['voice'])}"
        body += " over " + " and ".join(rng.sample(w["instrument"], rng.randint(1, 3)))
        tail = [f"{rng.randint(60, 180)} BPM", f"in {rng.choice(w['key'])} {rng.choice(w['scale'])}"]
        rng.shuffle(tail)
        out.append(", ".join([f"{uuid} {body}", *tail]))
    return out


def train_spiece_model(seed: int = 0, vocab_size: int = 512) -> bytes:
    """A SentencePiece unigram model with T5's special ids (pad 0, eos 1, unk 2, no bos), trained on captions.

    Single-threaded with a fixed random seed, so the bytes are reproducible.
    """
    import sentencepiece as spm  # lazy: see the module docstring (heavy libraries only inside the builders)

    spm.set_random_generator_seed(seed + 1)  # sentencepiece ignores seed 0 ("not set")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(caption_sentences(seed=seed)), model_writer=model, vocab_size=vocab_size,
        hard_vocab_limit=False, model_type="unigram", character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2,
        bos_id=-1, num_threads=1, minloglevel=2)
    return model.getvalue()


def t5_files(t5_layers: int, seed: int) -> dict[str, bytes]:
    """t5-base's hub files: config at t5-base's width with ``t5_layers`` layers, random weights, tokenizer."""
    import torch  # lazy: heavy, builders only
    from transformers import T5Config, T5ForConditionalGeneration  # lazy: heavy, builders only

    config = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_heads=12, num_layers=t5_layers,
                      num_decoder_layers=t5_layers, relative_attention_num_buckets=32, dropout_rate=0.1,
                      layer_norm_epsilon=1e-6, initializer_factor=1.0, feed_forward_proj="relu",
                      is_encoder_decoder=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                      n_positions=512, architectures=["T5ForConditionalGeneration"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_for(seed, "t5"))
        model = T5ForConditionalGeneration(config).eval()
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        files = {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir()) if p.is_file()}
    files["spiece.model"] = train_spiece_model(seed)
    return files


# --------------------------------------------------------------------------- demucs htdemucs

def htdemucs_kwargs(full: bool = False) -> dict[str, tp.Any]:
    """HTDemucs constructor arguments: the release's (``full``) or the rehearsal's narrower ones."""
    return dict(HTDEMUCS_KWARGS) if full else {**HTDEMUCS_KWARGS, **HTDEMUCS_NARROW}


def htdemucs_package(seed: int, full: bool = False) -> dict[str, tp.Any]:
    """demucs' model package for ``htdemucs`` (``klass``/``args``/``kwargs``/``state``), random half-precision state."""
    import torch  # lazy: heavy, builders only
    from demucs.htdemucs import HTDemucs  # lazy: heavy, builders only

    kwargs = htdemucs_kwargs(full)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_for(seed, "htdemucs"))
        model = HTDemucs(**kwargs)
    state = {k: v.detach().to(dtype=torch.half) for k, v in model.state_dict().items()}  # serialize_model(half=True)
    return {"klass": HTDemucs, "args": (), "kwargs": kwargs, "state": state,
            "training_args": {"rehearsal": "random-init stand-in for htdemucs, not trained"}}


# --------------------------------------------------------------------------- MusicGen melody

@contextlib.contextmanager
def _local_pretrained_parts(t5_snapshot: Path, demucs_file: Path) -> Iterator[None]:
    """While building the LM here, audiocraft's conditioners load T5 and demucs from the files just written.

    Only the builder needs this (its process may have imported huggingface_hub with other cache
    settings); the saved LM state holds neither T5 nor demucs weights (both are frozen and kept out
    of the state dict), so what the loaders later read from the caches is what this build used.
    """
    import torch  # lazy: heavy, builders only
    from audiocraft.modules import conditioners as ac_cond  # lazy: heavy, builders only
    from demucs import pretrained, states  # lazy: heavy, builders only

    tokenizer_from, encoder_from = ac_cond.T5Tokenizer.from_pretrained, ac_cond.T5EncoderModel.from_pretrained

    def tokenizer(name: str, *args: tp.Any, **kwargs: tp.Any) -> tp.Any:
        assert name == T5_REPO, name
        return tokenizer_from(str(t5_snapshot), legacy=True)

    def encoder(name: str, *args: tp.Any, **kwargs: tp.Any) -> tp.Any:
        assert name == T5_REPO, name
        with torch.random.fork_rng(devices=[]):
            return encoder_from(str(t5_snapshot))

    def demucs_model(name: str, *args: tp.Any, **kwargs: tp.Any) -> tp.Any:
        assert name == "htdemucs", name
        return states.load_model(demucs_file).eval()

    with mock.patch.object(ac_cond.T5Tokenizer, "from_pretrained", side_effect=tokenizer), \
         mock.patch.object(ac_cond.T5EncoderModel, "from_pretrained", side_effect=encoder), \
         mock.patch.object(pretrained, "get_model", side_effect=demucs_model):
        yield


def musicgen_files(lm_layers: int, seed: int, t5_snapshot: Path, demucs_file: Path) -> dict[str, bytes]:
    """``state_dict.bin`` (LM, float16) and ``compression_state_dict.bin`` (EnCodec) of musicgen-melody's release."""
    import audiocraft  # lazy: heavy, builders only
    import torch  # lazy: heavy, builders only
    from audiocraft.models import builders  # lazy: heavy, builders only
    from omegaconf import OmegaConf

    from .models import melody_config  # lazy: imports audiocraft (builders only)

    cfg = melody_config(num_layers=lm_layers)
    # RVQ codebooks: uniform random and marked initialised, instead of k-means on a first batch
    # (audiocraft's k-means at 2048 bins allocates ~1 GB per iteration); the state dict has the same
    # keys either way, and the saved xp.cfg keeps the release's kmeans_init: true
    codec_cfg = copy.deepcopy(cfg)
    codec_cfg.rvq.kmeans_init = False
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_for(seed, "encodec"))
        codec = builders.get_compression_model(codec_cfg).eval()
    with _local_pretrained_parts(t5_snapshot, demucs_file), torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_for(seed, "musicgen-lm"))
        lm = builders.get_lm_model(cfg).eval()
    xp_cfg = OmegaConf.to_yaml(cfg)
    lm_state = {k: v.detach().to(torch.float16) if v.is_floating_point() else v.detach()
                for k, v in lm.state_dict().items()}
    lm_pkg = {"xp.cfg": xp_cfg, "best_state": lm_state, "version": audiocraft.__version__, "exported": True}
    codec_pkg = {"xp.cfg": xp_cfg, "best_state": {k: v.detach() for k, v in codec.state_dict().items()},
                 "version": audiocraft.__version__, "exported": True}
    return {"state_dict.bin": torch_bytes(lm_pkg), "compression_state_dict.bin": torch_bytes(codec_pkg)}


# --------------------------------------------------------------------------- PaSST and VGGish

def passt_state(seed: int) -> dict[str, tp.Any]:
    """A random-init PaSST-S (``passt_s_swa_p16_128_ap476``) state dict with the release's keys and shapes."""
    import torch  # lazy: heavy, builders only
    from hear21passt.models.passt import get_model  # lazy: heavy, builders only

    from .metrics.backends import PasstBackend, quiet  # lazy: imports the metric libraries (builders only)

    with quiet(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_for(seed, "passt"))
        net = get_model(arch=PasstBackend.arch, pretrained=False, n_classes=527)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def vggish_state(seed: int) -> dict[str, tp.Any]:
    """A random-init VGGish state dict (``features.*``, ``embeddings.*``), the layout of torchvggish's release."""
    import torch  # lazy: heavy, builders only
    from torchvggish.torchvggish import VGG, make_layers  # lazy: heavy, builders only

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_for(seed, "vggish"))
        model = VGG(make_layers(), postprocess=False)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- the build

class _Progress:
    """Times each artifact and, when enabled, logs one line per artifact (INFO; the script shows them on stderr)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, key: str, what: str) -> Iterator[None]:
        """Time one artifact and report it when done."""
        t0 = time.perf_counter()
        yield
        self.seconds[key] = time.perf_counter() - t0
        if self.enabled:
            logger.info("[rehearsal %d/%d] %s: %.1fs", len(self.seconds), self.total, what, self.seconds[key])


def _remove_managed(root: Path) -> None:
    """Delete a previous rehearsal build's files (only those this module writes).

    Refuses when ``root`` has no stamp but holds such files: ``root`` may then be a real cache
    (``--root ~/.cache`` would otherwise delete the user's t5-base), which is never touched.
    """
    managed = [p for p in _managed_paths(root) if p.exists() or p.is_symlink()]
    if managed and not (root / STAMP_FILE).is_file():
        raise FileExistsError(f"{root} holds {managed[0]} but no {STAMP_FILE}: not a rehearsal cache root, "
                              "refusing to overwrite it; pick an empty or rehearsal-only directory")
    for p in managed:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def _sizes(root: Path) -> dict[str, int]:
    """Bytes per file of a build, keyed by path relative to ``root``."""
    return {str(p.relative_to(root)): p.stat().st_size for p in expected_files(root)}


def build_rehearsal_caches(root: str | os.PathLike[str], lm_layers: int = 4, t5_layers: int = 2, seed: int = 0,
                           progress: bool = True, full_demucs: bool = False) -> dict[str, str]:
    """Write the rehearsal caches under ``root`` (see the module docstring) and return the env vars that select them.

    Idempotent: when ``<root>/rehearsal.json`` records a complete build of the same spec (sizes,
    seed, library versions) and every file is present, nothing is done. Otherwise previous
    rehearsal files are removed and everything is rebuilt; the stamp says "complete" only at the
    end, so an interrupted build reruns. Raises :class:`FileExistsError` rather than overwrite
    hub-cache entries of a ``root`` that was not made by this function.
    """
    root = Path(root).resolve()
    spec = rehearsal_spec(lm_layers, t5_layers, seed, full_demucs)
    env = rehearsal_env(root)
    if is_built(root, spec):
        if progress:
            logger.info("[rehearsal] %s is up to date (%s)", root, STAMP_FILE)
        return env
    import torch  # lazy: heavy, builders only

    _remove_managed(root)
    # claims the root (see _remove_managed) and marks the build unfinished until the end
    atomic_write_json(root / STAMP_FILE, {"spec": spec, "status": "building"})
    hub, ckpt = _hub_dir(root), _checkpoint_dir(root)
    bar = _Progress(progress, 5)
    t_all = time.perf_counter()
    with torch.no_grad():
        with bar.step("t5-base", f"t5-base ({t5_layers} layers, SentencePiece trained here)"):
            t5_snapshot = write_hf_snapshot(hub, T5_REPO, t5_files(t5_layers, seed))
        width = "released" if full_demucs else "narrow"
        with bar.step("htdemucs", f"demucs htdemucs ({DEMUCS_CHECKPOINT}, {width} width)"):
            demucs_file = write_checkpoint(ckpt, DEMUCS_CHECKPOINT, torch_bytes(htdemucs_package(seed, full_demucs)))
        with bar.step("musicgen-melody", f"{MELODY_REPO} (LM: {lm_layers} layers at dim 1536; EnCodec 32 kHz)"):
            write_hf_snapshot(hub, MELODY_REPO, musicgen_files(lm_layers, seed, t5_snapshot, demucs_file))
        with bar.step("passt", f"PaSST ({PASST_CHECKPOINT})"):
            write_checkpoint(ckpt, PASST_CHECKPOINT, torch_bytes(passt_state(seed)))
        with bar.step("vggish", f"VGGish ({VGGISH_CHECKPOINT})"):
            write_checkpoint(ckpt, VGGISH_CHECKPOINT, torch_bytes(vggish_state(seed)))
    sizes = _sizes(root)
    atomic_write_json(root / STAMP_FILE, {
        "spec": spec, "status": "complete", "env": env, "bytes": sizes, "total_bytes": sum(sizes.values()),
        "build_seconds": {k: round(v, 2) for k, v in bar.seconds.items()},
        "note": "random-init stand-ins for the paper profile's pretrained weights (silicon_sing.rehearsal)"})
    if progress:
        logger.info("[rehearsal] %.0f MB in %.0fs under %s", sum(sizes.values()) / 1e6, time.perf_counter() - t_all,
                    root)
    return env


def export_lines(env: dict[str, str]) -> str:
    """``export K=V`` lines (shell-quoted) for ``eval`` in a shell or Makefile recipe."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


__all__ = [
    "FORMAT_VERSION", "STAMP_FILE", "MELODY_REPO", "T5_REPO", "DEMUCS_CHECKPOINT", "PASST_CHECKPOINT",
    "VGGISH_CHECKPOINT", "HTDEMUCS_KWARGS", "HTDEMUCS_NARROW", "htdemucs_kwargs", "rehearsal_env",
    "rehearsal_spec", "hf_repo_dir", "expected_files", "is_built", "write_hf_snapshot", "write_checkpoint", "caption_sentences", "train_spiece_model", "t5_files",
    "htdemucs_package", "musicgen_files", "passt_state", "vggish_state", "build_rehearsal_caches", "export_lines",
    "torch_bytes",
]
