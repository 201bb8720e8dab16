"""Every stage's prerequisites are checked before the first stage runs, and all are named at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from silicon_sing import preflight
from silicon_sing.params import load_params
from silicon_sing.pipeline import run_notebooks


def test_the_paper_profile_here_lists_every_missing_prerequisite_before_running_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no PaSST/VGGish/demucs weights
    monkeypatch.setattr("silicon_sing.models.hub.hf_cached_path", lambda repo, filename: None)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    params = load_params("params/paper.yaml", {"run_dir": str(tmp_path / "run"),
                                               "curate.data_root": str(tmp_path / "no-stems")})
    with pytest.raises(preflight.PrerequisitesMissing) as err:
        run_notebooks(params)
    msg = str(err.value)
    assert "6 prerequisite(s) missing (nothing was run)" in msg
    for needed in (f"curate.data_root = {tmp_path / 'no-stems'} does not exist", "Essentia model files are missing",
                   "train.dist_backend is 'nccl' but this machine has no visible GPU",
                   "facebook/musicgen-melody/state_dict.bin", "PaSST", "VGGish"):
        assert needed in msg
    assert not (tmp_path / "run").exists()  # no stage ran, nothing was written


def test_only_the_stages_that_run_are_checked(tmp_path: Path) -> None:
    stems = tmp_path / "stems" / "an-artist"
    stems.mkdir(parents=True)
    params = load_params("params/paper.yaml", {"curate.data_root": str(tmp_path / "stems")})
    assert preflight.problems(params, ["01_curate.ipynb"]) == []
    assert any("Essentia" in p for p in preflight.problems(params, ["02_caption.ipynb"]))


def test_the_embedded_default_needs_nothing() -> None:
    assert preflight.problems(load_params("params/smoke.yaml")) == []
