"""Stage 04a — continuations: baseline and fine-tuned MusicGen continue every held-out segment.

For each test segment of each (artist, category) a model hears the first
``evaluate.prompt_seconds`` of the original and its caption (with the run's UUID), and continues to
the segment's length. The baseline (pre-trained) model and the fine-tuned model of that category
get the same prompts, captions, sampling parameters and seeds: examples are batched in one fixed
order and every batch is seeded from the examples it holds, so sample *i* of both systems drew its
tokens from identically seeded generators.

Melody models (``facebook/musicgen-melody``) also accept a chroma condition. audiocraft's own
evaluation feeds the chroma of the *target* clip, which leaks the answer into the condition and
flatters KL and FAD; we default to no chroma (``evaluate.melody_condition: none``) and record the
choice with every generation.

Generated audio (prompt included, as audiocraft returns it) is written to
``<run_dir>/generations/<system>/<category>/<track_id>/<index>.wav`` with a sidecar ``.json``
holding the :class:`Generation` record; a generation whose inputs and model are unchanged is not
redone. Under ``torchrun`` (started by :mod:`silicon_sing.torchrun`, the launcher fine-tuning uses too)
each rank takes every ``world_size``-th batch.

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from . import audio as au
from . import torchrun
from .data import HeldOutExample, held_out_examples
from .fsutil import atomic_write_json, file_sha1, kept_array, read_json, text_sha1
from .model_names import resolve_model_name
from .params import CATEGORIES, MUSICGEN_SAMPLING, Params, RunPaths, load_params

if TYPE_CHECKING:
    import torch
    from audiocraft.models import MusicGen

BASELINE, FINETUNED = "baseline", "fine-tuned"  # the two systems every held-out segment is continued by
SYSTEMS = (BASELINE, FINETUNED)
# the A/A control's system (metrics.null_control): the baseline model again, every batch under another seed
RESEEDED = "baseline-reseeded"


@dataclass(frozen=True)
class GenerationSettings:
    """Everything besides the model and the prompt that decides a continuation."""

    prompt_seconds: float
    use_sampling: bool
    top_k: int
    temperature: float
    cfg_coef: float
    melody_condition: str
    batch_size: int
    seed: int

    @classmethod
    def from_params(cls, params: Params) -> GenerationSettings:
        """Settings of a run."""
        e = params.evaluate
        if e.melody_condition not in ("none", "target"):
            raise ValueError(f"evaluate.melody_condition must be 'none' or 'target', not {e.melody_condition!r}")
        return cls(e.prompt_seconds, e.use_sampling, e.top_k, e.temperature, e.cfg_coef, e.melody_condition,
                   e.gen_batch_size, params.seed)

    def describe(self) -> str:
        """The sampling in words: top-k, temperature and guidance (or greedy decoding)."""
        if not self.use_sampling:
            return f"greedy decoding, classifier-free guidance {self.cfg_coef:g}"
        return f"top-k {self.top_k}, temperature {self.temperature:g}, classifier-free guidance {self.cfg_coef:g}"

    def departure(self) -> str:
        """How the sampling relates to audiocraft's MusicGen defaults (:data:`MUSICGEN_SAMPLING`), for the book."""
        mine = {"use_sampling": self.use_sampling, "top_k": self.top_k, "temperature": self.temperature,
                "cfg_coef": self.cfg_coef}
        if mine == MUSICGEN_SAMPLING:
            return "MusicGen's defaults"
        d = MUSICGEN_SAMPLING
        return (f"not MusicGen's defaults (top-k {d['top_k']}, temperature {d['temperature']:g}, guidance "
                f"{d['cfg_coef']:g}): the parameter file says why, and where its values were chosen (for the nano "
                f"model, scripts/sampling_sweep.py on its own held-out tracks, never on the test tracks)")


@dataclass
class Generation:
    """One continuation on disk, with what produced it."""

    example_id: str
    artist: str
    category: str
    system: str
    original: str
    generated: str  # absolute path
    prompt_seconds: float
    duration_s: float
    caption: str
    seed: int
    model: str
    fingerprint: str
    settings: dict[str, Any]
    seconds_to_generate: float
    # which weights: :func:`model_fingerprint` of the files ``model`` named when this was generated (the sha1 of an
    # export's two files, or "name:<hub name>"); "" in records written before the field existed
    weights: str = ""


# --------------------------------------------------------------------------- inputs


