"""From (original, continuation) file pairs to per-cell KL/FAD results, paired deltas and metrics JSON.

A *pair* is one example: an original test segment and one system's continuation of its prompt,
labelled with artist, category, system ("baseline" / "fine-tuned") and an ``example_id`` shared by
the systems' continuations of the same prompt. A *cell* is (artist, category, system). Segments of
one test track are not independent, so every interval resamples *tracks* (``track_id``; derived
from segment ids ``<artist>/<track>/<category>/<index>`` when not given): see :mod:`.stats`.

    pairs = [EvalPair(orig, gen, artist, category, system, example_id), ...]
    kl_b, fad_b = backends_from_params(params.evaluate)
    report = evaluate(pairs, kl_b, fad_b, params.run.metrics_cache, n_boot=..., seed=...)
    write_metrics(params.run.metrics_json, report)

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..fsutil import atomic_write_json, file_sha1, read_json, text_sha1
from ..generate import BASELINE, FINETUNED
from ..params import CATEGORY_ORDER, EvaluateParams, Params
from .backends import (
    EmbeddingBackend,
    ProbabilityBackend,
    get_embedding_backend,
    get_probability_backend,
)
from .cache import cached_embed, cached_window_probs
from .frechet import fad_from_embeddings, fad_inf
from .kl import mean_kl, pair_kl
from .stats import (
    CellResult,
    DeltaResult,
    bootstrap_fads,
    bootstrap_mean_ci,
    fad_bootstrap_ci,
    fad_cell_ci,
    paired_delta_ci,
    small_sample_ci,
)

RESAMPLING_UNIT = "track"

METRICS_SCHEMA = 4  # 2: intervals resample tracks; cells carry n_tracks, n_segments; 3: small-sample t intervals;
# 4: a system's own FAD interval too


@dataclass(frozen=True)
class EvalPair:
    """One example: an original segment and one system's continuation of its prompt."""

    original: str
    generated: str
    artist: str
    category: str
    system: str
    example_id: str
    skip_seconds: float = 0.0  # score both clips from here on (the prompt length scores the continuation only)
    track_id: str = ""  # the test track the segment comes from; "" = derived from example_id (see track_of)


def track_of(example_id: str) -> str:
    """The track of a segment id ``<artist>/<track>/<category>/<index>``; any other id is its own track."""
    return example_id.rsplit("/", 2)[0] if example_id.count("/") >= 3 else example_id


def pair_track(pair: EvalPair) -> str:
    """The resampling unit of a pair: its ``track_id``, else the track named in its ``example_id``."""
    return pair.track_id or track_of(pair.example_id)


@dataclass
class PairFeatures:
    """What the metrics need from one pair: its KL and both clips' embedding frames."""

    pair: EvalPair
    kl: float
    original_frames: np.ndarray
    generated_frames: np.ndarray


@dataclass
class MetricsReport:
    """Everything the evaluation writes: cells, deltas and how they were computed."""

    cells: list[CellResult]
    deltas: list[DeltaResult]
    meta: dict[str, Any] = field(default_factory=dict)


def as_pairs(rows: Iterable[Any], exclude_prompt: bool = False) -> list[EvalPair]:
    """EvalPairs from EvalPairs, tuples (original, generated, artist, category, system, example_id[, skip]),
    dicts, or records with those attributes (e.g. :class:`silicon_sing.generate.Generation`).

    ``exclude_prompt=True`` sets ``skip_seconds`` from a record's ``prompt_seconds``, so only the
    continuation is scored; by default the whole clip is, prompt included, as audiocraft does.
    A record's ``track_id`` is kept when it has one.
    """
    names = [f.name for f in dataclasses.fields(EvalPair)][:6]
    out = []
    for r in rows:
        if isinstance(r, EvalPair):
            out.append(r)
        elif isinstance(r, (tuple, list)):
            fields: dict[str, Any] = dict(zip(names, (str(v) for v in r[:6])))
            if len(r) > 6:
                fields["skip_seconds"] = float(r[6])
            if len(r) > 7:
                fields["track_id"] = str(r[7])
            out.append(EvalPair(**fields))
        else:
            rec = r if isinstance(r, dict) else vars(r)
            missing = [k for k in names if rec.get(k) is None]
            if missing:
                raise ValueError(f"pair record {r!r} lacks {missing}")
            skip = float(rec.get("prompt_seconds", 0.0) if exclude_prompt else rec.get("skip_seconds", 0.0))
            out.append(EvalPair(**{k: str(rec[k]) for k in names}, skip_seconds=skip,
                                track_id=str(rec.get("track_id") or "")))
    return out


