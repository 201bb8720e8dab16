"""Which model a run uses and loading it: ``nano``, ``nano-random``, an export directory or a hub name.

Notebook: notebooks/03_finetune.ipynb (loaded again for generation in notebooks/04_evaluate.ipynb)
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from audiocraft.models import MusicGen
from omegaconf import DictConfig, OmegaConf

from ..model_names import MELODY, NANO, NANO_DIR, NANO_RANDOM, resolve_model_name
from ..params import Params
from . import hub
from .configs import melody_config, nano_config, nano_musicgen


def default_device() -> str:
    """``cuda`` when a GPU is visible, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(params_or_name: Params | str = NANO, device: str | None = None, seed: int | None = None) -> MusicGen:
    """A MusicGen from ``Params`` (its ``train.model``), ``"nano"``, ``"nano-random"``, an export dir or a hub name."""
    if hasattr(params_or_name, "train"):
        # duck-typed: whatever carries ``train`` is taken for Params (mypy cannot narrow on hasattr here)
        params = cast(Params, params_or_name)
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
            parts = [m for m in hub.missing_pretrained_files(MELODY) if not m.startswith(MELODY)]
            raise hub.ModelWeightsMissing(hub.missing_message(str(path), parts or [f"(loading failed: {e})"])) from e
        hub.attach_compression_source(model, path / "compression_state_dict.bin")
        return model
    return hub.load_pretrained(name, device=device)


def model_config(name: str) -> DictConfig:
    """The audiocraft config of a model (LM + compression keys) read from its files, without loading weights.

    ``name`` as :func:`load_model` takes it. A hub model that is not cached yet: its known architecture
    (:func:`melody_config` for ``facebook/musicgen-melody``).
    """
    if name == NANO_RANDOM:
        return nano_config()
    path = NANO_DIR if name == NANO else Path(name).expanduser()
    lm_file: Path | None
    comp_file: Path | None
    if path.is_dir():
        lm_file, comp_file = path / "state_dict.bin", path / "compression_state_dict.bin"
    else:
        lm_file = hub.hf_cached_path(name, "state_dict.bin")
        comp_file = hub.hf_cached_path(name, "compression_state_dict.bin")
    if lm_file is None or not lm_file.exists():
        if name == MELODY:
            return melody_config()
        raise hub.ModelWeightsMissing(hub.missing_message(name, hub.missing_pretrained_files(name)))
    cfg = OmegaConf.create(hub.read_package(lm_file)["xp.cfg"])
    if comp_file is not None and comp_file.exists():
        comp = hub.read_package(comp_file)
        if "xp.cfg" in comp:
            ccfg = OmegaConf.create(comp["xp.cfg"])
            cfg = OmegaConf.merge(cfg, {k: ccfg[k] for k in ("compression_model", "encodec", "seanet", "rvq")
                                        if k in ccfg})
    return cfg