def batches(examples: Sequence[HeldOutExample], size: int) -> list[list[HeldOutExample]]:
    """Consecutive batches of examples sharing one duration (a batch generates one length)."""
    out: list[list[HeldOutExample]] = []
    for ex in examples:
        if out and len(out[-1]) < size and out[-1][0].duration_s == ex.duration_s:
            out[-1].append(ex)
        else:
            out.append([ex])
    return out


def batch_seed(settings: GenerationSettings, batch: Sequence[HeldOutExample], system: str = BASELINE) -> int:
    """A seed derived from the run seed and the batch's examples: identical for baseline and fine-tuned.

    :data:`RESEEDED` draws from other seeds: it is the baseline sampled again, the A/A control.
    """
    salt = "reseeded:" if system == RESEEDED else ""
    return int(text_sha1(f"{salt}{settings.seed}:" + "|".join(e.example_id for e in batch))[:8], 16)


def output_path(params: Params, system: str, example: HeldOutExample) -> Path:
    """Where a system's continuation of an example is written."""
    return params.run.generation(system, example.category, example.track_id, example.index)


def model_for(params: Params, system: str, category: str) -> str:
    """The model a system uses for a category: the pre-trained one (baseline, reseeded) or that category's fine-tune."""
    if system in (BASELINE, RESEEDED):
        return params.train.model
    if system != FINETUNED:
        raise ValueError(f"unknown system {system!r}: expected one of {[BASELINE, FINETUNED, RESEEDED]}")
    d = params.run.export(category)
    if not (d / "state_dict.bin").exists():
        raise FileNotFoundError(f"no fine-tuned model for '{category}' at {d}: run notebooks/03_finetune.ipynb "
                                "(or `python -m silicon_sing.train --category ...`) first")
    return str(d)


def model_fingerprint(name: str) -> str:
    """Identifies a model's weights: file hashes of an export dir, else its name (hub/nano)."""
    d = Path(name)
    if d.is_dir():
        return text_sha1("|".join(file_sha1(d / f) for f in ("state_dict.bin", "compression_state_dict.bin")))
    return f"name:{name}"


def weights_fingerprint(params: Params, system: str, category: str) -> str:
    """:func:`model_fingerprint` of the weights ``system`` continues ``category`` with. ``train.model: nano`` is the
    shipped files (a new pre-training must not leave the old model's continuations looking done), as is a relative
    export directory; a hub name stays a name."""
    name = model_for(params, system, category)
    if system != FINETUNED:
        name = resolve_model_name(params)
    return model_fingerprint(name)


def generation_fingerprint(example: HeldOutExample, settings: GenerationSettings, model_fp: str) -> str:
    """Everything that decides one continuation, hashed. The prompt's segment counts by its bytes, not its path: a
    run dir renamed, or copied to another disk or machine, keeps its continuations (the paper's are GPU-hours)."""
    ex = {**dataclasses.asdict(example), "original": file_sha1(example.original)}
    return text_sha1(json.dumps([ex, dataclasses.asdict(settings), model_fp], sort_keys=True))


def is_done(path: Path, fingerprint: str) -> bool:
    """Whether ``path`` holds a continuation made from exactly these inputs."""
    side = path.with_suffix(".json")
    return path.exists() and side.exists() and read_json(side).get("fingerprint") == fingerprint


def stale_generations(params: Params, system: str, examples: Sequence[HeldOutExample]) -> list[Path]:
    """``system``'s continuations of ``examples`` on disk that other inputs made (other settings or model).

    Generating would overwrite them; a step that must *reuse* them (the A/A control) checks first.
    """
    settings = GenerationSettings.from_params(params)
    fps = {c: weights_fingerprint(params, system, c) for c in dict.fromkeys(e.category for e in examples)}
    out = []
    for e in examples:
        path = output_path(params, system, e)
        side = path.with_suffix(".json")
        if side.exists() and read_json(side).get("fingerprint") != generation_fingerprint(e, settings,
                                                                                            fps[e.category]):
            out.append(path)
    return out


# --------------------------------------------------------------------------- generation