def backends_from_params(ev: EvaluateParams, device: str | None = None) -> tuple[ProbabilityBackend, EmbeddingBackend]:
    """Build the KL and FAD backends named in an ``EvaluateParams`` section."""
    kl_kw: dict[str, Any] = {}
    fad_kw: dict[str, Any] = {}
    if ev.kl_backend == "passt":
        kl_kw = dict(weights=ev.passt_weights, allow_download=ev.allow_download, device=device)
    if ev.fad_backend == "vggish":
        fad_kw = dict(weights=ev.vggish_weights, allow_download=ev.allow_download, device=device)
    return get_probability_backend(ev.kl_backend, **kl_kw), get_embedding_backend(ev.fad_backend, **fad_kw)


def compute_features(pairs: Iterable[Any], prob_backend: ProbabilityBackend,
                     emb_backend: EmbeddingBackend, cache_dir: str | os.PathLike[str] | None,
                     progress: bool = False) -> list[PairFeatures]:
    """Per-pair KL (audiocraft convention) and embedding frames, through the per-file cache."""
    items = as_pairs(pairs)
    if progress:
        from tqdm.auto import tqdm  # lazy: only with progress=True (tqdm.auto probes for a notebook)

        items = tqdm(items, desc="KL/FAD features")
    out = []
    for p in items:
        skip = p.skip_seconds
        kl = pair_kl(cached_window_probs(prob_backend, p.original, cache_dir, skip),
                     cached_window_probs(prob_backend, p.generated, cache_dir, skip))
        out.append(PairFeatures(p, kl, cached_embed(emb_backend, p.original, cache_dir, skip),
                                cached_embed(emb_backend, p.generated, cache_dir, skip)))
    return out


def _seed(seed: int, *keys: str) -> int:
    """A per-cell seed independent of the order cells are processed in."""
    return (seed * 1_000_003 + zlib.crc32("|".join(keys).encode())) % 2**32


def _order(key: tuple[str, ...]) -> tuple[Any, ...]:
    """Sort key: the paper's category order, then artist, then baseline before fine-tuned."""
    cat = CATEGORY_ORDER.index(key[1]) if key[1] in CATEGORY_ORDER else len(CATEGORY_ORDER)
    sys_rank = {BASELINE: 0, FINETUNED: 1}.get(key[2], 2) if len(key) > 2 else 0
    return (cat, key[1], key[0], sys_rank, key[2:])


def _group(features: list[PairFeatures]) -> dict[tuple[str, str, str], list[PairFeatures]]:
    """Features by (artist, category, system), each list sorted by example_id; duplicate ids are an error."""
    cells: dict[tuple[str, str, str], list[PairFeatures]] = defaultdict(list)
    for f in features:
        cells[(f.pair.artist, f.pair.category, f.pair.system)].append(f)
    for key, fs in cells.items():
        ids = [f.pair.example_id for f in fs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"cell {key} has duplicate example_id(s); each prompt must appear once per system")
        fs.sort(key=lambda f: f.pair.example_id)
    return dict(sorted(cells.items(), key=lambda kv: _order(kv[0])))


def _check_shared_originals(fs_by_system: dict[str, list[PairFeatures]], artist: str, category: str) -> None:
    """Raise if one example_id points at different original files in different systems (pairing would be wrong)."""
    seen: dict[str, str] = {}
    for fs in fs_by_system.values():
        for f in fs:
            first = seen.setdefault(f.pair.example_id, f.pair.original)
            if Path(first) != Path(f.pair.original):
                raise ValueError(f"({artist}, {category}) example {f.pair.example_id!r} has two originals: "
                                 f"{first} and {f.pair.original}")


def _fad_replicates(fs_by_system: dict[str, list[PairFeatures]], ids: list[str], n_boot: int,
                    seed: int) -> dict[str, np.ndarray]:
    """FAD bootstrap replicates per system, all from the same draws of the tracks of the examples ``ids``."""
    by_id = {sys: {f.pair.example_id: f for f in fs} for sys, fs in fs_by_system.items()}
    first = next(iter(by_id.values()))
    tracks = [pair_track(first[i].pair) for i in ids]
    if len(ids) < 2 or n_boot < 1 or len(set(tracks)) < 2:
        return {}
    orig = [first[i].original_frames for i in ids]  # originals are shared by the systems' pairs
    systems = list(by_id)
    reps = bootstrap_fads(orig, [[by_id[s][i].generated_frames for i in ids] for s in systems], n_boot, seed,
                          groups=tracks)
    return dict(zip(systems, reps))


