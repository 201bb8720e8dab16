"""Run the book's notebooks with papermill for one profile, then build the Jupyter Book.

``python -m silicon_sing.pipeline run  --params params/smoke.yaml``   executes every notebook
``python -m silicon_sing.pipeline book --params params/smoke.yaml``   executes, then builds _build/html
``python -m silicon_sing.pipeline run --only 01 --overrides '{"workers": 1}'``   one notebook, with overrides

Executed notebooks go to ``<run_dir>/notebooks/`` (the run's record, kept as executed) and are
copied to ``book/executed/`` for the build, which reuses them (``execute_notebooks: 'off'``) instead
of running them again. The book's copies are made for readers (:func:`for_readers`): papermill's
injected-parameters cell is removed from the page and its machine paths made relative, and stderr
(library warnings, progress bars) is left out. A failing notebook stops the pipeline; its executed copy, error included, is
kept and named in the message.

Notebook: notebooks/06_reproduce.ipynb (how the book is built)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .fsutil import atomic_write_json, run_lock
from .params import Params, find_repo_root, load_params
from .preflight import PrerequisitesMissing
from .preflight import check as check_prerequisites
from .provenance import timings_path

log = logging.getLogger(__name__)


@dataclass
class StageTiming:
    """Wall time of one executed notebook."""

    notebook: str
    seconds: float
    ok: bool


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names it and where its executed copy with the error is."""


