"""Curation throughput (seconds of audio per wall second) and the cost of an unchanged rerun.

Usage: python benchmarks/bench_curate.py [out.json]. Everything is measured in one run on the
smoke corpus, so the reported ratios are comparable across machines; absolute times are not.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from silicon_sing.curate import raw_root, run_curation
from silicon_sing.fsutil import atomic_write_json
from silicon_sing.params import load_params

REPO = Path(__file__).resolve().parents[1]


def main(out: Path) -> dict:
    """Curate the smoke corpus with 1 worker and with all cores, then rerun unchanged."""
    with tempfile.TemporaryDirectory() as tmp:
        base = load_params(REPO / "params" / "smoke.yaml", {"run_dir": f"{tmp}/shared"})
        t0 = time.perf_counter()
        raw = raw_root(base)  # synthesise once, outside the timings
        synth_s = time.perf_counter() - t0
        results = {}
        for label, workers in (("1 worker", 1), ("all cores", 0)):
            p = load_params(REPO / "params" / "smoke.yaml",
                            {"run_dir": f"{tmp}/{workers}", "curate.data_root": str(raw), "workers": workers})
            first = run_curation(p, progress=False)
            rerun = run_curation(p, progress=False)
            assert rerun.processed_tracks == 0, "an unchanged rerun must not process tracks"
            results[label] = {
                "audio_seconds": first.audio_seconds_processed,
                "first_wall_s": first.wall_seconds,
                "throughput_audio_s_per_s": first.audio_seconds_processed / first.wall_seconds,
                "rerun_wall_s": rerun.wall_seconds,
                "rerun_over_first": rerun.wall_seconds / first.wall_seconds,
            }
    report = {
        "synthesis_wall_s": synth_s,
        "runs": results,
        "speedup_all_cores_over_1": results["all cores"]["throughput_audio_s_per_s"]
        / results["1 worker"]["throughput_audio_s_per_s"],
    }
    atomic_write_json(out, report)
    print(f"{'':12}{'audio s/s':>12}{'first (s)':>12}{'rerun (s)':>12}{'rerun/first':>13}")
    for k, r in results.items():
        print(f"{k:12}{r['throughput_audio_s_per_s']:12.1f}{r['first_wall_s']:12.2f}{r['rerun_wall_s']:12.3f}"
              f"{r['rerun_over_first']:13.3f}")
    print(f"all cores vs 1 worker: {report['speedup_all_cores_over_1']:.2f}x   -> {out}")
    return report


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "benchmarks" / "results" / "curate.json")