def analyse_features(features: list[PairFeatures], n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                     fad_inf_steps: int = 25, fad_inf_min_n: int = 500, kl_backend: str = "", fad_backend: str = "",
                     baseline: str = BASELINE, finetuned: str = FINETUNED) -> tuple[list[CellResult], list[DeltaResult]]:
    """Cells and paired deltas; per (artist, category) one set of FAD draws serves every system and the delta."""
    cells = _group(features)
    cell_results: list[CellResult] = []
    deltas: list[DeltaResult] = []
    for artist, category in dict.fromkeys((a, c) for a, c, _ in cells):
        fs_by_system = {sys: fs for (a, c, sys), fs in cells.items() if (a, c) == (artist, category)}
        id_sets = {sys: [f.pair.example_id for f in fs] for sys, fs in fs_by_system.items()}
        shared = sorted(set.intersection(*(set(v) for v in id_sets.values())))
        _check_shared_originals(fs_by_system, artist, category)
        s_fad = _seed(seed, artist, category, "fad")
        # the usual case: every system continued the same prompts, so one set of draws serves all
        same_examples = all(v == shared for v in id_sets.values())
        reps = _fad_replicates(fs_by_system, shared, n_boot, s_fad) if same_examples else {}
        fad_by_system: dict[str, float] = {}
        for system, fs in fs_by_system.items():
            s = _seed(seed, artist, category, system)
            kls = [f.kl for f in fs]
            tracks = [pair_track(f.pair) for f in fs]
            orig = [f.original_frames for f in fs]
            gen = [f.generated_frames for f in fs]
            fad = fad_from_embeddings(np.concatenate(orig), np.concatenate(gen))
            inf = fad_inf(np.concatenate(orig), np.concatenate(gen), fad_inf_steps, fad_inf_min_n, s)
            fad_by_system[system] = fad.value
            fad_ci = fad_cell_ci(fad.value, reps[system], len(set(tracks)), level) if system in reps else \
                fad_bootstrap_ci(orig, gen, n_boot, level, s, groups=tracks)
            cell_results.append(CellResult(
                artist=artist, category=category, system=system, n=len(fs),
                kl=mean_kl(kls), kl_ci=bootstrap_mean_ci(kls, n_boot, level, s, groups=tracks, bounds=(0.0, np.inf)),
                fad=fad.value, fad_ci=fad_ci, fad_inf=inf.value, fad_inf_r2=inf.r2, fad_inf_slope=inf.slope,
                n_frames_original=fad.n_a, n_frames_generated=fad.n_b,
                kl_backend=kl_backend, fad_backend=fad_backend,
                example_ids=[f.pair.example_id for f in fs], kl_values=kls,
                n_tracks=len(set(tracks)), n_segments=len(fs), track_ids=tracks,
            ))
        if baseline not in fs_by_system or finetuned not in fs_by_system:
            continue
        base = {f.pair.example_id: f for f in fs_by_system[baseline]}
        ft = {f.pair.example_id: f for f in fs_by_system[finetuned]}
        ids = sorted(set(base) & set(ft))
        if not ids:
            continue
        s = _seed(seed, artist, category, "delta")
        kb, kf = [base[i].kl for i in ids], [ft[i].kl for i in ids]
        tracks = [pair_track(base[i].pair) for i in ids]
        n_tr = len(set(tracks))
        d_kl, kl_ci = paired_delta_ci(kb, kf, n_boot, level, s, groups=tracks)
        deltas.append(DeltaResult(artist, category, "kl", len(ids), mean_kl(kb), mean_kl(kf), d_kl, kl_ci,
                                  baseline, finetuned, n_tracks=n_tr, n_segments=len(ids)))
        if same_examples:  # the cells' FADs are already on exactly these examples
            fb, ff = fad_by_system[baseline], fad_by_system[finetuned]
        else:
            orig = [base[i].original_frames for i in ids]
            fb = fad_from_embeddings(np.concatenate(orig), np.concatenate([base[i].generated_frames for i in ids])).value
            ff = fad_from_embeddings(np.concatenate(orig), np.concatenate([ft[i].generated_frames for i in ids])).value
        if not (baseline in reps and finetuned in reps):
            pair_reps = _fad_replicates({baseline: [base[i] for i in ids], finetuned: [ft[i] for i in ids]},
                                        ids, n_boot, s_fad)
        else:
            pair_reps = reps
        ci = small_sample_ci(ff - fb, pair_reps[finetuned] - pair_reps[baseline], n_tr, level) if pair_reps \
            else (math.nan, math.nan)
        deltas.append(DeltaResult(artist, category, "fad", len(ids), fb, ff, ff - fb, ci, baseline, finetuned,
                                  n_tracks=n_tr, n_segments=len(ids)))
    return cell_results, deltas


