"""Cached vs recomputed embedding/distribution time per metrics backend, and the FAD bootstrap's cost.

Usage: python benchmarks/bench_metrics.py [out.json] [--quick]. Every backend embeds the same
synthetic clips three ways in one run: recomputed without a cache, cold cache (compute + hash +
atomic write) and warm cache (hash + load). The ratios recomputed / warm are comparable across
machines; absolute times are not. PaSST and VGGish are random-init (same architecture and cost as
the real models; no weights are downloaded).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from silicon_sing.audio import save_audio
from silicon_sing.fsutil import atomic_write_json
from silicon_sing.machine import usable_cpus
from silicon_sing.metrics.backends import MelStatsEmbedding, PasstBackend, SpectralClassesBackend, VggishBackend
from silicon_sing.metrics.cache import cached_embed, cached_window_probs
from silicon_sing.metrics.stats import bootstrap_fads

REPO = Path(__file__).resolve().parents[1]
SR = 32000


def make_clips(root: Path, n: int, seconds: float) -> list[Path]:
    """``n`` mono 32 kHz clips: a few harmonics over noise, different per clip."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    paths = []
    for i in range(n):
        f0 = 110.0 * 2 ** (i / 5)
        x = sum(0.2 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)) + 0.02 * rng.standard_normal(t.size)
        paths.append(save_audio(root / f"clip{i}.wav", x.astype(np.float32), SR))
    return paths


def time_backend(fn: Callable, backend, clips: list[Path], cache: Path) -> dict[str, float]:
    """Seconds to process all clips: recomputed (no cache), cold cache, warm cache."""
    fn(backend, clips[0], None)  # warm-up (lazy imports, first-forward allocations) outside the timings
    t0 = time.perf_counter()
    for c in clips:
        fn(backend, c, None)
    recompute = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c in clips:
        fn(backend, c, cache)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c in clips:
        fn(backend, c, cache)
    warm = time.perf_counter() - t0
    return {"recompute_s": recompute, "cold_cache_s": cold, "warm_cache_s": warm,
            "recompute_over_cached": recompute / warm, "cold_over_recompute": cold / recompute}


def time_bootstrap(n_clips: int, frames: int, dim: int, n_boot: int) -> dict[str, float]:
    """Wall time of one cell's paired FAD bootstrap (2 systems sharing draws) on every usable core, and on one."""
    rng = np.random.default_rng(1)
    orig = [rng.standard_normal((frames, dim)) for _ in range(n_clips)]
    gens = [[rng.standard_normal((frames, dim)) + 0.1 * k for _ in range(n_clips)] for k in (1, 2)]
    t0 = time.perf_counter()
    bootstrap_fads(orig, gens, n_boot, seed=0, threads=1)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    bootstrap_fads(orig, gens, n_boot, seed=0)
    s = time.perf_counter() - t0
    return {"clips": n_clips, "frames_per_clip": frames, "dim": dim, "n_boot": n_boot, "systems": 2,
            "threads": usable_cpus(), "wall_s": s, "one_thread_wall_s": one, "one_thread_over_all": one / s,
            "ms_per_replicate_per_system": 1000 * s / n_boot / 2}


def main(out: Path, quick: bool = False) -> dict:
    """Benchmark every backend on the same clips; write and print the report."""
    n, seconds = (4, 3.0) if quick else (8, 6.0)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp) / "audio", n, seconds)
        cache = Path(tmp) / "metrics" / "cache"
        backends = [
            ("spectral-classes", cached_window_probs, SpectralClassesBackend()),
            ("mel-stats", cached_embed, MelStatsEmbedding()),
            ("vggish (random-init)", cached_embed, VggishBackend(pretrained=False, device="cpu")),
            ("passt (random-init)", cached_window_probs, PasstBackend(pretrained=False, device="cpu")),
        ]
        for name, fn, backend in backends:
            results[name] = time_backend(fn, backend, clips, cache)
    report = {
        "clips": n, "clip_seconds": seconds,
        "backends": results,
        "fad_bootstrap": time_bootstrap(4, 188, 128, 200 if quick else 1000),
    }
    atomic_write_json(out, report)
    print(f"{n} clips × {seconds:.0f} s")
    print(f"{'backend':24}{'recompute s':>13}{'cold s':>10}{'warm s':>10}{'recompute/warm':>16}")
    for k, r in results.items():
        print(f"{k:24}{r['recompute_s']:13.3f}{r['cold_cache_s']:10.3f}{r['warm_cache_s']:10.4f}"
              f"{r['recompute_over_cached']:16.1f}")
    b = report["fad_bootstrap"]
    print(f"FAD bootstrap: {b['n_boot']} draws × 2 systems, dim {b['dim']}: {b['wall_s']:.2f} s on {b['threads']} "
          f"threads ({b['ms_per_replicate_per_system']:.2f} ms per replicate per system), one thread "
          f"{b['one_thread_over_all']:.2f}x as long   -> {out}")
    return report


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", type=Path, default=REPO / "benchmarks" / "results" / "metrics.json")
    ap.add_argument("--quick", action="store_true", help="fewer, shorter clips and 200 bootstrap draws")
    args = ap.parse_args()
    main(args.out, args.quick)
