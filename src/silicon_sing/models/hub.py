"""Pretrained MusicGen from the Hugging Face hub: which files are missing, how to fetch them, loading them.

Missing weights on an offline machine raise :class:`ModelWeightsMissing`, which says what to download and where.

Notebook: notebooks/03_finetune.ipynb (loaded again for generation in notebooks/04_evaluate.ipynb)
"""

from __future__ import annotations

import os
import typing as tp
from pathlib import Path

import torch
from audiocraft.models import MusicGen
from huggingface_hub import try_to_load_from_cache
from omegaconf import OmegaConf

from ..fsutil import load_tensors_only
from ..model_names import MELODY


class ModelWeightsMissing(RuntimeError):
    """Pretrained weights are not in the local caches and cannot be downloaded from here."""


HTDEMUCS_CHECKPOINT = "955717e8-8726e21a.th"  # what demucs.pretrained.get_model("htdemucs") reads from the torch hub


def hf_cached_path(repo_id: str, filename: str) -> Path | None:
    """``repo_id/filename`` in the local Hugging Face cache (``$HF_HOME/hub``), or None."""
    found = try_to_load_from_cache(repo_id, filename)
    return Path(found) if isinstance(found, str) else None


def _hf_cached(repo_id: str, filename: str) -> bool:
    """Whether ``repo_id/filename`` is in the local Hugging Face cache."""
    return hf_cached_path(repo_id, filename) is not None


def read_package(path: Path) -> dict[str, tp.Any]:
    """An audiocraft checkpoint package (``xp.cfg`` YAML, tensors) read without unpickling code, memory-mapped."""
    return load_tensors_only(path, mmap=True)


def _hub_checkpoint(filename: str) -> Path:
    """``<torch hub dir>/checkpoints/<filename>`` (``$TORCH_HOME/hub``), where demucs' weights are cached."""
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def missing_pretrained_files(name: str = MELODY) -> list[str]:
    """What ``MusicGen.get_pretrained(name)`` would have to download: exactly the files its loaders read.

    The LM package (``state_dict.bin``) and the compression package of ``name``; then what the LM's
    own config asks for: the T5 tokenizer and encoder of a ``t5`` conditioner, demucs ``htdemucs``
    for a ``chroma_stem`` conditioner, and the hub codec a compression package that only names one
    (``{'pretrained': ...}``) refers to. Empty when everything is cached.
    """
    missing: list[str] = []
    lm_file, comp_file = hf_cached_path(name, "state_dict.bin"), hf_cached_path(name, "compression_state_dict.bin")
    missing += [f"{name}/{f}" for f, p in (("state_dict.bin", lm_file), ("compression_state_dict.bin", comp_file))
                if p is None]
    if lm_file is not None:
        conds = OmegaConf.create(read_package(lm_file)["xp.cfg"]).get("conditioners") or {}
        kinds = {str(v.model): v for k, v in conds.items() if k != "args"}
    else:  # not cached yet: musicgen-melody's (and musicgen's) text conditioner; chroma for melody models
        kinds = {"t5": OmegaConf.create({"t5": {"name": "t5-base"}})}
        if "melody" in name:
            kinds["chroma_stem"] = OmegaConf.create({})
    if "t5" in kinds:
        t5 = str(kinds["t5"].t5.name)
        missing += [f"{t5}/{f}" for f in ("config.json", "spiece.model") if not _hf_cached(t5, f)]
        if not (_hf_cached(t5, "model.safetensors") or _hf_cached(t5, "pytorch_model.bin")):
            missing.append(f"{t5}/model.safetensors")
    if "chroma_stem" in kinds and not _hub_checkpoint(HTDEMUCS_CHECKPOINT).exists():
        missing.append(f"demucs htdemucs ({_hub_checkpoint(HTDEMUCS_CHECKPOINT)})")
    if comp_file is not None:
        codec = read_package(comp_file).get("pretrained")
        if codec and not _hf_cached(str(codec), "config.json"):
            missing.append(f"{codec}/config.json")
    return missing


def hub_offline() -> bool:
    """Whether the Hugging Face hub is switched off for this process (``HF_HUB_OFFLINE``)."""
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def download_commands(name: str = MELODY) -> list[str]:
    """One command per cache that fetches everything the paper profile loads (run where there is internet)."""
    return [
        f"huggingface-cli download {name} state_dict.bin compression_state_dict.bin",
        "huggingface-cli download t5-base config.json spiece.model model.safetensors",
        "python -c \"import demucs.pretrained; demucs.pretrained.get_model('htdemucs')\"",
    ]


def missing_message(name: str, missing: list[str]) -> str:
    """The actionable explanation of missing pretrained weights."""
    hf_home = os.environ.get("HF_HOME", "~/.cache/huggingface")
    torch_home = os.environ.get("TORCH_HOME", "~/.cache/torch")
    cmds = "\n".join(f"    {c}" for c in download_commands(MELODY if Path(name).is_dir() else name))
    return (
        f"MusicGen weights for {name!r} are not available offline; missing: {', '.join(missing)}.\n"
        f"On a machine with internet access, fill the Hugging Face cache (HF_HOME={hf_home}) and the torch hub "
        f"cache (TORCH_HOME={torch_home}, for demucs) with:\n{cmds}\n"
        f"then copy both caches to this machine, point HF_HOME/TORCH_HOME at them and set HF_HUB_OFFLINE=1. "
        f"Alternatively set train.model to a directory holding an exported state_dict.bin + "
        f"compression_state_dict.bin. The smoke profile (train.model: nano) needs no download."
    )


def load_pretrained(name: str = MELODY, device: str = "cpu") -> MusicGen:
    """``MusicGen.get_pretrained(name)`` with a clear :class:`ModelWeightsMissing` when weights are missing.

    Offline (``HF_HUB_OFFLINE=1``) a missing file fails at once; online, the hub client (which honours
    ``HTTPS_PROXY``) fetches it. The compression model's audiocraft config is attached, so that a
    fine-tuned model can be exported in audiocraft's layout.
    """
    missing = missing_pretrained_files(name)
    if missing and hub_offline():
        raise ModelWeightsMissing(missing_message(name, missing))
    try:
        model = MusicGen.get_pretrained(name, device=device)
    except (OSError, ValueError, ConnectionError) as e:  # hub errors subclass OSError/ValueError
        missing = missing_pretrained_files(name) or [f"(download failed: {e})"]
        raise ModelWeightsMissing(missing_message(name, missing)) from e
    comp = hf_cached_path(name, "compression_state_dict.bin")
    if comp is not None:
        attach_compression_source(model, comp)
    return model


def attach_compression_source(model: MusicGen, package: Path) -> None:
    """Remember how the compression model was stored (its config or hub name), so it can be exported again."""
    pkg = read_package(package)
    if "xp.cfg" in pkg:
        model.compression_model.cfg = OmegaConf.create(pkg["xp.cfg"])
    elif "pretrained" in pkg:
        model.compression_model.pretrained_name = pkg["pretrained"]
