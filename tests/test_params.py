"""Tests for silicon_sing.params: the shipped profiles, overrides and validation rules."""

from __future__ import annotations

from pathlib import Path

import pytest

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
