"""Shipping the nano model: fp16 checkpoints in audiocraft's export layout, loading them back, their provenance.

Notebook: notebooks/03_finetune.ipynb (the pre-trained nano baseline that fine-tuning starts from)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import audiocraft
import torch
from audiocraft.models import MusicGen
from audiocraft.models.encodec import CompressionModel
from audiocraft.models.lm import LMModel
from omegaconf import OmegaConf
from torch import nn

from .. import models as M
from ..fsutil import atomic_write_bytes, file_sha1, load_tensors_only, read_json
from .config import ASSETS_DIR, CHECKPOINT_FILES, PROVENANCE

# --------------------------------------------------------------------------- shipping


def to_half_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with floating tensors stored as fp16 (loaders cast back to the model's fp32)."""
    return {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu())
            for k, v in module.state_dict().items()}


def write_checkpoints(codec: CompressionModel, lm: LMModel, out_dir: Path, half: bool = True) -> dict[str, str]:
    """Write audiocraft's ``state_dict.bin`` + ``compression_state_dict.bin`` atomically; return their sha1."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = {"version": audiocraft.__version__, "exported": True}
    state = to_half_state if half else (lambda m: {k: v.detach().cpu() for k, v in m.state_dict().items()})
    pkgs = {"compression_state_dict.bin": {**base, "best_state": state(codec), "xp.cfg": OmegaConf.to_yaml(codec.cfg)},
            "state_dict.bin": {**base, "best_state": state(lm), "xp.cfg": OmegaConf.to_yaml(lm.cfg)}}
    for name, pkg in pkgs.items():
        buf = io.BytesIO()  # not the temporary path: torch.save names its zip records after the file
        torch.save(pkg, buf)
        atomic_write_bytes(out_dir / name, buf.getvalue()).chmod(0o644)  # package data (mkstemp makes 0600)
    return {name: file_sha1(out_dir / name) for name in CHECKPOINT_FILES}


def load_shipped(directory: str | Path = ASSETS_DIR, device: str = "cpu") -> MusicGen:
    """The shipped (or a freshly written) nano MusicGen, loaded offline (``models.load_model`` on the directory)."""
    directory = Path(directory)
    missing = [f for f in CHECKPOINT_FILES if not (directory / f).exists()]
    if missing:
        raise FileNotFoundError(f"{directory} lacks {', '.join(missing)}: run `python scripts/pretrain_nano.py`")
    return M.load_model(str(directory), device=device)


def random_init_like(directory: str | Path = ASSETS_DIR, seed: int = 0) -> MusicGen:
    """A random-init MusicGen with exactly the shipped architecture (the comparison in tests and metrics)."""
    cfg = OmegaConf.create(load_tensors_only(Path(directory) / "state_dict.bin", mmap=True)["xp.cfg"])
    return M.build_from_config(cfg, seed=seed, name="nano-random")


def read_provenance(directory: str | Path = ASSETS_DIR) -> dict[str, Any]:
    """The shipped checkpoints' ``provenance.json``."""
    return dict(read_json(Path(directory) / PROVENANCE))


def verify_checkpoints(directory: str | Path = ASSETS_DIR) -> dict[str, bool]:
    """Whether each checkpoint file's sha1 matches its provenance record."""
    recorded = read_provenance(directory)["files"]
    return {name: file_sha1(Path(directory) / name) == recorded[name]["sha1"] for name in CHECKPOINT_FILES}
