"""silicon_sing.audio: I/O, resampling, levels, players and decoding errors (shapes every stage relies on)."""

from __future__ import annotations

from pathlib import Path

import librosa
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
    # a missing file is named as missing, not as undecodable (libsndfile says "System error")
    with pytest.raises(FileNotFoundError, match=r"gone\.wav: no such audio file"):
        au.load_audio(tmp_path / "gone.wav")


def test_mel_filterbank_is_librosas_with_explicit_edges() -> None:
    """One definition: Slaney by default, HTK on request, cached per argument set."""
    fb = au.mel_filterbank(16000, 1024, 64, 30.0, 8000.0)
    assert fb.shape == (64, 513) and fb.dtype == np.float32
    np.testing.assert_array_equal(fb, librosa.filters.mel(sr=16000, n_fft=1024, n_mels=64, fmin=30.0,
                                                          fmax=8000.0).astype(np.float32))
    htk = au.mel_filterbank(16000, 1024, 64, 30.0, 8000.0, htk=True)
    assert not np.array_equal(fb, htk)
    assert au.mel_filterbank(16000, 1024, 64, 30.0, 8000.0) is fb
