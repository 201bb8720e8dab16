"""Tests for silicon_sing.audio: players and decoding errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from silicon_sing import audio as au


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
