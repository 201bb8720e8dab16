"""Run parameters: one YAML file per profile (``params/smoke.yaml``, ``params/paper.yaml``).

Notebooks take two papermill parameters, ``params_file`` and ``overrides`` (a dict with dotted
keys such as ``{"train.epochs": 1}``), and call :func:`load_params`. Each pipeline stage owns one
section dataclass; unknown keys are rejected with the file and key named, so a typo in a
parameter file never silently falls back to a default. Every value is checked on load: its type
against the dataclass annotation (``bool`` must be a real YAML boolean, ``int`` refuses ``3.0``,
``"3"`` and ``true``; ``float`` accepts ints and stores a float; no NaN/inf), then its range or
choices from :data:`RULES`; a bad value raises :class:`ParamsError` naming the file, the dotted
key, the value and what is accepted.

Kept as one module of ~530 lines: it is the parameter schema — one section dataclass per stage, the
:data:`RULES` table that bounds their fields, the cross-field checks, the loader and
:class:`RunPaths` — and adding a parameter touches its dataclass field, its rule and its loader
path together; split, each change would span three files.

Notebook: every chapter (each takes ``params_file`` and ``overrides``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .machine import usable_cpus

CATEGORIES = ("acapella", "instrumental", "full")  # the stem files of a track, in folder (alphabetical) order
# the same categories in the paper's Table 1 order ("full" is its "Complete"): tables, plots, pre-training mix
CATEGORY_ORDER = ("instrumental", "acapella", "full")
Category = typing.Literal["acapella", "instrumental", "full"]  # one of CATEGORIES, as a parameter's type
SPLITS = ("train", "valid", "test")


class ParamsError(ValueError):
    """A parameter file is missing, malformed or names an unknown key."""


@dataclass
class CurateParams:
    """Dataset curation (stage 01)."""

    data_root: str | None = None  # None: synthesise the embedded default's stems into <run_dir>/raw
    synth_tracks_per_artist: int = 8
    synth_track_seconds: float = 12.0
    synth_sample_rate: int = 44100
    sample_rate: int = 32000  # MusicGen's rate
    segment_seconds: float = 6.0  # 30 s in the paper profile
    target_lufs: float = -18.0  # applied to the full mix; the same gain goes to all three stems
    duration_tolerance_s: float = 0.5  # stems of one track may differ by at most this much
    silence_db: float = -50.0  # a stem or segment whose RMS (dBFS) is below this is silent
    split_fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.5, "valid": 0.125, "test": 0.375}
    )


@dataclass
class CaptionParams:
    """Essentia captioning (stage 02)."""

    essentia_model_dir: str | None = None  # None: model-free mood/genre fallback
    caption_uuid: str | None = None  # None: generated once per run and recorded in the run dir
    key_profile: str = "edma"  # Essentia KeyExtractor profile (EDM-derived; suits loop-based pop)
    min_bpm_confidence: float = 1.0  # RhythmExtractor2013 confidence (0–5.3) below which BPM is withheld
    min_key_strength: float = 0.45  # KeyExtractor strength below which the key is withheld


@dataclass
class TrainParams:
    """Fine-tuning with torchrun (stage 03); defaults = smoke profile, paper values in params/paper.yaml."""

    model: str = "nano"  # "nano" (offline smoke model), an export dir, or a hub name: facebook/musicgen-melody
    nproc_per_node: int = 2  # torchrun processes (CPU processes or GPUs)
    dist_backend: str = "gloo"  # gloo on CPU, nccl on GPU
    epochs: int = 3
    updates_per_epoch: int = 12  # optimizer steps per epoch (100 in the paper recipe)
    batch_size: int = 4  # global, split evenly over ranks (8 in the paper recipe)
    lr: float = 1.0  # D-Adaptation multiplier: leave at 1
    optimizer: str = "dadam"  # "dadam" (D-Adaptation Adam) or "adamw"
    warmup_steps: int = 2  # linear warmup of the cosine schedule (8 in the paper recipe)
    cfg_dropout: float = 0.3  # classifier-free guidance: drop every condition of a batch with this probability
    word_dropout: float = 0.2  # caption word dropout; the run UUID is never dropped
    grad_clip: float = 1.0  # max gradient norm (0 = no clipping)
    precision: str = "fp32"  # fp32 on CPU; bf16/fp16 autocast on GPU
    token_cache: bool = True  # encode each segment once; False re-encodes audio every step (benchmark baseline)
    max_bad_steps: int = 5  # stop after this many non-finite steps in a row
    activation_checkpointing: bool = False  # recompute each transformer layer in the backward pass (less memory)
    fsdp: bool = False  # shard weights, gradients and optimizer state over ranks (PyTorch FSDP, as audiocraft)
    nnodes: int = 1  # machines in the job; > 1 needs rdzv_endpoint (see README, "several nodes")
    rdzv_endpoint: str | None = None  # host:port of the c10d rendezvous (node 0), for nnodes > 1
    rdzv_id: str = "silicon-sing"  # job id shared by the nodes of one run
    collective_timeout_minutes: float = 60.0  # how long ranks wait for each other (rank 0 writes GB checkpoints)
    gpu_memory_gib: float | None = None  # per-GPU memory for the fit check; None: what the GPUs report


# audiocraft's MusicGen sampling defaults: the paper profile's, and what a departure from them is named against
MUSICGEN_SAMPLING: dict[str, Any] = {"use_sampling": True, "top_k": 250, "temperature": 1.0, "cfg_coef": 3.0}


@dataclass
class EvaluateParams:
    """Continuations and metrics (stage 04)."""

    prompt_seconds: float = 2.0
    kl_backend: str = "spectral-classes"  # model-free; "passt" in the paper profile
    fad_backend: str = "mel-stats"  # model-free; "vggish" in the paper profile
    bootstrap: int = 1000  # bootstrap resamples per interval (KL, FAD, deltas)
    ci_level: float = 0.95
    fad_inf_steps: int = 25  # FAD-∞: FAD at this many frame counts, fit against 1/n (fadtk)
    fad_inf_min_n: int = 500  # smallest frame count of the fit (fadtk); lowered for small cells
    passt_weights: str | None = None  # None: $SILICON_SING_PASST_WEIGHTS, then the torch hub cache
    vggish_weights: str | None = None  # None: $SILICON_SING_VGGISH_WEIGHTS, then the torch hub cache
    allow_download: bool = False  # let the paper profile fetch missing PaSST/VGGish weights
    metrics_exclude_prompt: bool = True  # score only the continuation (audiocraft scores the whole clip, prompt included)
    gen_batch_size: int = 4  # continuations generated together (per rank)
    gen_nproc: int = 1  # torchrun processes for generation; 0: one per visible GPU (1 without GPUs)
    use_sampling: bool = MUSICGEN_SAMPLING["use_sampling"]
    top_k: int = MUSICGEN_SAMPLING["top_k"]
    temperature: float = MUSICGEN_SAMPLING["temperature"]
    cfg_coef: float = MUSICGEN_SAMPLING["cfg_coef"]
    listen_per_cell: int = 2  # examples per (artist, category) in the listening room
    melody_condition: str = "none"  # melody models: "none" (no chroma) or "target" (audiocraft eval: leaks the answer)
    # the A/A control (metrics.null_control): in these categories the baseline continues every test prompt a
    # second time under other seeds, and that copy is compared with the baseline as if it were the fine-tune;
    # one more generation pass per category. [] = no control
    null_control: list[Category] = field(default_factory=list)


@dataclass
class Params:
    """All parameters of one run."""

    profile: str = "smoke"
    run_dir: str = "runs/smoke"
    seed: int = 1234
    workers: int = 0  # processes for per-track work; 0 = all cores
    curate: CurateParams = field(default_factory=CurateParams)
    caption: CaptionParams = field(default_factory=CaptionParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    source: str | None = None  # the parameter file these came from
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted keys applied on top of the file

    @property
    def run(self) -> RunPaths:
        """The run directory's layout."""
        return RunPaths(Path(self.run_dir))

    @property
    def n_workers(self) -> int:
        """Worker processes to use (``workers`` or every core)."""
        return self.workers if self.workers > 0 else usable_cpus()

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as recorded in the run directory."""
        return dataclasses.asdict(self)


# Range and choices per field, checked after the type (which comes from the annotations).
# One line per field: ge/gt/le/lt bound the value, choices lists the accepted values.
RULES: dict[str, dict[str, Any]] = {
    "seed": {"ge": 0},
    "workers": {"ge": 0},
    "curate.synth_tracks_per_artist": {"ge": 1},
    "curate.synth_track_seconds": {"gt": 0},
    "curate.synth_sample_rate": {"ge": 8000, "le": 384000},
    "curate.sample_rate": {"ge": 8000, "le": 384000},
    "curate.segment_seconds": {"gt": 0},
    "curate.target_lufs": {"ge": -70, "le": 0},
    "curate.duration_tolerance_s": {"ge": 0},
    "curate.silence_db": {"ge": -200, "le": 0},
    "caption.key_profile": {"choices": ("diatonic", "krumhansl", "temperley", "weichai", "tonictriad", "temperley2005",
                                        "thpcp", "shaath", "gomez", "noland", "faraldo", "pentatonic", "edmm", "edma",
                                        "bgate", "braw")},  # Essentia KeyExtractor profileType
    "caption.min_bpm_confidence": {"ge": 0},
    "caption.min_key_strength": {"ge": 0, "le": 1},
    "train.nproc_per_node": {"ge": 1},
    "train.dist_backend": {"choices": ("gloo", "nccl", "mpi")},
    "train.epochs": {"ge": 1},
    "train.updates_per_epoch": {"ge": 1},
    "train.batch_size": {"ge": 1},
    "train.lr": {"gt": 0},
    "train.optimizer": {"choices": ("dadam", "adamw")},
    "train.warmup_steps": {"ge": 0},
    "train.cfg_dropout": {"ge": 0, "le": 1},
    "train.word_dropout": {"ge": 0, "le": 1},
    "train.grad_clip": {"ge": 0},
    "train.precision": {"choices": ("fp32", "bf16", "fp16")},
    "train.max_bad_steps": {"ge": 1},
    "train.nnodes": {"ge": 1},
    "train.collective_timeout_minutes": {"gt": 0},
    "train.gpu_memory_gib": {"gt": 0},
    "evaluate.prompt_seconds": {"gt": 0},
    "evaluate.kl_backend": {"choices": ("spectral-classes", "passt")},  # metrics.backends.PROBABILITY_BACKENDS
    "evaluate.fad_backend": {"choices": ("mel-stats", "vggish")},  # metrics.backends.EMBEDDING_BACKENDS
    "evaluate.bootstrap": {"ge": 1},
    "evaluate.ci_level": {"gt": 0, "lt": 1},
    "evaluate.fad_inf_steps": {"ge": 2},
    "evaluate.fad_inf_min_n": {"ge": 1},
    "evaluate.gen_batch_size": {"ge": 1},
    "evaluate.gen_nproc": {"ge": 0},
    "evaluate.top_k": {"ge": 0},
    "evaluate.temperature": {"gt": 0},
    "evaluate.cfg_coef": {"ge": 0},
    "evaluate.listen_per_cell": {"ge": 0},
    "evaluate.melody_condition": {"choices": ("none", "target")},
}
_BOUNDS = {"ge": (">=", lambda v, b: v >= b), "gt": (">", lambda v, b: v > b),
           "le": ("<=", lambda v, b: v <= b), "lt": ("<", lambda v, b: v < b)}


@dataclass(frozen=True)
class RunPaths:
    """Where each stage of one run keeps its files (two profiles never share a run dir)."""

    root: Path

    @property
    def raw(self) -> Path:
        """Synthetic raw stems (smoke profile only; a user's data_root is never written)."""
        return self.root / "raw"

    @property
    def curated(self) -> Path:
        """Stage 01: normalised tracks, segments, manifests, report, split."""
        return self.root / "curated"

    @property
    def captions(self) -> Path:
        """Stage 02: descriptors cache, captions table, the run's UUID."""
        return self.root / "captions"

    @property
    def tokens(self) -> Path:
        """Stage 03: compression-model token cache."""
        return self.root / "tokens"

    @property
    def checkpoints(self) -> Path:
        """Stage 03: training checkpoints and exported models."""
        return self.root / "checkpoints"

    @property
    def generations(self) -> Path:
        """Stage 04: generated continuations."""
        return self.root / "generations"

    @property
    def metrics(self) -> Path:
        """Stage 04: embeddings, probabilities, metrics JSON."""
        return self.root / "metrics"

    @property
    def notebooks(self) -> Path:
        """Executed notebooks of this run."""
        return self.root / "notebooks"

    # files and folders inside the stage folders: spelled here once, used by every stage

    def manifest(self, category: str, split: str) -> Path:
        """Stage 01: audiocraft's ``data.jsonl`` manifest of one category and split."""
        return self.curated / "manifests" / category / split / "data.jsonl"

    @property
    def tracks_table(self) -> Path:
        """Stage 01: one :class:`~silicon_sing.data.TrackRecord` per accepted track (``tracks.jsonl``)."""
        return self.curated / "tracks.jsonl"

    @property
    def segments_table(self) -> Path:
        """Stage 01: one :class:`~silicon_sing.data.SegmentRecord` per kept segment (``segments.jsonl``)."""
        return self.curated / "segments.jsonl"

    @property
    def curation_report(self) -> Path:
        """Stage 01: the validation report, summary and one row per file (``report.json``)."""
        return self.curated / "report.json"

    @property
    def split_table(self) -> Path:
        """Stage 01: each track's split with the seed and fractions that chose it (``split.json``)."""
        return self.curated / "split.json"

    def curation_state(self, track_id: str = "") -> Path:
        """Stage 01: a track's stored fingerprint and outcome (``state/<artist>/<track>.json``), or the folder."""
        return self.curated / "state" / (f"{track_id}.json" if track_id else "")

    def curated_track(self, track_id: str, category: str | None = None) -> Path:
        """Stage 01: a track's normalised stem (``tracks/<artist>/<track>/<category>.wav``), or its folder."""
        d = self.curated / "tracks" / track_id
        return d / f"{category}.wav" if category else d

    def curated_segment(self, category: str, track_id: str, index: int | None = None) -> Path:
        """Stage 01: one segment (``segments/<category>/<artist>/<track>/<index>.wav``), or the track's folder."""
        d = self.curated / "segments" / category / track_id
        return d / f"{index:03d}.wav" if index is not None else d

    @property
    def run_uuid(self) -> Path:
        """Stage 02: the run's UUID (``run_uuid.json``), the trigger every caption starts with."""
        return self.captions / "run_uuid.json"

    @property
    def captions_table(self) -> Path:
        """Stage 02: one caption per track and category (``captions.jsonl``)."""
        return self.captions / "captions.jsonl"

    @property
    def descriptors(self) -> Path:
        """Stage 02: the Essentia descriptors per track (``descriptors.jsonl``)."""
        return self.captions / "descriptors.jsonl"

    @property
    def descriptor_cache(self) -> Path:
        """Stage 02: one descriptors JSON per stem, keyed by the audio's hash (reused across runs of a profile)."""
        return self.captions / "descriptors"

    def category_dir(self, category: str) -> Path:
        """Stage 03: checkpoint, log, lock and export of one category."""
        return self.checkpoints / category

    def train_log(self, category: str) -> Path:
        """Stage 03: the per-step JSONL log of one category (``log.jsonl``)."""
        return self.category_dir(category) / "log.jsonl"

    def train_lock(self, category: str) -> Path:
        """Stage 03: the lock that lets one job at a time train ``category`` in this run dir."""
        return self.category_dir(category) / ".lock"

    def torchrun_logs(self, category: str) -> Path:
        """Stage 03: torchrun's per-rank error files of the last job whose first category this is (``torchrun/``)."""
        return self.category_dir(category) / "torchrun"

    def torchrun_stderr(self, category: str) -> Path:
        """Stage 03: standard error of the last training job whose first category this is (``torchrun.stderr``)."""
        return self.category_dir(category) / "torchrun.stderr"

    def export(self, category: str) -> Path:
        """Stage 03: the fine-tuned model of one category, loadable by ``MusicGen.get_pretrained``."""
        return self.category_dir(category) / "export"

    def export_done(self, category: str) -> Path:
        """Stage 03: the record of a finished fine-tuning (``export/done.json``)."""
        return self.export(category) / "done.json"

    def generation(self, system: str, category: str, track_id: str, index: int) -> Path:
        """Stage 04: one continuation (``generations/<system>/<category>/<artist>/<track>/<index>.wav``)."""
        return self.generations / system / category / track_id / f"{index:03d}.wav"

    @property
    def metrics_cache(self) -> Path:
        """Stage 04: embeddings and class probabilities keyed by file hash."""
        return self.metrics / "cache"

    @property
    def round_trips(self) -> Path:
        """Stage 04 (read again by 05): originals through the baseline's codec, keyed by its weights and the audio."""
        return self.metrics_cache / "round_trip"

    @property
    def metrics_json(self) -> Path:
        """Stage 04: the evaluation's ``metrics.json``."""
        return self.metrics / "metrics.json"

    @property
    def null_control_metrics(self) -> Path:
        """Stage 04, A/A control: KL/FAD of the baseline against itself under other seeds (as ``metrics.json``)."""
        return self.metrics / "null_control_metrics.json"

    @property
    def null_control(self) -> Path:
        """Stage 04, A/A control: how many intervals excluded zero with nothing changed."""
        return self.metrics / "null_control.json"

    @property
    def timings(self) -> Path:
        """Wall time of each executed notebook (``timings.json``), read by the reproduce chapter."""
        return self.notebooks / "timings.json"

    @property
    def notebooks_lock(self) -> Path:
        """The lock that lets one ``run_notebooks`` at a time write this run dir."""
        return self.root / ".lock-notebooks"


def find_repo_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The repository root (holding ``_config.yml`` and ``params/``), searched upward from ``start``."""
    here = Path(start or os.getcwd()).resolve()
    for p in (here, *here.parents):
        if (p / "_config.yml").exists() and (p / "params").is_dir():
            return p
    env = os.environ.get("SILICON_SING_ROOT")
    if env:
        return Path(env).resolve()
    raise ParamsError(f"cannot find the repository root above {here} (looked for _config.yml and params/)")


def _type_name(tp: Any) -> str:
    """``int``, ``str | None``, ``dict[str, float]``: an annotation as a reader writes it."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _check_type(value: Any, tp: Any, where: str) -> Any:
    """``value`` if it is of annotation ``tp`` (an int for a float becomes a float); else raise ParamsError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)

    def bad(expected: str) -> ParamsError:
        return ParamsError(f"{where} = {value!r} ({type(value).__name__}): expected {expected}")

    if tp is Any:
        return value
    if origin is typing.Literal:
        if value not in args or isinstance(value, bool) != any(isinstance(a, bool) for a in args if a == value):
            raise bad(f"one of {list(args)}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _check_type(value, arg, where)
            except ParamsError:
                pass
        raise bad(_type_name(tp))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad(f"a mapping ({_type_name(tp)})")
        kt, vt = args or (Any, Any)
        return {_check_type(k, kt, f"{where} key"): _check_type(v, vt, f"{where}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise bad(f"a list ({_type_name(tp)})")
        return [_check_type(v, args[0] if args else Any, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("a bool (true or false, unquoted)")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an int (a whole number, unquoted)")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number (float)")
        if not math.isfinite(value):
            raise bad("a finite number (float)")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("a str")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise bad(_type_name(tp))
    return value


def _describe_rule(dotted: str) -> str:
    """What :data:`RULES` accepts for ``dotted``: ``"> 0"``, ``">= 0 and <= 1"``, ``"one of [...]"`` or ``""``."""
    rule = RULES.get(dotted, {})
    if "choices" in rule:
        return f"one of {list(rule['choices'])}"
    return " and ".join(f"{op} {rule[k]}" for k, (op, _) in _BOUNDS.items() if k in rule)


def _check_rule(value: Any, dotted: str, where: str) -> None:
    """Range and choices of one field from :data:`RULES`."""
    rule = RULES.get(dotted, {})
    if value is None:
        return
    if "choices" in rule and value not in rule["choices"]:
        raise ParamsError(f"{where} = {value!r}: expected one of {list(rule['choices'])}")
    if any(k in rule and not ok(value, rule[k]) for k, (_, ok) in _BOUNDS.items()):
        raise ParamsError(f"{where} = {value!r}: expected a value {_describe_rule(dotted)}")


def _check_split_fractions(fractions: dict[str, float], where: str) -> None:
    """Keys exactly train/valid/test, each fraction in [0, 1], summing to 1 (± 1e-6)."""
    if set(fractions) != set(SPLITS):
        raise ParamsError(f"{where} = {fractions!r}: expected exactly the keys {list(SPLITS)}")
    for k, v in fractions.items():
        if not 0.0 <= v <= 1.0:
            raise ParamsError(f"{where}.{k} = {v!r}: expected a fraction in [0, 1]")
    total = sum(fractions.values())
    if abs(total - 1.0) > 1e-6:
        raise ParamsError(f"{where} = {fractions!r}: the fractions sum to {total:g}; expected a sum of 1")


def _build(cls: type, data: Any, file: str, prefix: str = "", overridden: frozenset[str] = frozenset()) -> Any:
    """Instantiate dataclass ``cls`` from ``data``, rejecting unknown keys and checking every value."""
    def where(dotted: str) -> str:
        return f"{file}: {dotted}"

    def note(dotted: str) -> str:
        return " (set by overrides)" if dotted in overridden else ""

    if not isinstance(data, dict):
        section = prefix.rstrip(".")
        raise ParamsError(f"{where(section)} = {data!r}: expected a mapping of parameters{note(section)}")
    names = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("source", "overrides")}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ParamsError(f"{file}{'.' + prefix.rstrip('.') if prefix else ''}: unknown parameter(s) {unknown}; "
                          f"known: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for k, v in data.items():
        dotted = prefix + k
        tp = hints[k]
        if dataclasses.is_dataclass(tp):
            v = _build(typing.cast(type, tp), v, file, dotted + ".", overridden)
        else:
            try:
                try:
                    v = _check_type(v, tp, where(dotted))
                except ParamsError as e:
                    rule = _describe_rule(dotted)
                    raise ParamsError(f"{e}{', ' + rule if rule else ''}") from None
                _check_rule(v, dotted, where(dotted))
                if dotted == "curate.split_fractions":
                    _check_split_fractions(v, where(dotted))
            except ParamsError as e:
                raise ParamsError(f"{e}{note(dotted)}") from None
        kwargs[k] = v
    return cls(**kwargs)


def _apply_override(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for ``dotted='a.b'``."""
    *parents, last = dotted.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ParamsError(f"override {dotted!r}: {p!r} is {node!r}, not a section of parameters")
    node[last] = value


def _prefixes(dotted: str) -> list[str]:
    """``a.b.c`` → ``a``, ``a.b``, ``a.b.c`` (an override of a section touches its keys' parents)."""
    parts = dotted.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def parse_overrides(overrides: dict[str, Any] | str | None) -> dict[str, Any]:
    """Dotted overrides as a dict; a string (``papermill -p overrides '{...}'``, a CLI flag) is parsed as JSON or YAML."""
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        text = overrides.strip()
        try:
            parsed = json.loads(text) if text else None  # JSON first: PyYAML reads 1e-3 as a string
        except json.JSONDecodeError:
            try:
                parsed = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise ParamsError(f"overrides {overrides!r}: neither JSON nor YAML ({e})") from e
        overrides = {} if parsed is None else parsed
    if not isinstance(overrides, dict) or not all(isinstance(k, str) for k in overrides):
        raise ParamsError(f"overrides = {overrides!r}: expected a mapping of dotted keys to values, "
                          f"e.g. {{\"train.epochs\": 1}} (a dict, or that mapping as a JSON/YAML string)")
    return dict(overrides)


def _check_across_fields(params: Params, where: str) -> None:
    """Rules that tie fields together (each field alone was checked by :func:`_build`)."""
    t = params.train
    total = t.epochs * t.updates_per_epoch
    if t.warmup_steps >= total:
        # audiocraft's cosine schedule divides by (total - warmup): it would fail after the first epoch
        raise ParamsError(f"{where}: train.warmup_steps = {t.warmup_steps} must be smaller than train.epochs x "
                          f"train.updates_per_epoch = {total}")
    if t.nnodes > 1 and not t.rdzv_endpoint:
        raise ParamsError(f"{where}: train.nnodes = {t.nnodes} needs train.rdzv_endpoint (host:port of the first node)")


def load_params(params_file: str | os.PathLike[str] = "params/smoke.yaml",
                overrides: dict[str, Any] | str | None = None,
                root: str | os.PathLike[str] | None = None) -> Params:
    """Load a profile's parameter file, apply dotted ``overrides``, resolve paths against the repo root.

    ``overrides`` is a dict or the same mapping as a JSON/YAML string (what ``papermill -p`` passes).
    """
    overrides = parse_overrides(overrides)
    path = Path(params_file)
    if not path.is_absolute():
        base = Path(root) if root else find_repo_root()
        path = base / path
    if not path.exists():
        raise ParamsError(f"parameter file {path} does not exist (profiles live in params/*.yaml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of parameters at the top level")
    for k, v in (overrides or {}).items():
        _apply_override(data, k, v)
    overridden = frozenset(k for key in (overrides or {}) for k in _prefixes(key))
    params = _build(Params, data, str(path), overridden=overridden)
    _check_across_fields(params, str(path))
    params.source = str(path)
    params.overrides = dict(overrides or {})
    repo = path.parent.parent
    params.run_dir = str((repo / params.run_dir).resolve()) if not Path(params.run_dir).is_absolute() else params.run_dir
    root_dir = params.curate.data_root
    if root_dir and not Path(root_dir).expanduser().is_absolute():
        params.curate.data_root = str((repo / root_dir).resolve())
    elif root_dir:
        params.curate.data_root = str(Path(root_dir).expanduser())
    return params
