"""Generation throughput: batched vs one-at-a-time continuations, measured in one run.

Usage: python benchmarks/bench_generate.py [out.json]. Uses the nano model on curated smoke
segments (synthesised and curated into a temporary run). Reports clips/s and seconds of audio
generated per wall second for batch sizes 1 and 4, and their ratio; and the codec decoding a batch of
continuations whole against clip by clip (``models.codec_decode``, what generation does on a CPU).
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
from silicon_sing.models import codec_decode, load_model
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


def time_decode(model, n_clips: int, seconds: float) -> dict:
    """Seconds to decode ``n_clips`` random code sequences of ``seconds`` as one batch and clip by clip."""
    import torch

    codec = model.compression_model
    codes = torch.randint(0, codec.cardinality, (n_clips, codec.num_codebooks, int(seconds * codec.frame_rate)),
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        codec.decode(codes[:1])  # warm-up
        start = time.perf_counter()
        codec.decode(codes)
        whole = time.perf_counter() - start
        start = time.perf_counter()
        codec_decode(codec, codes)
        by_clip = time.perf_counter() - start
    return {"clips": n_clips, "seconds": seconds, "batch_s": whole, "clip_by_clip_s": by_clip,
            "batch_over_clip_by_clip": whole / by_clip}


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
        decode = time_decode(model, 18, 6.0)  # the smoke profile's batch of 6-s segments
    report = {"one_at_a_time": one, "batched": four, "speedup_batched_over_one": four["clips_per_s"] / one["clips_per_s"],
              "decode": decode}
    atomic_write_json(out, report)
    for r in (one, four):
        print(f"batch {r['batch_size']}: {r['clips_per_s']:.2f} clips/s, {r['generated_audio_s_per_s']:.2f} s audio/s")
    print(f"batched vs one-at-a-time: {report['speedup_batched_over_one']:.2f}x")
    print(f"decoding {decode['clips']} clips of {decode['seconds']:g} s: one batch {decode['batch_s']:.1f} s, clip by clip "
          f"{decode['clip_by_clip_s']:.1f} s ({decode['batch_over_clip_by_clip']:.2f}x)  -> {out}")
    return report


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "benchmarks" / "results" / "generate.json")
