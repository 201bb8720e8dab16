"""The whole pre-training run: synthesise, train codec then LM, evaluate on held-out audio, ship with provenance.

Notebook: notebooks/03_finetune.ipynb (the pre-trained nano baseline that fine-tuning starts from)
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import audiocraft
import numpy as np
import torch
from audiocraft.models.encodec import CompressionModel, EncodecModel
from audiocraft.models.lm import LMModel

from ..fsutil import atomic_write_json, load_tensors_only
from ..machine import usable_cpus
from ..params import CATEGORY_ORDER
from .codec import build_codec, codec_metrics, encode_clips, train_codec, train_decoder, widen_decoder
from .config import (
    ASSETS_DIR,
    CHECKPOINT_FILES,
    PROVENANCE,
    CorpusSpec,
    DecoderSpec,
    PretrainConfig,
    nano_pretrain_config,
)
from .corpus import Clip, synth_corpus
from .lm import build_lm, context_use, frame_activity, heldout_lm_loss, train_lm
from .ship import load_shipped, random_init_like, write_checkpoints

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
    return {"python": platform.python_version(), "torch": torch.__version__, "audiocraft": audiocraft.__version__,
            "numpy": np.__version__}


def heldout_corpus(config: PretrainConfig, progress: bool = False, workers: int = 1) -> list[Clip]:
    """Every stem of the held-out tracks (:data:`HELDOUT_SEED`): what the reported metrics are measured on."""
    spec = dataclasses.replace(config.corpus, seed=config.heldout_seed, tracks_per_artist=config.heldout_tracks_per_artist,
                               seconds=config.heldout_seconds)
    return synth_corpus(spec, all_stems=True, progress=progress, workers=workers)


def evaluate_models(codec: CompressionModel, lm: LMModel, random_codec: CompressionModel, random_lm: LMModel,
                    heldout: Sequence[Clip], sample_rate: int, frames: int) -> dict[str, Any]:
    """Held-out metrics: codec reconstruction and LM loss per category, trained vs random-init."""
    metrics: dict[str, Any] = {"codec": {}, "lm_loss": {}}
    for name, model in (("pretrained", codec), ("random_init", random_codec)):
        metrics["codec"][name] = codec_metrics(model, heldout, sample_rate)
    codes = encode_clips(codec, heldout, progress=False)
    hop = int(round(sample_rate / codec.frame_rate))
    active = [frame_activity(c.audio, hop) for c in heldout]
    metrics["lm_loss_sounding"] = {}
    for name, lm_model in (("pretrained", lm), ("random_init", random_lm)):
        for key, act in (("lm_loss", None), ("lm_loss_sounding", active)):
            metrics[key][name] = {}
            for cat in CATEGORY_ORDER:
                sel = [j for j, c in enumerate(heldout) if c.category == cat]
                metrics[key][name][cat] = heldout_lm_loss(lm_model, [codes[j] for j in sel],
                                                          [heldout[j].caption for j in sel], frames,
                                                          None if act is None else [act[j] for j in sel])
    metrics["lm_loss"]["uniform"] = metrics["lm_loss_sounding"]["uniform"] = math.log(lm.card)
    # how far back the trained LM looks, on the held-out instrumentals: keeping a tempo needs a beat, a groove a bar
    inst = [j for j, c in enumerate(heldout) if c.category == "instrumental"]
    if len(inst) >= 2:
        metrics["lm_context_use"] = {"instrumental": context_use(lm, [codes[j] for j in inst],
                                                                 [heldout[j].caption for j in inst], frames,
                                                                 codec.frame_rate)}
    metrics["sounding_fraction"] = {cat: float(torch.cat([a for a, c in zip(active, heldout) if c.category == cat])
                                               .float().mean()) for cat in CATEGORY_ORDER}
    return metrics


@contextlib.contextmanager
def _stage(name: str, timings: dict[str, float], announce: bool, label: str = "") -> Iterator[None]:
    """Time a stage into ``timings[name + "_s"]``; with ``announce``, say on stderr that it ended and how long it took
    (the shipped recipe is ~2 h 50 min on 2 cores, and ``--no-progress`` would otherwise print nothing until the end)."""
    t = time.perf_counter()
    yield
    timings[f"{name}_s"] = seconds = time.perf_counter() - t
    if announce:
        print(f"pretrain {label}{name}: done ({seconds:,.0f} s)", file=sys.stderr, flush=True)


def run_pretraining(config: PretrainConfig, out_dir: str | Path = ASSETS_DIR, progress: bool = True,
                    half: bool = True, announce: bool = False, lm_from: str | Path | None = None,
                    keep_first_stage: str | Path | None = None, command: str | None = None,
                    decoder_from: str | Path | None = None, keep_lm_stages: str | Path | None = None) -> dict[str, Any]:
    """Synthesise, train codec then LM, evaluate on held-out audio, write checkpoints + provenance.

    With ``config.lm.restart_steps`` the LM trains in two stages: everything above (``config.first_stage()``), stored,
    then the LM's warm restart from the stored weights. The first stage goes to ``keep_first_stage`` (default: a
    temporary directory), or is read from ``lm_from`` (a directory written by the first stage, checked against its
    provenance), which skips it.
    With ``config.decoder.steps`` a last stage follows: a wider decoder trained on the stored codec's frozen codes
    (:func:`silicon_sing.pretrain.codec.train_decoder`; codes and LM unchanged). What it starts from
    (``config.lm_stages()``) goes to ``keep_lm_stages`` (default: a temporary directory), or is read from
    ``decoder_from``, which skips everything before it.
    ``announce`` prints a line on stderr as each step (synthesis, codec, encoding, lm, decoder, evaluation) ends;
    ``command`` (the command line, if any) is recorded in ``provenance.json``."""
    out = Path(out_dir)
    for flag, kept in (("--keep-first-stage", keep_first_stage), ("--keep-lm-stages", keep_lm_stages)):
        if kept is not None and Path(kept).resolve() == out.resolve():
            raise ValueError(f"{flag} {kept} is the output directory: the next stage would overwrite it")
    if decoder_from is not None:
        if not config.decoder.steps:
            raise ValueError(f"--decoder-from {decoder_from} trains a decoder, but the recipe has none (decoder steps 0)")
        if lm_from is not None or keep_first_stage is not None or keep_lm_stages is not None:
            raise ValueError(f"--decoder-from {decoder_from} skips the LM stages: --lm-from, --keep-first-stage and "
                             "--keep-lm-stages have nothing to do")
        return _decoder_stage(config, out, Path(decoder_from), None, progress, half, announce, command)
    if config.decoder.steps:
        with contextlib.ExitStack() as stack:
            before = Path(keep_lm_stages) if keep_lm_stages is not None else Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="nano-lm-stages-")))
            _, clips = _lm_stages(config.lm_stages(), before, progress, half, announce, lm_from, keep_first_stage,
                                  command)
            return _decoder_stage(config, out, before, clips, progress, half, announce, command)
    if keep_lm_stages is not None:
        raise ValueError(f"--keep-lm-stages {keep_lm_stages}: the recipe has no decoder stage (decoder steps 0), "
                         "the output directory is the LM stages")
    return _lm_stages(config, out, progress, half, announce, lm_from, keep_first_stage, command)[0]


def _lm_stages(config: PretrainConfig, out_dir: Path, progress: bool, half: bool, announce: bool,
               lm_from: str | Path | None, keep_first_stage: str | Path | None, command: str | None
               ) -> tuple[dict[str, Any], tuple[list[Clip], list[Clip]]]:
    """The codec and the LM's one or two stages into ``out_dir`` (:func:`run_pretraining`): (provenance, corpus)."""
    if config.lm.restart_steps and lm_from is None:
        with contextlib.ExitStack() as stack:
            first = Path(keep_first_stage) if keep_first_stage is not None else Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="nano-first-stage-")))
            _, clips = _run(config.first_stage(), first, progress, half, announce, None, None, command)
            return _run(config, out_dir, progress, half, announce, first, clips, command)
    if lm_from is not None and not config.lm.restart_steps:
        raise ValueError(f"--lm-from {lm_from} continues the LM, but the recipe has no warm restart (restart_steps 0)")
    return _run(config, out_dir, progress, half, announce, None if lm_from is None else Path(lm_from), None, command)


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    """``{"lm": {"steps": 2400}, "seed": 0}`` → ``{"lm.steps": 2400, "seed": 0}`` (one level, as PretrainConfig nests)."""
    return {f"{part}.{k}" if isinstance(v, dict) else part: x
            for part, v in config.items() for k, x in (v.items() if isinstance(v, dict) else [(None, v)])}


