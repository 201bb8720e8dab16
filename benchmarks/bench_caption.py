"""Captioning speed: seconds of audio described per wall second, 1 process vs all cores, cached rerun.

Usage: python benchmarks/bench_caption.py [out.json]. The smoke corpus is synthesised and curated
once into a temporary directory (not timed); then the same curated data is captioned with one
worker and with all cores (each from an empty descriptor cache), and rerun unchanged. Every number
comes from this one run, so the ratios are comparable across machines; absolute times are not.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from silicon_sing.caption import run_captioning
from silicon_sing.curate import run_curation
from silicon_sing.fsutil import atomic_write_json
from silicon_sing.params import RunPaths, load_params

REPO = Path(__file__).resolve().parents[1]


def main(out: Path) -> dict:
    """Caption the curated smoke corpus with 1 worker and all cores; rerun each unchanged."""
    with tempfile.TemporaryDirectory() as tmp:
        base = load_params(REPO / "params" / "smoke.yaml", {"run_dir": f"{tmp}/base"})
        t0 = time.perf_counter()
        run_curation(base, progress=False)  # synthesis + curation, outside the timings
        prep_s = time.perf_counter() - t0
        results = {}
        for label, workers in (("1 process", 1), ("all cores", 0)):
            run_dir = Path(tmp) / f"w{workers}"
            shutil.copytree(base.run.curated, RunPaths(run_dir).curated, symlinks=True)
            p = load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(run_dir), "workers": workers})
            first = run_captioning(p, progress=False)
            rerun = run_captioning(p, progress=False)
            assert rerun.stems_analysed == 0, "an unchanged rerun must not analyse any stem"
            results[label] = {
                "workers": first.workers,
                "audio_seconds": first.audio_seconds_analysed,
                "first_wall_s": first.wall_seconds,
                "throughput_audio_s_per_s": first.audio_seconds_analysed / first.wall_seconds,
                "rerun_wall_s": rerun.wall_seconds,
                "rerun_throughput_audio_s_per_s": rerun.audio_seconds_total / rerun.wall_seconds,
                "rerun_over_first": rerun.wall_seconds / first.wall_seconds,
            }
    one, all_ = results["1 process"], results["all cores"]
    report = {
        "corpus_prep_wall_s": prep_s,
        "runs": results,
        "speedup_all_cores_over_1": all_["throughput_audio_s_per_s"] / one["throughput_audio_s_per_s"],
        "speedup_cached_rerun_over_first": one["first_wall_s"] / one["rerun_wall_s"],
    }
    atomic_write_json(out, report)
    print(f"{'':11}{'workers':>8}{'audio s':>9}{'audio s/s':>11}{'first (s)':>11}{'rerun (s)':>11}{'rerun/first':>13}")
    for k, r in results.items():
        print(f"{k:11}{r['workers']:8d}{r['audio_seconds']:9.0f}{r['throughput_audio_s_per_s']:11.1f}"
              f"{r['first_wall_s']:11.2f}{r['rerun_wall_s']:11.3f}{r['rerun_over_first']:13.4f}")
    print(f"all cores vs 1 process: {report['speedup_all_cores_over_1']:.2f}x; cached rerun vs first run: "
          f"{report['speedup_cached_rerun_over_first']:.0f}x faster   -> {out}")
    return report


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "benchmarks" / "results" / "caption.json")
