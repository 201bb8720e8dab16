"""Generation throughput: batched vs one-at-a-time continuations, measured in one run.

Usage: python benchmarks/bench_generate.py [out.json]. Uses the nano model on curated smoke
segments (synthesised and curated into a temporary run). Reports clips/s and seconds of audio
generated per wall second for batch sizes 1 and 4, and their ratio; the codec decoding a batch of
continuations whole against clip by clip (``models.codec_decode``, what generation does on a CPU); and
the shipped nano LM's token loop for the smoke profile's batch (18 clips, 2 s prompts, 6 s) with
audiocraft's streaming attention against the past keys and values kept in place
(``models.cached_kv_attention``, what generation uses), with whether they sample the same tokens.
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
from silicon_sing.models import cached_kv_attention, codec_decode, load_model
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


def time_token_loop(batch: int = 18, seconds: float = 6.0, prompt_seconds: float = 2.0) -> dict:
    """Seconds of the shipped nano LM's token loop, audiocraft's streaming attention against kept keys and values."""
    import contextlib

    import torch

    model = load_model("nano", seed=0)
    model.set_generation_params(duration=seconds, use_sampling=True, top_k=250, temperature=0.5, cfg_coef=3.0)
    prompt = 0.1 * torch.randn(batch, 1, int(prompt_seconds * model.sample_rate), generator=torch.Generator().manual_seed(0))
    out: dict = {"clips": batch, "seconds": seconds, "prompt_seconds": prompt_seconds}
    tokens = {}
    with torch.no_grad():
        attrs, prompt_tokens = model._prepare_tokens_and_attributes(["drums, bass and keys"] * batch, prompt)
        for kind in ("audiocraft", "kept", "audiocraft", "kept"):  # alternated: the machine's drift hits both
            torch.manual_seed(0)
            with cached_kv_attention(model.lm) if kind == "kept" else contextlib.nullcontext():
                start = time.perf_counter()
                tokens[kind] = model._generate_tokens(attrs, prompt_tokens, False)
                out[f"{kind}_s"] = min(out.get(f"{kind}_s", float("inf")), time.perf_counter() - start)
    out["audiocraft_over_kept"] = out["audiocraft_s"] / out["kept_s"]
    out["same_tokens"] = bool(torch.equal(tokens["audiocraft"], tokens["kept"]))
    return out


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
    loop = time_token_loop()
    report = {"one_at_a_time": one, "batched": four, "speedup_batched_over_one": four["clips_per_s"] / one["clips_per_s"],
              "decode": decode, "token_loop": loop}
    atomic_write_json(out, report)
    for r in (one, four):
        print(f"batch {r['batch_size']}: {r['clips_per_s']:.2f} clips/s, {r['generated_audio_s_per_s']:.2f} s audio/s")
    print(f"batched vs one-at-a-time: {report['speedup_batched_over_one']:.2f}x")
    print(f"decoding {decode['clips']} clips of {decode['seconds']:g} s: one batch {decode['batch_s']:.1f} s, clip by clip "
          f"{decode['clip_by_clip_s']:.1f} s ({decode['batch_over_clip_by_clip']:.2f}x)")
    print(f"nano token loop, {loop['clips']} clips of {loop['seconds']:g} s: audiocraft {loop['audiocraft_s']:.1f} s, "
          f"kept keys and values {loop['kept_s']:.1f} s ({loop['audiocraft_over_kept']:.2f}x, same tokens: "
          f"{loop['same_tokens']})  -> {out}")
    return report


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "benchmarks" / "results" / "generate.json")