def stage_provenance(expected: PretrainConfig, directory: Path, flag: str = "--lm-from",
                     written_by: str = "scripts/pretrain_nano.py --lm-restart-steps 0 --decoder-steps 0"
                     ) -> dict[str, Any]:
    """The provenance of a stored stage whose recipe is ``expected``; a ValueError naming the difference if it is not.

    ``flag`` and ``written_by`` name the option that reads the directory and the command that writes one, for the
    errors."""
    from .ship import read_provenance, verify_checkpoints

    if not (directory / PROVENANCE).exists():
        raise FileNotFoundError(f"{directory / PROVENANCE} is missing: {flag} takes a directory that {written_by} wrote")
    source = read_provenance(directory)
    source["config"]["lm"].setdefault("restart_steps", 0)  # provenance written before the restart existed
    source["config"].setdefault("decoder", dataclasses.asdict(DecoderSpec.none()))  # ... before the decoder stage
    want, have = _flat(expected.to_dict()), _flat(source["config"])
    diff = sorted(k for k in want if have.get(k) != want[k])
    if diff:
        raise ValueError(f"{directory / PROVENANCE} records another recipe than the one {flag} continues "
                         f"(differs in {', '.join(diff)}): pass the options it was made with")
    bad = [name for name, ok in verify_checkpoints(directory).items() if not ok]
    if bad:
        raise ValueError(f"{', '.join(str(directory / b) for b in bad)} do not match the sha1 in "
                         f"{directory / PROVENANCE}: the stage was changed after it was written")
    return source


