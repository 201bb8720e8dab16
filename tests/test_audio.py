"""Audio I/O, resampling and levels (silicon_sing.audio): shapes and round trips every stage relies on.

(The players' size and the decode error's message are tested in test_params_and_notebooks.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from silicon_sing import audio as au

SR = 32000


def sine(f: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * f * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def test_mono_and_resampling_keep_the_channels_first_layout() -> None:
    x = np.stack([sine(440.0), np.zeros(SR, np.float32)])
    left = x[0]
    assert au.to_mono(x).shape == (SR,) and au.to_mono(left) is left
    y = au.resample(x, SR, 16000)
    assert y.shape == (2, 16000) and y.dtype == np.float32
    assert au.resample(x[0], SR, SR).dtype == np.float32 and au.resample(x[0], SR, 48000).shape == (48000,)


def test_levels_of_a_known_sine_and_of_silence() -> None:
    x = sine(1000.0, amp=0.5)
    assert au.rms_db(x) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01)
    assert au.peak_db(x) == pytest.approx(20 * np.log10(0.5), abs=0.01)
    assert au.rms_db(np.zeros(0)) == -200.0 and au.peak_db(np.zeros(0)) == -200.0
    assert au.loudness_lufs(x[:100], SR) == pytest.approx(au.rms_db(x[:100]) - 0.691)


def test_save_then_load_round_trips_stereo_pcm(tmp_path: Path) -> None:
    x = np.stack([sine(220.0), sine(330.0)])
    path = au.save_audio(tmp_path / "a" / "x.wav", x, SR, "PCM_16")
    y, sr = au.load_audio(path)
    assert sr == SR and y.shape == x.shape and y.dtype == np.float32
    assert np.max(np.abs(y - x)) < 1e-3
    assert au.audio_info(path)[1:] == (SR, 2)