def source_notebooks(repo: Path, only: list[str] | None = None) -> list[Path]:
    """The pipeline's notebooks in order (``notebooks/NN_*.ipynb``), optionally filtered by prefix."""
    nbs = sorted(p for p in (repo / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        nbs = [p for p in nbs if any(p.name.startswith(o) for o in only)]
    return nbs


def execute_notebook(src: Path, out: Path, params: Params, repo: Path) -> float:
    """Execute one notebook with papermill (cwd = repo root); return its wall time in seconds."""
    import papermill as pm  # lazy: papermill (and its kernel machinery) only when notebooks run

    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        pm.execute_notebook(
            str(src), str(out), parameters={"params_file": params.source, "overrides": params.overrides},
            cwd=str(repo), kernel_name="python3", progress_bar=True, log_output=False,
        )
    except pm.PapermillExecutionError as e:
        raise NotebookFailed(
            f"{src.name} failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
            f"The executed notebook with the full traceback is {out}"
        ) from None
    return time.perf_counter() - start


# Kernels share the cores with their own worker processes (torchrun, the caption pool) and with whatever
# else runs on the machine. OpenMP threads that spin while waiting make an oversubscribed CPU many times
# slower (measured on 2 busy cores: a nano batch of 4 continuations took 57–80 s spinning, 5–6 s passive).
KERNEL_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def notebooks_lock_path(params: Params) -> Path:
    """The lock file that makes one pipeline at a time execute notebooks into this run dir."""
    return params.run.notebooks_lock


def _repo_of(params: Params) -> Path:
    """The repository holding the parameter file ``params`` was loaded from."""
    if params.source is None:
        raise ValueError("params were not loaded from a file (params.source is None); use load_params")
    return find_repo_root(Path(params.source).parent)


def run_notebooks(params: Params, only: list[str] | None = None) -> list[StageTiming]:
    """Execute the notebooks in order for ``params``' profile; record timings in the run dir.

    Holds :func:`notebooks_lock_path` throughout: a second pipeline on the same run dir fails at once.
    """
    repo = _repo_of(params)
    check_prerequisites(params, [nb.name for nb in source_notebooks(repo, only)])  # all stages' needs, before any runs
    with run_lock(notebooks_lock_path(params), f"the {params.profile} pipeline on {params.run.root}"):
        return _run_notebooks(params, only)


def _run_notebooks(params: Params, only: list[str] | None) -> list[StageTiming]:
    """:func:`run_notebooks` once the run dir's lock is held."""
    for key, value in KERNEL_ENV.items():  # kernels and their children inherit it; a user's own setting wins
        os.environ.setdefault(key, value)
    repo = _repo_of(params)
    timings: list[StageTiming] = []
    out_dir = params.run.notebooks
    timing_file = timings_path(params)
    previous = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    for src in source_notebooks(repo, only):
        log.info("▶ %s (%s)", src.name, params.profile)
        try:
            secs = execute_notebook(src, out_dir / src.name, params, repo)
        except NotebookFailed:
            timings.append(StageTiming(src.name, float("nan"), False))
            raise
        finally:
            merged = {**previous, **{t.notebook: {"seconds": t.seconds, "ok": t.ok} for t in timings}}
            atomic_write_json(timing_file, merged)
        timings.append(StageTiming(src.name, secs, True))
        log.info("  done in %.1f s", secs)
    atomic_write_json(timing_file, {**previous, **{t.notebook: {"seconds": t.seconds, "ok": t.ok} for t in timings}})
    return timings


WARNING_LINE = re.compile(r"^.*\b\w*Warning\b.*$\n?(?:^[ \t]+\S.*$\n?)?", re.MULTILINE)


def _relative_paths(text: str, repo: Path) -> str:
    """Machine paths in ``text`` made readable: repo-relative inside the repo, else just the last component."""
    text = text.replace(str(repo.resolve()) + "/", "").replace(str(repo) + "/", "")
    return re.sub(r"(?<![\w.])/(?:[^\s\"'/]+/)+([^\s\"'/]+)", r"…/\1", text)


def for_readers(nb_path: Path, repo: Path) -> None:
    """Make a published executed notebook fit to read: hide the injected parameters, drop stderr and warnings.

    The run directory keeps the executed notebook exactly as papermill wrote it; this edits the book's copy.
    """
    import nbformat  # lazy: only when publishing notebooks

    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags:
            if "remove-cell" not in tags:
                tags.append("remove-cell")
            cell.source = _relative_paths(cell.source, repo)
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                if out.get("name") == "stderr":
                    continue  # warnings and progress bars: in the run's record, not in the book
                out["text"] = WARNING_LINE.sub("", out.get("text", ""))
                if not out["text"]:
                    continue
            kept.append(out)
        cell["outputs"] = kept
    nbformat.write(nb, nb_path)


def publish_notebooks(params: Params, repo: Path, book_root: Path | None = None) -> list[Path]:
    """Copy the run's executed notebooks into ``<book_root>/book/executed/`` for the book build."""
    dest = (book_root or repo) / "book" / "executed"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copied = []
    for nb in source_notebooks(repo):
        executed = params.run.notebooks / nb.name
        if not executed.exists():
            raise FileNotFoundError(f"{executed} is missing: run the pipeline first (make book)")
        shutil.copy2(executed, dest / nb.name)
        for_readers(dest / nb.name, repo)
        copied.append(dest / nb.name)
    return copied


def stage_book_sources(repo: Path, dest: Path) -> Path:
    """Copy the book's sources (config, toc, prose) to ``dest`` to build a book away from the repo."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(repo / name, dest / name)
    shutil.copytree(repo / "book", dest / "book", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("executed"))
    return dest


def build_book(repo: Path, strict: bool = True, path_output: Path | None = None) -> float:
    """``jupyter-book build`` of ``repo`` into ``path_output/_build`` (warnings are errors when ``strict``)."""
    out = path_output or repo
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(repo), "--path-output", str(out)]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=repo)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m silicon_sing.pipeline", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "publish", "build", "book"])
    ap.add_argument("--params", default="params/smoke.yaml", help="the profile's parameter file")
    ap.add_argument("--only", nargs="*", help="run only notebooks whose names start with these prefixes")
    ap.add_argument("--overrides", default=None,
                    help='dotted parameter overrides as JSON or YAML, e.g. \'{"train.epochs": 1}\'')
    ap.add_argument("--no-strict", action="store_true", help="do not turn Sphinx warnings into errors")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the progress lines of run_notebooks
    params = load_params(args.params, args.overrides)
    repo = _repo_of(params)
    try:
        if args.command in ("run", "book"):
            run_notebooks(params, args.only)
        if args.command in ("publish", "book"):
            publish_notebooks(params, repo)
        if args.command in ("build", "book"):
            secs = build_book(repo, strict=not args.no_strict)
            print(f"book built in {secs:.1f} s: {repo / '_build' / 'html' / 'index.html'}")
    except (NotebookFailed, PrerequisitesMissing) as e:
        print(f"\n✗ {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