def first_stage_provenance(config: PretrainConfig, directory: Path) -> dict[str, Any]:
    """The provenance of a stored first stage of ``config``; a ValueError naming the difference if it is not one."""
    return stage_provenance(config.first_stage(), directory)


def _loss_names(config: PretrainConfig) -> str:
    """The codec's losses and weights, as provenance names them: 'l1 (1) + msspec (6) + ...'."""
    return " + ".join(f"{k} ({w:g})" for k, w in config.codec.loss_weights.items())


def _load_into(module: torch.nn.Module, path: Path) -> None:
    """Load a stored (fp16) checkpoint's ``best_state`` into a module of the same architecture (cast to its dtype)."""
    module.load_state_dict(load_tensors_only(path)["best_state"])


def _evaluate_written(config: PretrainConfig, out_dir: Path, heldout: Sequence[Clip]) -> dict[str, Any]:
    """:func:`evaluate_models` of the checkpoints just written to ``out_dir`` (what ships, fp16-rounded, not the
    in-memory model) against a random init of their architecture."""
    shipped = load_shipped(out_dir)
    rand = random_init_like(out_dir, seed=config.seed)
    frames = int(round(config.lm.segment_seconds * shipped.frame_rate))
    return evaluate_models(shipped.compression_model, shipped.lm, rand.compression_model, rand.lm, heldout,
                           config.corpus.sample_rate, frames)


def _ship_stage(config: PretrainConfig, codec: CompressionModel, lm: LMModel, out_dir: Path, heldout: Sequence[Clip],
                half: bool, timings: dict[str, float], t_start: float, announce: bool, label: str
                ) -> tuple[dict[str, str], dict[str, Any]]:
    """The end of every stage: write the checkpoints, evaluate what was written (timed as ``evaluation``), and close
    the stage's ``timings`` (``training_total_s`` up to the write, ``total_s``): (file sha1s, held-out metrics)."""
    training_s = time.perf_counter() - t_start
    hashes = write_checkpoints(codec, lm, out_dir, half=half)
    with _stage("evaluation", timings, announce, label):
        metrics = _evaluate_written(config, out_dir, heldout)
    timings["training_total_s"] = training_s
    timings["total_s"] = time.perf_counter() - t_start
    return hashes, metrics


