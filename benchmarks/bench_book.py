"""Book build cost: full build (after execution), built size, and incremental rebuild after one prose edit.

Usage: python benchmarks/bench_book.py [run_dir] [out.json]. ``run_dir`` must hold executed
notebooks (``make run`` writes them to runs/smoke/notebooks); the build happens in a temporary
copy of the book sources so the repository's _build is untouched.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from silicon_sing.fsutil import atomic_write_json
from silicon_sing.params import load_params
from silicon_sing.pipeline import build_book, publish_notebooks, stage_book_sources

REPO = Path(__file__).resolve().parents[1]


def tree_size(path: Path) -> int:
    """Bytes of all files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(run_dir: Path, out: Path) -> dict:
    """Build once from scratch, touch one prose page, build again; report times and their ratio."""
    params = load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(run_dir)})
    with tempfile.TemporaryDirectory() as tmp:
        src = stage_book_sources(REPO, Path(tmp) / "src")
        publish_notebooks(params, REPO, book_root=src)
        out_root = Path(tmp) / "out"
        full = build_book(src, strict=True, path_output=out_root)
        html = out_root / "_build" / "html"
        size = tree_size(html)
        page = src / "book" / "limitations.md"
        page.write_text(page.read_text() + "\n<!-- touched by bench_book -->\n")
        incremental = build_book(src, strict=True, path_output=out_root)
        biggest = max((p.stat().st_size, str(p.relative_to(html))) for p in html.rglob("*.html"))
    report = {"full_build_s": full, "incremental_build_s": incremental,
              "incremental_over_full": incremental / full, "built_mb": size / 2**20,
              "largest_page": {"path": biggest[1], "mb": biggest[0] / 2**20}}
    atomic_write_json(out, report)
    print(f"full build {full:.1f} s, incremental {incremental:.1f} s (ratio {report['incremental_over_full']:.2f}); "
          f"built {report['built_mb']:.1f} MB, largest page {biggest[1]} {biggest[0] / 2**20:.2f} MB -> {out}")
    return report


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]) if args else REPO / "runs" / "smoke",
         Path(args[1]) if len(args) > 1 else REPO / "benchmarks" / "results" / "book.json")