def cells_from_features(features: list[PairFeatures], n_boot: int = 1000, level: float = 0.95, seed: int = 0,
                        fad_inf_steps: int = 25, fad_inf_min_n: int = 500, kl_backend: str = "",
                        fad_backend: str = "") -> list[CellResult]:
    """One :class:`CellResult` per (artist, category, system)."""
    return analyse_features(features, n_boot, level, seed, fad_inf_steps, fad_inf_min_n, kl_backend, fad_backend)[0]


def deltas_from_features(features: list[PairFeatures], baseline: str = BASELINE, finetuned: str = FINETUNED,
                         n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> list[DeltaResult]:
    """Paired fine-tuned − baseline deltas of KL and FAD per (artist, category), on shared example_ids."""
    return analyse_features(features, n_boot, level, seed, fad_inf_steps=2, fad_inf_min_n=2,
                            baseline=baseline, finetuned=finetuned)[1]


def evaluate_cells(pairs: Iterable[EvalPair | Sequence[Any]], prob_backend: ProbabilityBackend,
                   emb_backend: EmbeddingBackend, cache_dir: str | os.PathLike[str] | None,
                   n_boot: int = 1000, level: float = 0.95, seed: int = 0, fad_inf_steps: int = 25,
                   fad_inf_min_n: int = 500) -> list[CellResult]:
    """KL and FAD with intervals for every (artist, category, system) cell of ``pairs``."""
    feats = compute_features(pairs, prob_backend, emb_backend, cache_dir)
    return cells_from_features(feats, n_boot, level, seed, fad_inf_steps, fad_inf_min_n,
                               prob_backend.name, emb_backend.name)


def evaluate_deltas(pairs: Iterable[EvalPair | Sequence[Any]], prob_backend: ProbabilityBackend,
                    emb_backend: EmbeddingBackend, cache_dir: str | os.PathLike[str] | None,
                    baseline: str = BASELINE, finetuned: str = FINETUNED, n_boot: int = 1000,
                    level: float = 0.95, seed: int = 0) -> list[DeltaResult]:
    """Paired fine-tuned − baseline deltas (KL and FAD) for every (artist, category) of ``pairs``."""
    feats = compute_features(pairs, prob_backend, emb_backend, cache_dir)
    return deltas_from_features(feats, baseline, finetuned, n_boot, level, seed)


def inputs_fingerprint(pairs: list[EvalPair], prob_backend: ProbabilityBackend, emb_backend: EmbeddingBackend,
                       settings: dict[str, Any]) -> str:
    """Hash of everything a metrics report depends on: pairs, file contents, backends, settings."""
    rows = sorted([*dataclasses.astuple(p), file_sha1(p.original), file_sha1(p.generated)] for p in pairs)
    blob = json.dumps([METRICS_SCHEMA, rows, prob_backend.fingerprint, emb_backend.fingerprint, settings],
                      sort_keys=True, default=str)
    return text_sha1(blob)


def evaluate(pairs: Iterable[EvalPair | Sequence[Any]], prob_backend: ProbabilityBackend,
             emb_backend: EmbeddingBackend, cache_dir: str | os.PathLike[str] | None, n_boot: int = 1000,
             level: float = 0.95, seed: int = 0, fad_inf_steps: int = 25, fad_inf_min_n: int = 500,
             baseline: str = BASELINE, finetuned: str = FINETUNED, progress: bool = False,
             out: str | os.PathLike[str] | None = None) -> MetricsReport:
    """Cells and deltas from one pass over the (cached) features, with the settings recorded in ``meta``.

    With ``out``, the report is written there, and a rerun whose inputs (pairs, file contents,
    backend fingerprints, settings) are unchanged reads it back instead of recomputing.
    """
    items = as_pairs(pairs)
    settings = dict(n_boot=n_boot, ci_level=level, seed=seed, fad_inf_steps=fad_inf_steps,
                    fad_inf_min_n=fad_inf_min_n, baseline=baseline, finetuned=finetuned)
    fp = inputs_fingerprint(items, prob_backend, emb_backend, settings)
    if out is not None and Path(out).exists():
        try:
            previous = read_metrics(out)
        except (ValueError, KeyError, TypeError):
            previous = None  # unreadable or older layout: recompute
        if previous is not None and previous.meta.get("inputs_fingerprint") == fp:
            return previous
    feats = compute_features(items, prob_backend, emb_backend, cache_dir, progress)
    cells, deltas = analyse_features(feats, n_boot, level, seed, fad_inf_steps, fad_inf_min_n,
                                     prob_backend.name, emb_backend.name, baseline, finetuned)
    meta = {
        "schema": METRICS_SCHEMA,
        "inputs_fingerprint": fp,
        "kl_backend": prob_backend.name, "kl_fingerprint": prob_backend.fingerprint,
        "fad_backend": emb_backend.name, "fad_fingerprint": emb_backend.fingerprint,
        **settings,
        "n_pairs": len(feats),
        "resampling_unit": RESAMPLING_UNIT,
        "ci_note": f"{100 * level:g} % intervals over test tracks from a cluster bootstrap (each replicate draws the "
                   "cell's test tracks with replacement and keeps all their segments): KL means and the paired "
                   "deltas (KL and FAD) are the estimate ± Student's t (tracks − 1 df) times the bootstrap standard "
                   "error rescaled by sqrt(G/(G-1)) (stats.small_sample_ci), a system's own FAD interval too "
                   "(at or above 0).",
        "kl_convention": "KL(original || generated), audiocraft: eps=1e-6 on generated, per-window, averaged",
        "fad_note": "FAD depends on the number of frames; compare cells at equal n or use fad_inf (fadtk FAD-inf). "
                    "FAD's bootstrap replicates sit above the point estimate at small n (a resample repeats clips), so "
                    "intervals use their spread, not their percentiles.",
    }
    report = MetricsReport(cells, deltas, meta)
    if out is not None:
        write_metrics(out, report)
    return report


def jsonable(obj: Any) -> Any:
    """Dataclasses → dicts, tuples → lists, NaN/inf → None (strict JSON)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _float(v: Any) -> float:
    """JSON value → float (None → NaN)."""
    return math.nan if v is None else float(v)


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    """Rebuild a CellResult/DeltaResult from its JSON dict (None → NaN, lists → tuples for intervals)."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        v = d[f.name]
        if f.name.endswith("ci"):
            v = tuple(_float(x) for x in v)
        elif f.name == "kl_values":
            v = [_float(x) for x in v]
        elif f.type in ("float", float):
            v = _float(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def write_metrics(path: str | os.PathLike[str], report: MetricsReport) -> Path:
    """Write the metrics JSON atomically."""
    return atomic_write_json(path, jsonable(report))


def read_metrics(path: str | os.PathLike[str]) -> MetricsReport:
    """Read a metrics JSON written by :func:`write_metrics`."""
    d = read_json(path)
    return MetricsReport([_from_dict(CellResult, c) for c in d.get("cells", [])],
                         [_from_dict(DeltaResult, x) for x in d.get("deltas", [])], d.get("meta", {}))


def evaluate_with_params(pairs: Iterable[Any], params: Params, device: str | None = None,
                         progress: bool = False, out: str | os.PathLike[str] | None = "default",
                         baseline: str = BASELINE, finetuned: str = FINETUNED) -> MetricsReport:
    """:func:`evaluate` with backends, cache dir, bootstrap, FAD-∞ and prompt-exclusion settings from a ``Params``.

    ``pairs`` may be :func:`silicon_sing.generate.load_generations` records directly.
    ``out="default"`` writes ``<run_dir>/metrics/metrics.json`` (and reuses it when nothing changed);
    ``out=None`` writes nothing. ``baseline``/``finetuned`` name the two systems of the deltas
    (the A/A control, :mod:`.null_control`, compares the baseline with itself reseeded).
    """
    ev = params.evaluate
    kl_b, fad_b = backends_from_params(ev, device)
    target = params.run.metrics_json if out == "default" else out
    pairs = as_pairs(pairs, exclude_prompt=ev.metrics_exclude_prompt)
    return evaluate(pairs, kl_b, fad_b, params.run.metrics_cache, n_boot=ev.bootstrap,
                    level=ev.ci_level, seed=params.seed, fad_inf_steps=ev.fad_inf_steps,
                    fad_inf_min_n=ev.fad_inf_min_n, baseline=baseline, finetuned=finetuned, progress=progress,
                    out=target)
