"""Rehearsal training step: per-step time with and without activation checkpointing, as a ratio.

Usage: python benchmarks/bench_rehearsal_step.py [out.json] (default benchmarks/results/rehearsal_step.json).

The rehearsal caches (``facebook/musicgen-melody`` at full width, 4 layers, random init; see
``params/rehearsal.yaml``) are written to a temporary directory and the rehearsal corpus is curated
and captioned there (not timed). Then, in a child process whose environment selects those caches
as a user's shell would, the paper code path's :class:`silicon_sing.train.Trainer` takes optimizer
steps on one CPU rank with ``train.activation_checkpointing`` off and on, interleaved, several
times; the median step time after the first step of each trial counts and the faster trial of
each setting is kept (interference on a shared machine only ever slows a run down). Checkpointing
recomputes every layer's forward pass in the backward pass, so the ratio is the price of the
memory it saves (``python -m silicon_sing.memory`` estimates that saving per GPU).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = 4  # per trial; the first pays one-off costs and is dropped
REPEATS = 2
CATEGORY = "full"


def measure(run_dir: str, checkpointing: bool, steps: int) -> dict:
    """Step times of one trial (runs in the child process, rehearsal caches selected by the environment)."""
    import torch

    from silicon_sing import train as T
    from silicon_sing.params import load_params

    params = load_params(REPO / "params" / "rehearsal.yaml", {
        "run_dir": run_dir, "train.nproc_per_node": 1, "train.batch_size": 1,
        "train.activation_checkpointing": checkpointing, "train.updates_per_epoch": steps})
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        os.environ.pop(k, None)
    trainer = T.Trainer(params, CATEGORY, T.Dist(0, 1, 0, torch.device("cpu")))
    trainer.stop, trainer.global_step, trainer.skipped, trainer.bad_in_row = T.StopFlag(), 0, 0, 0
    trainer.prepare_tokens()
    trainer.build_optim()
    order = T.epoch_order(len(trainer.train_set), steps, params.seed, 0)
    times = [trainer.train_step(0, s, order)["seconds"] for s in range(steps)]
    tokens = int(trainer.codes[trainer.train_set[0].path].shape[-1])
    return {"step_seconds": times, "median_step_s": statistics.median(times[1:]), "audio_frames": tokens,
            "checkpointing": trainer.lm.transformer.checkpointing}


def main(out: Path) -> dict:
    """Build caches and corpus, time both settings in child processes, write and print the ratio."""
    from silicon_sing.caption import run_captioning
    from silicon_sing.curate import run_curation
    from silicon_sing.params import load_params
    from silicon_sing.rehearsal import build_rehearsal_caches

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        env = build_rehearsal_caches(Path(tmp) / "cache", progress=False)
        base = load_params(REPO / "params" / "rehearsal.yaml", {"run_dir": f"{tmp}/run"})
        run_curation(base, progress=False)
        run_captioning(base, progress=False)
        prep_s = time.perf_counter() - t0
        trials: dict[str, list[dict]] = {"off": [], "on": []}
        for _ in range(REPEATS):
            for name in trials:
                proc = subprocess.run([sys.executable, __file__, "--measure", base.run_dir, name], env={
                    **os.environ, **env, "PYTHONWARNINGS": "ignore"}, capture_output=True, text=True, check=True)
                trials[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = {k: min(v, key=lambda r: r["median_step_s"]) for k, v in trials.items()}
    report = {
        "what": "rehearsal (musicgen-melody width, 4 layers, random init), 1 CPU rank, batch 1, "
                f"{base.curate.segment_seconds:g} s segments, fp32",
        "cpu_count": os.cpu_count(), "prep_wall_s": prep_s, "trials": trials,
        "median_step_s": {k: v["median_step_s"] for k, v in best.items()},
        "ratio_checkpointing_over_plain": best["on"]["median_step_s"] / best["off"]["median_step_s"],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"step time, activation checkpointing off: {best['off']['median_step_s']:.2f} s, "
          f"on: {best['on']['median_step_s']:.2f} s -> ratio {report['ratio_checkpointing_over_plain']:.2f}x")
    return report


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], sys.argv[3] == "on", STEPS)))
    else:
        main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "benchmarks" / "results" / "rehearsal_step.json")