def _run(config: PretrainConfig, out_dir: Path, progress: bool, half: bool, announce: bool, start: Path | None,
         clips: tuple[list[Clip], list[Clip]] | None, command: str | None = None
         ) -> tuple[dict[str, Any], tuple[list[Clip], list[Clip]]]:
    """One stage: from scratch (``start`` None), or the LM's warm restart from the first stage stored in ``start``.
    ``clips``: the (pre-training, held-out) corpus when the caller has it already."""
    source = first_stage_provenance(config, start) if start is not None else None
    label = "" if start is None else "restart "
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    with _threads(config.threads), torch.random.fork_rng(devices=[]):  # seeds below stay inside
        with _stage("synthesis", timings, announce, label):
            corpus, heldout = clips or (synth_corpus(config.corpus, progress=progress, workers=config.threads),
                                        heldout_corpus(config, progress=progress, workers=config.threads))

        cfg = nano_pretrain_config(config.codec, config.lm)
        sr = config.corpus.sample_rate
        codec_clips = [c for c in corpus if c.track_index < config.corpus.codec_tracks_per_artist]
        with _stage("codec", timings, announce, label):
            codec = build_codec(cfg, config.seed)
            if start is None:
                codec_history = train_codec(codec, codec_clips, config.codec, sr, config.seed, progress=progress)
            else:  # the first stage's codec, as stored: the restart's tokens are the ones users' models will see
                _load_into(codec, start / "compression_state_dict.bin")
                codec_history = []

        # the LM hears every instrumental and only a few acapella/full stems (category_tracks)
        lm_clips = [c for c in corpus if c.track_index < config.corpus.category_tracks.get(c.category, 0)]
        with _stage("encoding", timings, announce, label):
            codes = encode_clips(codec, lm_clips, progress=progress)
        with _stage("lm", timings, announce, label):
            lm = build_lm(cfg, config.seed)
            if start is not None:
                _load_into(lm, start / "state_dict.bin")
            lm_history = train_lm(lm, codes, [c.caption for c in lm_clips], config.lm, codec.frame_rate, config.seed,
                                  progress=progress, restart=start is not None)
        hashes, metrics = _ship_stage(config, codec, lm, out_dir, heldout, half, timings, t_start, announce, label)
    mix = {c: sum(1 for x in lm_clips if x.category == c) for c in CATEGORY_ORDER}
    provenance = {
        "what": "nano MusicGen pre-trained on synthetic stems: the smoke profile's baseline and fine-tuning start",
        "script": "scripts/pretrain_nano.py (silicon_sing.pretrain.run_pretraining)",
        **({} if command is None else {"command": command}),
        "config": config.to_dict(),
        "data": {
            "generator": "silicon_sing.synth", "artists": sorted({c.artist for c in corpus}),
            "pretrain_seed": config.corpus.seed, "heldout_seed": config.heldout_seed,
            "note": ("synthetic tracks of the smoke artists rendered with a seed no profile uses (smoke: 1234), so "
                     "no evaluation track is heard in pre-training; same artist styles, different compositions"),
            "codec_corpus_seconds": {c: sum(len(x.audio) for x in codec_clips if x.category == c) / sr
                                     for c in CATEGORY_ORDER},
            "lm_corpus_clips": mix,
            "lm_corpus_seconds": {c: sum(len(x.audio) for x in lm_clips if x.category == c) / sr for c in CATEGORY_ORDER},
            "example_captions": sorted({c.caption for c in lm_clips})[:8],
        },
        "codec": {"architecture": "audiocraft EncodecModel (SEANet + RVQ)", "frame_rate": float(codec.frame_rate),
                  "n_q": int(codec.num_codebooks), "cardinality": int(codec.cardinality),
                  "parameters": sum(p.numel() for p in codec.parameters()),
                  "trained_on": "every stem (instrumental, acapella, full) of every pre-training track, equally",
                  "losses": _loss_names(config) + " via audiocraft's Balancer, + VQ commitment penalty; adversarial and feature-matching "
                              "losses omitted (CPU budget)",
                  "steps": config.codec.steps, "final": codec_history[-1] if codec_history else {},
                  "history_every_25": codec_history[::25]} if source is None else source["codec"],
        "lm": {"architecture": "audiocraft transformer LM, delay pattern, cross-attention on hashed-text captions",
               "trained_on": "codes of lm_corpus (mostly instrumental), generic captions without a UUID, "
                             f"classifier-free-guidance dropout {config.lm.cfg_dropout}",
               "parameters": sum(p.numel() for p in lm.parameters()), "steps": config.lm.steps,
               "restart_steps": config.lm.restart_steps,
               "final_loss": lm_history[-1]["loss"] if lm_history else None,
               # one curve over both stages (the restart's steps are numbered after the first stage's)
               "history_every_25": (source["lm"]["history_every_25"] if source else []) + lm_history[::25]},
        "metrics_heldout": metrics,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        **({} if source is None else {"first_stage": {
            "what": "the recipe without the LM's warm restart, stored, from which this stage started",
            "files": source["files"], "timings_s": source["timings_s"],
            "lm_final_loss": source["lm"]["final_loss"],
            "metrics_heldout": {k: source["metrics_heldout"][k] for k in ("lm_loss", "lm_loss_sounding", "lm_context_use")},
            "recipe_total_s": round(source["timings_s"]["total_s"] + timings["total_s"], 1)}}),
        "machine": {"torch_threads": config.threads, "cpu_count": usable_cpus(), "platform": platform.platform()},
        "versions": _versions(),
        "storage": "fp16" if half else "fp32",
        "files": {name: {"sha1": hashes[name], "bytes": (out_dir / name).stat().st_size} for name in CHECKPOINT_FILES},
    }
    atomic_write_json(out_dir / PROVENANCE, provenance).chmod(0o644)  # package data (mkstemp makes 0600)
    return provenance, (corpus, heldout)


