"""Generation throughput: batched vs one-at-a-time continuations, measured in one run.

Usage: python benchmarks/bench_generate.py [out.json]. Uses the nano model on curated smoke
segments (synthesised and curated into a temporary run). Reports clips/s and seconds of audio
generated per wall second for batch sizes 1 and 4, and their ratio.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from silicon_sing.curate import run_curation
from silicon_sing.data import held_out_examples
from silicon_sing.fsutil import atomic_write_json
from silicon_sing.generate import GenerationSettings, batches, continue_batch
from silicon_sing.models import load_model
from silicon_sing.params import load_params

REPO = Path(__file__).resolve().parents[1]


def throughput(model, examples, settings, batch_size: int) -> dict:
    """Generate every example with ``batch_size`` and time it."""
    start = time.perf_counter()
    for i, b in enumerate(batches(examples, batch_size)):
        continue_batch(model, b, settings, seed=i)
    wall = time.perf_counter() - start
    audio = sum(e.duration_s - settings.prompt_seconds for e in examples)
    return {"batch_size": batch_size, "clips": len(examples), "wall_s": wall, "clips_per_s": len(examples) / wall,
            "generated_audio_s_per_s": audio / wall}


def main(out: Path) -> dict:
    """Curate a small smoke corpus, then time batch 1 against batch 4 on the same examples."""
    with tempfile.TemporaryDirectory() as tmp:
        params = load_params(REPO / "params" / "smoke.yaml", {
            "run_dir": tmp, "curate.synth_tracks_per_artist": 3, "curate.synth_track_seconds": 12.0,
            "curate.segment_seconds": 4.0, "evaluate.prompt_seconds": 1.0})
        run_curation(params, progress=False)
        examples = [e for e in held_out_examples(params) if e.category == "full"][:8]
        settings = GenerationSettings.from_params(params)
        model = load_model(params)
        continue_batch(model, examples[:1], settings, seed=0)  # warm-up: first-call allocations
        one = throughput(model, examples, settings, 1)
        four = throughput(model, examples, settings, 4)
    report = {"one_at_a_time": one, "batched": four, "speedup_batched_over_one": four["clips_per_s"] / one["clips_per_s"]}
    atomic_write_json(out, report)
    for r in (one, four):
        print(f"batch {r['batch_size']}: {r['clips_per_s']:.2f} clips/s, {r['generated_audio_s_per_s']:.2f} s audio/s")
    print(f"batched vs one-at-a-time: {report['speedup_batched_over_one']:.2f}x  -> {out}")
    return report


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "benchmarks" / "results" / "generate.json")
