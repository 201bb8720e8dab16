"""End to end: every source notebook runs under papermill on the smoke profile, in order."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from silicon_sing.params import load_params
from silicon_sing.pipeline import NotebookFailed, run_notebooks, source_notebooks
from stems import glued

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


def test_published_notebooks_hide_injected_parameters_paths_and_warnings(tmp_path: Path) -> None:
    """The book's copy: injected cell removed from the page, no machine path, no warning text; the run keeps all."""
    from silicon_sing.pipeline import for_readers

    nb = nbformat.v4.new_notebook()
    injected = nbformat.v4.new_code_cell(f'# Parameters\nparams_file = "{REPO}/params/smoke.yaml"\n'
                                         'overrides = {"run_dir": "/tmp/pytest-of-root/smoke-run0"}\n')
    injected.metadata["tags"] = ["injected-parameters"]
    work = nbformat.v4.new_code_cell("run()")
    work.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="/root/venv/torch/nn/utils/weight_norm.py:144: "
                               "FutureWarning: `weight_norm` is deprecated.\n  WeightNorm.apply(module, name, dim)\n"),
        nbformat.v4.new_output("stream", name="stdout", text="UserWarning: something\n72 continuations\n"),
        nbformat.v4.new_output("display_data", data={"text/plain": "kept"}),
    ]
    nb.cells = [injected, work]
    path = tmp_path / "04.ipynb"
    nbformat.write(nb, path)
    for_readers(path, REPO)
    out = nbformat.read(path, as_version=4)
    assert "remove-cell" in out.cells[0].metadata["tags"]
    assert 'params_file = "params/smoke.yaml"' in out.cells[0].source and "/tmp/" not in out.cells[0].source
    text = json.dumps([c.get("outputs", []) for c in out.cells])
    assert "Warning" not in text and "/root/" not in text and "72 continuations" in text and "kept" in text


@pytest.mark.slow
def test_every_smoke_cell_rests_on_three_test_tracks_and_says_so(smoke_run) -> None:
    """metrics.json: every cell and delta has ≥ 3 test tracks, its segments counted, intervals over tracks."""
    params, _ = smoke_run
    metrics = json.loads((params.run.metrics / "metrics.json").read_text())
    assert metrics["meta"]["resampling_unit"] == "track"
    for c in metrics["cells"] + metrics["deltas"]:
        assert c["n_tracks"] >= 3 and c["n_segments"] >= c["n_tracks"] and c["n"] == c["n_segments"]
    g = glued(params.run.notebooks / "04_evaluate.ipynb")
    assert "between" not in g["n_tracks_phrase"] and "test track" in g["n_tracks_phrase"]
    for cat in ("instrumental", "acapella", "full"):
        assert "cannot be told from zero" in g[f"{cat}_kl_detectable"]
        assert "published changes" in g[f"{cat}_fad_resolvable"]
    assert "the voice" in g["acapella_voicing_verdict"]