def codec_corpus_spec(corpus: CorpusSpec) -> CorpusSpec:
    """The part of ``corpus`` the codec hears (every stem of its first tracks), rendered alone: the same clips."""
    n = corpus.codec_tracks_per_artist
    return dataclasses.replace(corpus, tracks_per_artist=n, category_tracks={})


def _decoder_stage(config: PretrainConfig, out_dir: Path, start: Path, clips: tuple[list[Clip], list[Clip]] | None,
                   progress: bool, half: bool, announce: bool, command: str | None) -> dict[str, Any]:
    """The last stage: a wider decoder on the frozen codes of the codec stored in ``start`` (``config.lm_stages()``),
    whose LM is kept as stored. ``clips``: the (pre-training, held-out) corpus when the caller has it already."""
    source = stage_provenance(config.lm_stages(), start, "--decoder-from", "scripts/pretrain_nano.py --decoder-steps 0")
    label = "decoder stage "
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    with _threads(config.threads), torch.random.fork_rng(devices=[]):
        with _stage("synthesis", timings, announce, label):
            corpus, heldout = clips or (synth_corpus(codec_corpus_spec(config.corpus), progress=progress,
                                                     workers=config.threads),
                                        heldout_corpus(config, progress=progress, workers=config.threads))
        codec_clips = [c for c in corpus if c.track_index < config.corpus.codec_tracks_per_artist]
        sr = config.corpus.sample_rate
        cfg = nano_pretrain_config(config.codec, config.lm, decoder=config.decoder)
        with _stage("decoder", timings, announce, label):
            stored = build_codec(nano_pretrain_config(config.codec, config.lm), config.seed)
            _load_into(stored, start / "compression_state_dict.bin")
            codec = widen_decoder(stored, cfg, config.seed)
            history = train_decoder(codec, codec_clips, config.codec, config.decoder.steps, sr, config.seed,
                                    progress=progress)
        lm = build_lm(cfg, config.seed)  # the stored LM, under the config that names the wider decoder
        _load_into(lm, start / "state_dict.bin")
        hashes, metrics = _ship_stage(config, codec, lm, out_dir, heldout, half, timings, t_start, announce, label)
    provenance = copy.deepcopy(source)  # corpus, LM and first stage: as the stages before recorded them
    decoder = cast(EncodecModel, codec).decoder
    if command is not None:
        provenance["command"] = command
    before: dict[str, Any] = {
        "what": "the recipe without its decoder stage, stored, from which this stage started (its codec decoded with "
                "its own decoder)",
        "files": source["files"], "timings_s": source["timings_s"],
        **{k: source[k] for k in ("command", "addenda") if k in source},
        "metrics_heldout": {"codec": source["metrics_heldout"]["codec"]}}
    provenance.update({
        "config": config.to_dict(),
        "codec": {**source["codec"],
                  "parameters": sum(p.numel() for p in codec.parameters()),
                  "decoder": {"n_filters": config.decoder.n_filters, "steps": config.decoder.steps,
                              "parameters": sum(p.numel() for p in decoder.parameters()),
                              "trained_on": "the frozen codes of the stored codec's own corpus; encoder and codebooks "
                                            "unchanged, so are every code and the LM",
                              "losses": _loss_names(config) + " via audiocraft's Balancer (the codec's losses; no "
                                                              "VQ penalty: the codebooks are frozen)",
                              "final": history[-1] if history else {}, "history_every_25": history[::25]}},
        "metrics_heldout": metrics,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "lm_stages": before,
        "recipe_total_s": round(source.get("first_stage", {}).get("recipe_total_s", source["timings_s"]["total_s"])
                                + timings["total_s"], 1),
        "machine": {"torch_threads": config.threads, "cpu_count": usable_cpus(), "platform": platform.platform()},
        "versions": _versions(),
        "storage": "fp16" if half else "fp32",
        "files": {name: {"sha1": hashes[name], "bytes": (out_dir / name).stat().st_size} for name in CHECKPOINT_FILES},
    })
    provenance.pop("addenda", None)  # the stages before's notes: kept under lm_stages
    atomic_write_json(out_dir / PROVENANCE, provenance).chmod(0o644)  # package data (mkstemp makes 0600)
    return provenance