def prompt_batch(batch: Sequence[HeldOutExample], prompt_seconds: float, sr: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompts ``[B, 1, T]`` (first seconds of each original) and the full targets ``[B, 1, N]``."""
    import torch  # lazy: listen (05) imports this module for its records only; torch is slow to import

    originals = []
    for ex in batch:
        x, file_sr = au.load_audio(ex.original)
        originals.append(au.resample(au.to_mono(x), file_sr, sr))
    n = min(len(o) for o in originals)
    target = torch.from_numpy(np.stack([o[:n] for o in originals]))[:, None, :]
    return target[..., : int(round(prompt_seconds * sr))], target


def continue_batch(model: MusicGen, batch: Sequence[HeldOutExample], settings: GenerationSettings,
                   seed: int) -> np.ndarray:
    """Generate one batch of continuations; returns ``[B, N]`` float32 at the model's rate."""
    import torch  # lazy: listen (05) imports this module for its records only; torch is slow to import
    from audiocraft.data.audio_utils import convert_audio  # lazy, as torch

    from .models import cached_kv_attention, codec_decode  # lazy: models imports audiocraft; listen (05) needs neither

    sr = model.sample_rate
    prompt, target = prompt_batch(batch, settings.prompt_seconds, sr)
    if prompt.shape[-1] >= target.shape[-1]:
        raise ValueError(f"prompt ({settings.prompt_seconds} s) must be shorter than the segment "
                         f"({batch[0].duration_s} s): lower evaluate.prompt_seconds")
    model.set_generation_params(duration=batch[0].duration_s, use_sampling=settings.use_sampling,
                                top_k=settings.top_k, temperature=settings.temperature, cfg_coef=settings.cfg_coef)
    captions = [ex.caption or None for ex in batch]
    has_melody = "self_wav" in model.lm.condition_provider.conditioners
    # MusicGen.generate_continuation's steps, but the tokens are decoded by codec_decode: on a CPU one clip at a
    # time, which takes about half as long as audiocraft's whole batch (models.codec_io)
    prompt = convert_audio(prompt, sr, sr, model.audio_channels)  # a stereo model hears the mono prompt twice
    melody = {"melody_wavs": list(target.to(model.device))} if has_melody and settings.melody_condition == "target" else {}
    torch.manual_seed(seed)
    with torch.no_grad(), cached_kv_attention(model.lm):  # ~2x faster token loop for the nano LM (models.streaming)
        attributes, prompt_tokens = model._prepare_tokens_and_attributes(captions, prompt.to(model.device), **melody)
        tokens = model._generate_tokens(attributes, prompt_tokens, False)
        wav = codec_decode(model.compression_model, tokens)
    return wav[:, 0, : target.shape[-1]].float().cpu().numpy()


def batch_offsets(params: Params, examples: Sequence[HeldOutExample], systems: Sequence[str],
                  categories: Sequence[str]) -> dict[tuple[str, str], int]:
    """Where each (system, category)'s batches start in the run's one list of batches, systems outer.

    Ranks deal that whole list round-robin (:func:`generate_system`'s ``offset``): dealt per category, one batch per
    category (the smoke profile's 18 examples in batches of 18) would all go to rank 0.
    """
    size = GenerationSettings.from_params(params).batch_size
    counts = {c: len(batches([e for e in examples if e.category == c], size)) for c in categories}
    offsets, start = {}, 0
    for system in systems:
        for category in categories:
            offsets[system, category] = start
            start += counts[category]
    return offsets


def _pending(params: Params, system: str, todo: Sequence[Sequence[HeldOutExample]], settings: GenerationSettings,
             model_fp: str) -> tuple[list[Sequence[HeldOutExample]], dict[str, str]]:
    """The batches of ``todo`` with a continuation missing or made from other inputs, and every example's fingerprint."""
    # once per example: the fingerprint reads the prompt segment's bytes
    fps = {e.example_id: generation_fingerprint(e, settings, model_fp) for b in todo for e in b}
    pending = [b for b in todo if not all(is_done(output_path(params, system, e), fps[e.example_id]) for e in b)]
    return pending, fps


def pending_batches(params: Params, categories: Sequence[str] = CATEGORIES, systems: Sequence[str] = SYSTEMS) -> int:
    """How many batches :func:`run_generation` would generate (the others are on disk, made from the same inputs)."""
    settings = GenerationSettings.from_params(params)
    examples = held_out_examples(params, categories)
    return sum(len(_pending(params, system, batches([e for e in examples if e.category == c], settings.batch_size),
                            settings, weights_fingerprint(params, system, c))[0])
               for system in systems for c in categories)


def generate_system(params: Params, system: str, category: str, examples: Sequence[HeldOutExample] | None = None,
                    model: MusicGen | None = None, rank: int = 0, world_size: int = 1,
                    progress: bool = True, offset: int = 0) -> list[Generation]:
    """Continue every test example of ``category`` with ``system``'s model (skipping finished ones).

    Under torchrun, rank ``rank`` of ``world_size`` takes the batches whose index plus ``offset`` (this pair's start
    in the run's list, :func:`batch_offsets`) it is dealt round-robin. Finished batches are dealt too, so that no
    rank's share depends on what another has written yet; a resumed run's few remaining batches may therefore
    fall to one rank.
    """
    settings = GenerationSettings.from_params(params)
    name = model_for(params, system, category)
    examples = [e for e in (examples if examples is not None else held_out_examples(params, [category]))
                if e.category == category]
    todo = [b for i, b in enumerate(batches(examples, settings.batch_size)) if (offset + i) % world_size == rank]
    model_fp = weights_fingerprint(params, system, category)
    pending, fps = _pending(params, system, todo, settings, model_fp)
    if pending and model is None:
        from .models import load_model  # lazy: models imports audiocraft, which listen (05) does not need

        model = load_model(name, seed=params.seed)
    bar = tqdm(total=sum(len(b) for b in todo), desc=f"{system} / {category}", unit="clip", disable=not progress)
    results: list[Generation] = []
    for b in todo:
        seed = batch_seed(settings, b, system)
        if b in pending:
            assert model is not None  # b is pending, so pending is non-empty and the model was loaded above
            start = time.perf_counter()
            wavs = continue_batch(model, b, settings, seed)
            per_clip = (time.perf_counter() - start) / len(b)
            for ex, wav in zip(b, wavs):
                path = output_path(params, system, ex)
                rec = Generation(ex.example_id, ex.artist, ex.category, system, ex.original, str(path),
                                 settings.prompt_seconds, ex.duration_s, ex.caption, seed, name,
                                 fps[ex.example_id], dataclasses.asdict(settings),
                                 per_clip, model_fp)
                au.save_audio(path, wav, model.sample_rate, subtype="PCM_16")
                atomic_write_json(path.with_suffix(".json"), dataclasses.asdict(rec))
        results.extend(read_generation(output_path(params, system, ex).with_suffix(".json"), params.run_dir) for ex in b)
        bar.update(len(b))
    bar.close()
    return results


def codec_round_trip(params: Params, model: MusicGen | None = None) -> Callable[[np.ndarray, int], np.ndarray]:
    """``f(y [N], sr) -> [N]``: mono audio through the baseline model's compression model and back.

    The reference beside the continuations (``metrics.musicality.ROUND_TRIP``): a continuation is
    decoded by this codec, so an original after the round trip is the best it can sound. Round trips
    are kept in ``RunPaths.round_trips``, keyed by the baseline's weights (:func:`weights_fingerprint`)
    and the audio's bytes and rate: notebook 05 plays those notebook 04 measured without loading a
    model (or importing torch), and a rerun does not redo them. The model is loaded at the first
    round trip not kept. A ``model`` given is not the parameters' baseline: its round trips are not kept.
    """
    keep = params.run.round_trips if model is None else None
    weights = weights_fingerprint(params, BASELINE, CATEGORIES[0]) if keep is not None else ""
    loaded: list[MusicGen] = [] if model is None else [model]

    def through_codec(y: np.ndarray, sr: int) -> np.ndarray:
        import torch  # lazy: listen (05) imports this module for its records only; torch is slow to import

        if not loaded:
            from .models import load_model  # lazy: models imports audiocraft, which listen (05) does not need

            loaded.append(load_model(model_for(params, BASELINE, CATEGORIES[0]), seed=params.seed))
        m = loaded[0]
        codec = m.compression_model
        device = next(iter(codec.parameters())).device
        x = torch.from_numpy(au.resample(y, sr, m.sample_rate))[None, None]
        with torch.no_grad():  # a stereo codec hears the mono clip on both channels
            codes, scale = codec.encode(x.expand(-1, codec.channels, -1).to(device))
            out = codec.decode(codes, scale)[0, :, : x.shape[-1]].mean(0).float().cpu().numpy()
        return au.resample(out, m.sample_rate, sr)[: len(y)]

    def round_trip(y: np.ndarray, sr: int) -> np.ndarray:
        y = np.ascontiguousarray(y, dtype=np.float32)
        if keep is None:
            return through_codec(y, sr)
        path = keep / f"{text_sha1(f'{weights}|{sr}|{y.shape}|' + hashlib.sha1(y.tobytes()).hexdigest())}.npy"
        return kept_array(path, lambda: np.asarray(through_codec(y, sr), dtype=np.float32),
                          f"{len(y)} samples at {sr} Hz through the baseline's codec")

    return round_trip


def generation_processes(params: Params) -> int:
    """How many processes generate: ``evaluate.gen_nproc``, or with 0 one per visible GPU (1 without GPUs)."""
    if params.evaluate.gen_nproc > 0:
        return params.evaluate.gen_nproc
    import torch  # lazy: listen (05) imports this module for its records only; torch is slow to import

    return max(1, torch.cuda.device_count())


def run_generation(params: Params, categories: Sequence[str] = CATEGORIES, systems: Sequence[str] = SYSTEMS,
                   progress: bool = True) -> list[Generation]:
    """Generate all continuations in this process, or over up to :func:`generation_processes` torchrun ranks.

    No more ranks than batches left to generate: with one left (the A/A control after notebook 04's own batches),
    this process generates it, rather than wait for torchrun's processes to import torch and audiocraft.
    """
    processes = generation_processes(params)
    if processes > 1:  # only then: counting what is left reads every prompt's bytes, as generating does again
        processes = min(processes, pending_batches(params, categories, systems))
    if processes > 1:
        launch(params, categories, systems, processes)
        ids = {e.example_id for e in held_out_examples(params, categories)}
        return [g for g in load_generations(params.run_dir, systems) if g.category in categories and g.example_id in ids]
    out: list[Generation] = []
    examples = held_out_examples(params, categories)
    for system in systems:
        for category in categories:
            out.extend(generate_system(params, system, category, examples, progress=progress))
    return out


def read_generation(side: Path, run_dir: str | Path) -> Generation:
    """The record ``side`` (a continuation's JSON under ``run_dir``), its paths re-based on where the files are now.

    Records hold absolute paths. When the run dir has moved since (renamed, copied to another disk or machine), the
    continuation is the audio beside its record, and an original that lay in the old run dir lies at the same place
    in this one."""
    rec = Generation(**read_json(side))
    old = Path(rec.generated)
    wav = side.with_suffix(old.suffix or ".wav")
    below = wav.relative_to(run_dir)  # the generated file's path below the run dir, then and now
    depth = len(below.parts)
    if len(old.parts) <= depth or Path(*old.parts[-depth:]) != below:
        return dataclasses.replace(rec, generated=str(wav))
    old_run, original = Path(*old.parts[:-depth]), Path(rec.original)
    if original.is_relative_to(old_run):
        original = Path(run_dir) / original.relative_to(old_run)
    return dataclasses.replace(rec, generated=str(wav), original=str(original))


def load_generations(run_dir: str | Path, systems: Iterable[str] = SYSTEMS) -> list[Generation]:
    """Every continuation recorded under ``<run_dir>/generations`` (paths where the files are now)."""
    root = RunPaths(Path(run_dir)).generations
    out = []
    for system in systems:
        for side in sorted((root / system).rglob("*.json")) if (root / system).exists() else []:
            out.append(read_generation(side, run_dir))
    return out


# --------------------------------------------------------------------------- torchrun


def launch(params: Params, categories: Sequence[str], systems: Sequence[str], processes: int | None = None) -> None:
    """Run ``python -m silicon_sing.generate`` under torchrun: ``processes`` ranks (default
    :func:`generation_processes`).

    Started by the shared launcher :mod:`silicon_sing.torchrun`; a failure raises ``RuntimeError`` with
    the last 30 lines of the job's stderr (or, when it wrote none, of its stdout).
    """
    nproc = generation_processes(params) if processes is None else processes
    cmd = torchrun.command(["--standalone"], nproc, "silicon_sing.generate",
                           ["--params", str(params.source), "--overrides", json.dumps(params.overrides),
                            "--categories", *categories, "--systems", *systems])
    outcome = torchrun.run(cmd, env=torchrun.share_cpu_threads(dict(os.environ), nproc), tail_lines=30)
    if outcome.returncode != 0:
        _, tail = torchrun.failure_tail(outcome, n_lines=30)
        raise RuntimeError(f"generation under torchrun failed (exit {outcome.returncode}):\n{tail}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; under torchrun each rank (``RANK``/``WORLD_SIZE``) takes its share of the batches."""
    ap = argparse.ArgumentParser(prog="python -m silicon_sing.generate")
    ap.add_argument("--params", required=True)
    ap.add_argument("--overrides", default="{}")
    ap.add_argument("--categories", nargs="+", default=list(CATEGORIES))
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    args = ap.parse_args(argv)
    params = load_params(args.params, json.loads(args.overrides))
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    import torch  # lazy: listen (05) imports this module for its records only; torch is slow to import

    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    examples = held_out_examples(params, args.categories)
    offsets = batch_offsets(params, examples, args.systems, args.categories)
    for system in args.systems:
        for category in args.categories:
            generate_system(params, system, category, examples, rank=rank, world_size=world, progress=rank == 0,
                            offset=offsets[system, category])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
