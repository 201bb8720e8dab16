"""Tests for silicon_sing.nbtools: glue_all, stripping outputs, checking parameters cells, escaped tables."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pandas as pd
import pytest

from silicon_sing import nbtools
from silicon_sing.nbtools import check_notebook, escaped_style, glue_all, strip_notebook


def _notebook(path: Path, params_source: str = 'params_file = "p.yaml"\noverrides = {}', outputs: bool = True) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(params_source, metadata={"tags": ["parameters"]})
    body = nbformat.v4.new_code_cell("1 + 1")
    if outputs:
        body.outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
        body.execution_count = 1
        body.metadata["papermill"] = {"duration": 0.1}
    nb.cells = [params, body]
    nb.metadata["papermill"] = {"parameters": {}}
    nbformat.write(nb, path)
    return path


def test_glue_all_glues_every_value_with_one_display_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import myst_nb

    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: calls.append((name, value, display)))
    glue_all({"a": 1, "b": "two"})
    glue_all({"c": 3.0}, display=True)
    assert calls == [("a", 1, False), ("b", "two", False), ("c", 3.0, True)]


def test_strip_removes_outputs_counts_and_papermill_metadata(tmp_path: Path) -> None:
    nb_path = _notebook(tmp_path / "a.ipynb")
    assert check_notebook(nb_path) == [f"{nb_path}: has outputs (run `make strip`)"]
    assert strip_notebook(nb_path) is True
    nb = nbformat.read(nb_path, as_version=4)
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
    assert "papermill" not in nb.metadata and "papermill" not in nb.cells[1].metadata
    assert check_notebook(nb_path) == [] and strip_notebook(nb_path) is False  # already clean: untouched


def test_check_names_a_missing_or_incomplete_parameters_cell(tmp_path: Path) -> None:
    nb_path = _notebook(tmp_path / "b.ipynb", params_source="x = 1", outputs=False)
    assert check_notebook(nb_path) == [f"{nb_path}: the parameters cell must define params_file and overrides"]
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells[0].metadata["tags"] = []
    nbformat.write(nb, nb_path)
    assert check_notebook(nb_path) == [f"{nb_path}: needs exactly one cell tagged 'parameters', found 0"]


def test_cli_check_exits_nonzero_on_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dirty = _notebook(tmp_path / "c.ipynb")
    assert nbtools.main(["check", str(dirty)]) == 1 and "has outputs" in capsys.readouterr().out
    assert nbtools.main(["strip", str(dirty)]) == 0 and nbtools.main(["check", str(dirty)]) == 0


def test_escaped_style_escapes_cells_and_labels() -> None:
    df = pd.DataFrame({"<b>col</b>": ["<script>x</script>"]}, index=pd.Index(["<i>row</i>"]))
    html = escaped_style(df).to_html()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>col</b>" not in html and "<i>row</i>" not in html


def test_cells_without_an_id_are_named_and_strip_gives_them_one(tmp_path: Path) -> None:
    """nbformat 4.5 requires a cell id; a hand-edited notebook without one only warned (05_listen had two)."""
    import json
    import warnings

    nb_path = _notebook(tmp_path / "d.ipynb", outputs=False)
    raw = json.loads(nb_path.read_text())
    del raw["cells"][1]["id"]
    nb_path.write_text(json.dumps(raw))
    assert check_notebook(nb_path) == [f"{nb_path}: cell 1 has no id (nbformat 4.5 requires one: run `make strip`)"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbformat's own MissingIDFieldWarning while it reads the file
        assert strip_notebook(nb_path) is True
    assert all(c.get("id") for c in json.loads(nb_path.read_text())["cells"])
    assert check_notebook(nb_path) == [] and strip_notebook(nb_path) is False
