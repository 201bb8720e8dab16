"""Parameter files, notebook hygiene and the helpers every stage shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from silicon_sing import audio as au
from silicon_sing.fsutil import atomic_path, atomic_write_json, read_json
from silicon_sing.nbtools import check_notebook
from silicon_sing.params import ParamsError, load_params

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("profile", ["smoke", "paper"])
def test_profiles_load_and_never_share_a_run_dir(profile: str) -> None:
    """Both shipped profiles parse, and their run directories differ."""
    p = load_params(REPO / "params" / f"{profile}.yaml")
    assert p.profile == profile and Path(p.run_dir).is_absolute() and Path(p.run_dir).name == profile


def test_unknown_keys_and_missing_files_are_named() -> None:
    """A typo in a parameter file names the file and the key; a missing file names the path."""
    with pytest.raises(ParamsError, match=r"smoke\.yaml\.curate: unknown parameter\(s\) \['segment_secs'\]"):
        load_params(REPO / "params" / "smoke.yaml", {"curate.segment_secs": 3})
    with pytest.raises(ParamsError, match="does not exist"):
        load_params(REPO / "params" / "nope.yaml")


def test_overrides_apply_and_are_recorded() -> None:
    """Dotted overrides reach the section and are kept for papermill to pass on."""
    p = load_params(REPO / "params" / "smoke.yaml", {"train.epochs": 1, "seed": 7})
    assert p.train.epochs == 1 and p.seed == 7 and p.overrides == {"train.epochs": 1, "seed": 7}


@pytest.mark.parametrize("nb", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_source_notebooks_are_clean_and_parameterised(nb: Path) -> None:
    """Committed notebooks carry no outputs and exactly one parameters cell."""
    assert check_notebook(nb) == []


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    """A failing write keeps the previous content and leaves no temporary file behind."""
    target = tmp_path / "x.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert read_json(target) == {"a": 1} and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_players_are_compact() -> None:
    """A 6 s clip becomes an <audio> element of tens of kB, not a megabyte of WAV."""
    x = 0.1 * np.random.default_rng(0).standard_normal(32000 * 6).astype(np.float32)
    html = au.player_html(x, 32000, "noise")
    assert html.startswith("<audio") and "audio/mpeg" in html
    wav_b64 = 32000 * 6 * 2 * 4 / 3
    assert len(html) < wav_b64 / 8
    table = au.player_table_html(["a"], ["x", "y"], {("a", "x"): (x, 32000)})
    assert table.count("<audio") == 1 and "—" in table


def test_load_audio_names_the_file(tmp_path: Path) -> None:
    """Undecodable input raises with the file's path in the message."""
    bad = tmp_path / "bad.wav"
    bad.write_text("nope")
    with pytest.raises(au.AudioDecodeError, match="bad.wav"):
        au.load_audio(bad)


def test_smoke_profile_holds_out_three_test_tracks_per_artist_with_two_segments_each() -> None:
    """The smoke split leaves ≥ 3 test tracks per artist (the unit the intervals resample), each of
    which yields ≥ 2 segments, without synthesising more audio than 3 artists × 96 s."""
    from silicon_sing.curate import assign_splits

    c = load_params(REPO / "params" / "smoke.yaml").curate
    n = c.synth_tracks_per_artist
    split = assign_splits([(a, f"{a}/{i:02d}") for a in "abc" for i in range(n)], c.split_fractions, 1234)
    for a in "abc":
        assert sum(split[f"{a}/{i:02d}"] == "test" for i in range(n)) >= 3
        assert sum(split[f"{a}/{i:02d}"] == "train" for i in range(n)) >= 3
    assert int(c.synth_track_seconds // c.segment_seconds) >= 2
    assert n * c.synth_track_seconds <= 96.0


def test_rules_across_fields_name_both_keys() -> None:
    from silicon_sing.params import ParamsError, load_params

    with pytest.raises(ParamsError, match=r"train.warmup_steps = 6 must be smaller than .* = 6"):
        load_params("params/smoke.yaml", {"train.epochs": 1, "train.updates_per_epoch": 6, "train.warmup_steps": 6})
    with pytest.raises(ParamsError, match="train.nnodes = 2 needs train.rdzv_endpoint"):
        load_params("params/paper.yaml", {"train.nnodes": 2})
    assert load_params("params/paper.yaml", {"train.nnodes": 2, "train.rdzv_endpoint": "n0:29400"}).train.nnodes == 2
