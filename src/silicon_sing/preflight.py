"""Every stage's prerequisites, checked before the first stage starts (used by :mod:`silicon_sing.pipeline`).

A paper-profile run that finds its missing T5 weights after an hour of curation and captioning has
wasted the hour. :func:`problems` asks each stage, without running it, whether what it will need is
there — the stems, Essentia's models, the MusicGen / T5 / demucs caches, the PaSST and VGGish
weights, GPUs for ``nccl`` — and :func:`check` raises one :class:`PrerequisitesMissing` listing
them all, each with its fix. Nothing is downloaded and no model is loaded.
"""

from __future__ import annotations

from pathlib import Path

from .params import Params


class PrerequisitesMissing(RuntimeError):
    """Something a stage of this run needs is not on this machine (the message lists each item and its fix)."""


def _data(params: Params) -> list[str]:
    """Stage 01: the stems root exists and holds artist folders (the smoke profile synthesises its own)."""
    root = params.curate.data_root
    if root is None:
        return []
    path = Path(root)
    if not path.is_dir():
        return [f"curate.data_root = {path} does not exist: put your stems in "
                f"<root>/<artist>/<track>/{{acapella,instrumental,full}}.wav and point curate.data_root at <root>"]
    if not any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
        return [f"curate.data_root = {path} holds no artist folders (<root>/<artist>/<track>/...)"]
    return []


def _captions(params: Params) -> list[str]:
    """Stage 02: Essentia's TensorFlow models and the TensorFlow build of Essentia, when configured."""
    if not params.caption.essentia_model_dir:
        return []
    from .caption import check_essentia_models  # lazy: caption imports Essentia/TensorFlow

    try:
        check_essentia_models(params.caption.essentia_model_dir)
    except Exception as e:  # MissingModelsError / CaptionError carry the fix
        return [str(e)]
    return []


def _model(params: Params) -> list[str]:
    """Stage 03: the pretrained MusicGen (and what its config loads), offline; GPUs for nccl."""
    # lazy: both import audiocraft, which a check of stages 01-02 does not need
    from .models import hub_offline, missing_message, missing_pretrained_files, resolve_model_name
    from .train.distributed import NoGPU, require_gpus_for

    out = []
    try:
        require_gpus_for(params.train.dist_backend)
    except NoGPU as e:
        out.append(str(e))
    name = resolve_model_name(params)
    if name != "nano-random" and not Path(name).is_dir() and hub_offline():
        missing = missing_pretrained_files(name)
        if missing:
            out.append(missing_message(name, missing))
    return out


def _metrics(params: Params) -> list[str]:
    """Stage 04: PaSST and VGGish weights for the paper's metric backends."""
    from .metrics.backends import (  # lazy: the metric backends import their models' libraries
        PASST_WEIGHTS,
        VGGISH_WEIGHTS,
        MissingWeightsError,
        resolve_weights,
    )

    ev, out = params.evaluate, []
    for used, spec, weights in ((ev.kl_backend == "passt", PASST_WEIGHTS, ev.passt_weights),
                                (ev.fad_backend == "vggish", VGGISH_WEIGHTS, ev.vggish_weights)):
        if not used or ev.allow_download:
            continue
        try:
            resolve_weights(spec, weights, allow_download=False)
        except MissingWeightsError as e:
            out.append(str(e))
    return out


CHECKS = {"01": _data, "02": _captions, "03": _model, "04": _metrics}  # notebook prefix -> its stage's check


def problems(params: Params, notebooks: list[str] | None = None) -> list[str]:
    """What the stages of these notebooks (names or prefixes; None: all) would miss, in stage order."""
    out: list[str] = []
    for prefix, stage_check in CHECKS.items():
        if notebooks is None or any(n.startswith(prefix) for n in notebooks):
            out += stage_check(params)
    return out


def check(params: Params, notebooks: list[str] | None = None) -> None:
    """Raise :class:`PrerequisitesMissing` listing every missing prerequisite of the run, with its fix."""
    found = problems(params, notebooks)
    if found:
        items = "\n\n".join(f"{i}. {p}" for i, p in enumerate(found, 1))
        raise PrerequisitesMissing(f"the {params.profile} run cannot start: {len(found)} prerequisite(s) missing "
                                   f"(nothing was run).\n\n{items}")


__all__ = ["PrerequisitesMissing", "problems", "check"]
