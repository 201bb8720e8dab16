"""Run parameters: one YAML file per profile (``params/smoke.yaml``, ``params/paper.yaml``).

Notebooks take two papermill parameters, ``params_file`` and ``overrides`` (a dict with dotted
keys such as ``{"train.epochs": 1}``), and call :func:`load_params`. Each pipeline stage owns one
section dataclass; unknown keys are rejected with the file and key named, so a typo in a
parameter file never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CATEGORIES = ("acapella", "instrumental", "full")
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
    gen_nproc: int = 1  # torchrun processes for generation (one per GPU in the paper profile)
    use_sampling: bool = True
    top_k: int = 250  # audiocraft's MusicGen defaults
    temperature: float = 1.0
    cfg_coef: float = 3.0
    listen_per_cell: int = 2  # examples per (artist, category) in the listening room
    melody_condition: str = "none"  # melody models: "none" (no chroma) or "target" (audiocraft eval: leaks the answer)


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
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as recorded in the run directory."""
        return dataclasses.asdict(self)


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


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``data``, rejecting unknown keys."""
    names = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("source", "overrides")}
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ParamsError(f"{where}: unknown parameter(s) {unknown}; known: {sorted(names)}")
    kwargs = {}
    for k, v in data.items():
        default = names[k].default_factory() if names[k].default_factory is not dataclasses.MISSING else names[k].default
        if dataclasses.is_dataclass(default) and isinstance(v, dict):
            v = _build(type(default), v, f"{where}.{k}")
        kwargs[k] = v
    return cls(**kwargs)


def _apply_override(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for ``dotted='a.b'``."""
    *parents, last = dotted.split(".")
    node = data
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value


def load_params(params_file: str | os.PathLike[str] = "params/smoke.yaml", overrides: dict[str, Any] | None = None,
                root: str | os.PathLike[str] | None = None) -> Params:
    """Load a profile's parameter file, apply dotted ``overrides``, resolve paths against the repo root."""
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
    params = _build(Params, data, str(path))
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
