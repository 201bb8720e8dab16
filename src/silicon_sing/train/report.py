"""What notebook 03 shows about fine-tuning: loss curves (data; the figure is
:func:`silicon_sing.plots.loss_curves_figure`), the exported architecture, a results table, and the
chapter's glued numbers.

pandas is imported inside the functions that use it: this package is imported by every torchrun
worker, which does not need it.

Notebook: notebooks/03_finetune.ipynb
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import OmegaConf

from ..data import load_run_uuid
from ..fsutil import load_tensors_only, read_jsonl
from ..params import Params
from .stage import TrainResult

if TYPE_CHECKING:
    import pandas as pd


def read_log(params: Params, category: str) -> list[dict[str, Any]]:
    """Rows of one category's training log (empty if it never ran)."""
    path = params.run.train_log(category)
    return read_jsonl(path) if path.exists() else []


def loss_curves(params: Params, category: str) -> dict[str, list[tuple[int, float]]]:
    """``{'train': [(step, loss)], 'valid': [(step, loss)]}`` from the log (skipped steps left out).

    ``valid`` starts at step 0, the starting model's loss, when the log has it.
    """
    rows = read_log(params, category)
    return {
        "train": [(r["step"], r["loss"]) for r in rows if r.get("kind") == "train" and not r.get("skipped")],
        "valid": [(r["step"], r["loss"]) for r in rows if r.get("kind") == "valid"],
    }


def describe_export(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Architecture of an exported model read from its files (memory-mapped: no weights are loaded)."""
    directory = Path(directory)
    # an export is a YAML string and tensors: nothing else is unpickled (a file holding more is refused)
    lm_pkg = load_tensors_only(directory / "state_dict.bin", mmap=True)
    cfg = OmegaConf.create(lm_pkg["xp.cfg"])
    comp = load_tensors_only(directory / "compression_state_dict.bin", mmap=True)
    lm = cfg.transformer_lm
    out = {
        "lm_parameters": int(sum(t.numel() for t in lm_pkg["best_state"].values())),
        "dim": int(lm.dim), "num_layers": int(lm.num_layers), "num_heads": int(lm.num_heads),
        "n_q": int(lm.n_q), "card": int(lm.card), "pattern": str(cfg.codebooks_pattern.modeling),
        "conditioners": {str(k): str(v.model) for k, v in cfg.conditioners.items() if k != "args"},
        "fuser": {k: list(cfg.fuser[k]) for k in ("cross", "prepend", "sum") if cfg.fuser[k]},
        "window_seconds": float(cfg.dataset.segment_duration),
    }
    if "pretrained" in comp:
        out["codec"] = str(comp["pretrained"])
    else:
        ccfg = OmegaConf.create(comp["xp.cfg"])
        hop = int(np.prod(list(ccfg.seanet.ratios)))
        out["codec_parameters"] = int(sum(t.numel() for t in comp["best_state"].values()))
        out["codec"] = (f"an EnCodec-style codec (SEANet encoder and decoder, residual vector quantisation) "
                        f"of {out['codec_parameters']:,} parameters")
        out["frame_rate"] = float(ccfg.encodec.sample_rate) / hop
        out["sample_rate"] = int(ccfg.encodec.sample_rate)
    return out


def results_table(results: dict[str, TrainResult]) -> pd.DataFrame:
    """One row per category: losses, steps, throughput (a pandas DataFrame)."""
    import pandas as pd  # lazy: notebook-only dependency, kept out of the torchrun workers

    rows = [{"category": c, "steps": r.steps, "skipped": r.skipped_steps, "processes": r.world_size,
             "first-epoch train loss": r.first_train_loss, "last-epoch train loss": r.final_train_loss,
             "valid loss before training": r.start_valid_loss,
             "first valid loss": r.valid_losses[0] if r.valid_losses else float("nan"),
             "final valid loss": r.final_valid_loss, "samples/s": r.samples_per_s, "tokens/s": r.tokens_per_s,
             "step time (s)": r.seconds} for c, r in results.items()]
    return pd.DataFrame(rows).set_index("category")


def summary(params: Params, results: dict[str, TrainResult]) -> dict[str, str]:
    """Formatted key numbers of the chapter, for ``myst_nb.glue``."""
    t = params.train
    first = next(iter(results.values()))
    arch = describe_export(first.export_dir)
    out = {
        "profile": params.profile, "model": t.model, "nproc": str(t.nproc_per_node), "backend": t.dist_backend,
        "epochs": str(t.epochs), "updates_per_epoch": str(t.updates_per_epoch), "batch_size": str(t.batch_size),
        "per_rank_batch": str(t.batch_size // max(1, t.nproc_per_node)), "lr": f"{t.lr:g}",
        "optimizer": {"dadam": "D-Adaptation Adam", "adamw": "AdamW"}.get(t.optimizer, t.optimizer),
        "warmup_steps": str(t.warmup_steps), "cfg_dropout": f"{t.cfg_dropout:g}",
        "word_dropout": f"{t.word_dropout:g}", "grad_clip": f"{t.grad_clip:g}", "precision": t.precision,
        "total_steps": str(t.epochs * t.updates_per_epoch), "uuid": load_run_uuid(params.run_dir),
        "lm_parameters": f"{arch['lm_parameters']:,}", "lm_dim": str(arch["dim"]), "lm_layers": str(arch["num_layers"]),
        "lm_heads": str(arch["num_heads"]), "n_q": str(arch["n_q"]), "card": str(arch["card"]),
        "window_seconds": f"{arch['window_seconds']:g}", "codec": arch["codec"],
        "frame_rate": f"{arch.get('frame_rate', 50):g}",
        "codec_parameters": f"{arch.get('codec_parameters', 0):,}",
        "train_seconds": f"{sum(r.seconds for r in results.values()):.0f}",
        "segment_seconds": f"{params.curate.segment_seconds:g}",
    }
    for c, r in results.items():
        out[f"{c}_first_loss"] = f"{r.first_train_loss:.2f}"
        out[f"{c}_final_loss"] = f"{r.final_train_loss:.2f}"
        out[f"{c}_valid_start"] = f"{r.start_valid_loss:.3f}" if np.isfinite(r.start_valid_loss) else "n/a"
        out[f"{c}_valid_first"] = f"{r.valid_losses[0]:.3f}" if r.valid_losses else "n/a"
        # signed, in nats: how far fine-tuning moved the held-out loss (negative = lower = better)
        moved = r.final_valid_loss - r.start_valid_loss
        out[f"{c}_valid_moved"] = f"{moved:+.3f}" if np.isfinite(moved) else "n/a"
        out[f"{c}_valid_final"] = f"{r.final_valid_loss:.3f}" if r.valid_losses else "n/a"
        out[f"{c}_samples_per_s"] = f"{r.samples_per_s:.1f}"
        out[f"{c}_skipped"] = str(r.skipped_steps)
    return out


__all__ = ["read_log", "loss_curves", "describe_export", "results_table", "summary"]
