"""Provenance shown in notebook 06: this machine, the pins, parameters without machine paths."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from silicon_sing.params import load_params
from silicon_sing.provenance import hardware, package_versions, pinned_requirements, stage_timings

REPO = Path(__file__).resolve().parents[1]


def test_provenance_reports_this_machine_and_the_pins(tmp_path: Path) -> None:
    """Hardware, versions and pins are read, not typed; missing timings give an empty table."""
    hw = hardware()
    assert hw["cpu_cores"] >= 1 and hw["gpus"] >= 0
    assert package_versions(("torch", "no-such-package")) ["no-such-package"] == "not installed"
    pins = pinned_requirements(REPO)
    assert "torch==2.9.1" in pins and "audiocraft==1.3.0" in pins
    params = load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(tmp_path)})
    assert isinstance(stage_timings(params), pd.DataFrame) and stage_timings(params).empty


def test_parameters_shown_in_the_book_hold_no_machine_path(tmp_path: Path) -> None:
    """Notebook 06 prints the parameters: run dir and source relative to the repo, else only their last part."""
    from silicon_sing.provenance import params_for_readers

    inside = params_for_readers(load_params(REPO / "params" / "smoke.yaml"))
    assert inside["run_dir"] == "runs/smoke" and inside["source"] == "params/smoke.yaml"
    outside = params_for_readers(load_params(REPO / "params" / "smoke.yaml", {"run_dir": str(tmp_path / "run0")}))
    assert outside["run_dir"] == "…/run0" and outside["overrides"] == {"run_dir": "…/run0"}
    assert str(tmp_path) not in repr(outside) and str(REPO) not in repr(inside)
