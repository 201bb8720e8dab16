"""Exports in audiocraft's release layout (``MusicGen.get_pretrained(<dir>)`` loads them) and weight fingerprints.

Notebook: notebooks/03_finetune.ipynb (loaded again for generation in notebooks/04_evaluate.ipynb)
"""

from __future__ import annotations

import hashlib
import os
import typing as tp
from pathlib import Path

import audiocraft
import torch
from audiocraft.models import MusicGen
from audiocraft.models.encodec import CompressionModel, HFEncodecCompressionModel
from omegaconf import OmegaConf
from torch import nn

from ..fsutil import atomic_path

# --------------------------------------------------------------------------- export

def _compression_package(cm: CompressionModel) -> dict[str, tp.Any]:
    """audiocraft's ``compression_state_dict.bin`` content for ``cm``."""
    base = {"version": audiocraft.__version__, "exported": True}
    pretrained = getattr(cm, "pretrained_name", None)
    if pretrained is None and isinstance(cm, HFEncodecCompressionModel):
        pretrained = cm.model.config._name_or_path
    if pretrained:
        return {**base, "pretrained": pretrained}
    cfg = getattr(cm, "cfg", None)
    if cfg is None:
        raise ValueError("cannot export a compression model without its audiocraft config (cfg attribute): "
                         "load models with silicon_sing.models.load_model, which attaches it")
    return {**base, "best_state": {k: v.detach().cpu() for k, v in cm.state_dict().items()},
            "xp.cfg": OmegaConf.to_yaml(cfg)}


def export_model(model: MusicGen, out_dir: str | os.PathLike[str],
                 lm_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``state_dict.bin`` + ``compression_state_dict.bin`` that ``MusicGen.get_pretrained`` loads.

    ``lm_state`` replaces ``model.lm.state_dict()`` (FSDP: the full state gathered from the shards).
    """
    out = Path(out_dir)
    cfg = getattr(model.lm, "cfg", None)
    if cfg is None:
        raise ValueError("cannot export an LM without its audiocraft config (lm.cfg)")
    state = lm_state if lm_state is not None else model.lm.state_dict()
    lm_pkg = {"best_state": {k: v.detach().cpu() for k, v in state.items()},
              "xp.cfg": OmegaConf.to_yaml(cfg), "version": audiocraft.__version__, "exported": True}
    for filename, pkg in (("compression_state_dict.bin", _compression_package(model.compression_model)),
                          ("state_dict.bin", lm_pkg)):
        with atomic_path(out / filename) as tmp:
            torch.save(pkg, tmp)
    return out


def state_fingerprint(module: nn.Module) -> str:
    """SHA-1 over a module's state (names, dtypes, shapes, values): identifies weights exactly."""
    h = hashlib.sha1()
    for k, v in sorted(module.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
