"""End to end: every source notebook runs under papermill on the smoke profile, in order."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from silicon_sing.params import load_params
from silicon_sing.pipeline import NotebookFailed, run_notebooks, source_notebooks
from conftest import glued

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = source_notebooks(REPO)


@pytest.mark.slow
@pytest.mark.timeout(2400)  # the first test also runs every notebook (fixture setup)
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_without_error(smoke_run, nb: Path) -> None:
    """The executed copy exists, has no error output and glues at least one value."""
    params, timings = smoke_run
    executed = params.run.notebooks / nb.name
    assert executed.exists()
    doc = nbformat.read(executed, as_version=4)
    errors = [o for c in doc.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert glued(executed), f"{nb.name} glues no values for the book"
    assert any(t.notebook == nb.name and t.ok for t in timings)


@pytest.mark.slow
def test_curation_notebook_outputs(smoke_run) -> None:
    """Notebook 01 curates the synthetic corpus: 3 artists, players, plots, held-out tracks."""
    params, _ = smoke_run
    g = glued(params.run.notebooks / "01_curate.ipynb")
    assert g["profile"].strip("'") == "smoke" and int(g["n_artists"]) == 3
    assert int(g["n_test_tracks"]) >= 3 and int(g["n_problems"]) == 0
    doc = nbformat.read(params.run.notebooks / "01_curate.ipynb", as_version=4)
    html = "".join(o.get("data", {}).get("text/html", "") for c in doc.cells for o in c.get("outputs", []))
    assert html.count("<audio") == 9
    images = sum("image/png" in o.get("data", {}) for c in doc.cells for o in c.get("outputs", []))
    assert images >= 3
    timings = json.loads((params.run.notebooks / "timings.json").read_text())
    assert timings["01_curate.ipynb"]["ok"]


def test_failing_notebook_is_named_and_kept(tmp_path: Path) -> None:
    """A notebook that raises stops the pipeline with its name, and its executed copy is kept."""
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "params").mkdir()
    (repo / "_config.yml").write_text("title: t\n")
    (repo / "params" / "smoke.yaml").write_text(f"run_dir: {tmp_path / 'run'}\n")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('params_file = ""\noverrides = {}')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("raise ValueError('stage exploded')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, repo / "notebooks" / "01_fail.ipynb")
    params = load_params(repo / "params" / "smoke.yaml")
    with pytest.raises(NotebookFailed, match=r"01_fail\.ipynb failed .*ValueError: stage exploded"):
        run_notebooks(params)
    assert (tmp_path / "run" / "notebooks" / "01_fail.ipynb").exists()
