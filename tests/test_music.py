"""Pitch and key theory and the f0 trackers (silicon_sing.music)."""

from __future__ import annotations

import numpy as np
import pytest

from silicon_sing import music

SR = 44100


def test_estimate_f0_finds_a_known_pitch_and_marks_silence_unvoiced() -> None:
    t = np.arange(2 * SR) / SR
    x = np.where(t < 1.0, 0.3 * np.sign(np.sin(2 * np.pi * 150.0 * t)) * 0.5, 0.0)
    f0 = music.estimate_f0(x.astype(np.float32), SR)
    assert np.nanmedian(f0[10:90]) == pytest.approx(150.0, rel=0.02)
    assert np.isnan(f0[120:190]).all()


def test_midi_and_hz_are_inverse_and_a4_is_440() -> None:
    assert music.midi_to_hz(69.0) == 440.0
    assert music.hz_to_midi(float(music.midi_to_hz(60.0))) == pytest.approx(60.0)
    assert np.allclose(music.midi_to_hz(np.array([57.0, 81.0])), [220.0, 880.0])


def test_sharp_and_flat_spellings_name_the_same_key() -> None:
    assert music.same_key("F# minor", "Gb minor") and music.same_key("C major", "C major")
    assert not music.same_key("F# minor", "F# major") and not music.same_key(None, "C major")
    assert [music.PITCH_CLASSES[n] for n in music.NOTE_NAMES] == list(range(12))


def test_essentia_pitch_of_a_steady_tone() -> None:
    t = np.arange(2 * SR) / SR
    x = (0.3 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    f0, voiced = music.estimate_pitch(x, SR)
    assert f0 == pytest.approx(220.0, rel=0.02) and voiced > 0.9
    assert music.estimate_pitch(np.zeros(100, np.float32), SR) == (None, 0.0)
