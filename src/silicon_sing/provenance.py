"""Where and how a build ran: hardware, versions, and the time each stage took.

Notebook: notebooks/06_reproduce.ipynb
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from .machine import usable_cpus
from .params import Params, find_repo_root

KEY_PACKAGES = ("torch", "torchaudio", "audiocraft", "xformers", "essentia", "jupyter-book", "papermill",
                "hear21passt", "torchvggish", "numpy")


def hardware() -> dict[str, Any]:
    """CPU cores this build may use (:func:`~silicon_sing.machine.usable_cpus`), GPU count and names, OS and Python."""
    import torch  # lazy: torch takes seconds to import; only hardware() needs it

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"cpu_cores": usable_cpus(), "gpus": len(gpus), "gpu_names": sorted(set(gpus)),
            "platform": platform.platform(terse=True), "python": sys.version.split()[0]}


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that decide the results."""
    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = "not installed"
    return out


def timings_path(params: Params) -> Path:
    """``<run_dir>/notebooks/timings.json``: the wall time of each notebook, written by the pipeline."""
    return params.run.timings


def stage_timings(params: Params) -> pd.DataFrame:
    """Wall time of each executed notebook of this run (from the pipeline's ``timings.json``)."""
    path = timings_path(params)
    data = json.loads(path.read_text()) if path.exists() else {}
    rows = [{"notebook": k, "seconds": v["seconds"], "ok": v["ok"]} for k, v in sorted(data.items())]
    return pd.DataFrame(rows, columns=["notebook", "seconds", "ok"])


def pinned_requirements(repo: Path | None = None) -> list[str]:
    """The pinned lines of requirements*.txt (the one place versions are recorded)."""
    repo = repo or find_repo_root()
    lines = []
    for name in ("requirements.txt", "requirements-nodeps.txt"):
        p = repo / name
        if p.exists():
            lines += [ln.strip() for ln in p.read_text().splitlines() if "==" in ln and not ln.startswith("#")]
    return lines


def readable_path(path: str | os.PathLike[str] | None, repo: Path | None = None) -> str | None:
    """A path as a reader should see it: relative to the repository, else ``…/<last part>`` (no machine paths)."""
    if path is None:
        return None
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    repo = (repo or find_repo_root(p.parent if p.suffix else p)).resolve()
    try:
        return str(p.resolve().relative_to(repo))
    except ValueError:
        return f"…/{p.name}"


def params_for_readers(params: Params) -> dict[str, Any]:
    """The run's parameters as a dict for the book: the same values, locations relative to the repository."""
    d = params.to_dict()
    repo = find_repo_root(Path(params.source).parent) if params.source else None
    for key in ("run_dir", "source"):
        d[key] = readable_path(d.get(key), repo)
    if d.get("curate", {}).get("data_root"):
        d["curate"]["data_root"] = readable_path(d["curate"]["data_root"], repo)
    overrides = dict(d.get("overrides") or {})
    for k, v in overrides.items():
        if isinstance(v, str) and v.startswith("/"):
            overrides[k] = readable_path(v, repo)
    d["overrides"] = overrides
    return d
