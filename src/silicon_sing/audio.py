"""Audio I/O, resampling, loudness and compact HTML players used by every stage.

Arrays are float32, channels first: ``[C, N]`` as :func:`load_audio` returns them, or mono ``[N]``.

Notebook: notebooks/01_curate.ipynb (loading, loudness, the players every chapter uses)
"""

from __future__ import annotations

import base64
import functools
import html
import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .fsutil import atomic_path

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg")


class AudioDecodeError(RuntimeError):
    """A file could not be decoded as audio; the message names the file and the cause."""


def load_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Decode ``path`` into float32 ``[channels, samples]`` and its sample rate.

    Raises ``FileNotFoundError`` naming ``path`` when there is no such file (libsndfile would call it a
    "System error" and the decoders' fallback would hide it), :class:`AudioDecodeError` when it exists
    but cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such audio file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        try:
            return _load_with_av(path)
        except Exception:
            raise AudioDecodeError(f"{path}: cannot be decoded as audio ({e})") from e
    return np.ascontiguousarray(data.T), int(sr)


def _load_with_av(path: Path) -> tuple[np.ndarray, int]:
    """Fallback decoder through PyAV (bundled FFmpeg) for files libsndfile rejects."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames: list[np.ndarray] = [f.to_ndarray() for f in container.decode(stream)]
        sr = stream.rate
        if not frames:
            raise AudioDecodeError(f"{path}: no audio frames")
        planar = stream.format.is_planar if stream.format else True
    chunks = []
    for fr in frames:
        arr = fr.astype(np.float32)
        if np.issubdtype(fr.dtype, np.integer):
            arr /= float(np.iinfo(fr.dtype).max)
        chunks.append(arr if planar else arr.reshape(-1, stream.channels).T)
    return np.ascontiguousarray(np.concatenate(chunks, axis=1)), int(sr)


def audio_info(path: str | os.PathLike[str]) -> tuple[float, int, int]:
    """Return (duration seconds, sample rate, channels) from the header without decoding."""
    info = sf.info(str(path))
    return info.frames / info.samplerate, int(info.samplerate), int(info.channels)


def declared_frames(path: str | os.PathLike[str]) -> int | None:
    """Frames the file's header promises, or None when it does not say.

    For WAV we read the RIFF ``data`` chunk size ourselves: libsndfile silently shortens ``frames``
    to what is on disk, which hides a truncated file. Other formats: ``soundfile.info(path).frames``
    (MP3's Xing/LAME header, FLAC's STREAMINFO).
    """
    path = Path(path)
    if path.suffix.lower() == ".wav":
        return _wav_declared_frames(path)
    try:
        frames = int(sf.info(str(path)).frames)
    except Exception:  # a format only PyAV reads: no header count to compare with
        return None
    return frames if frames > 0 else None


def _wav_declared_frames(path: Path) -> int | None:
    """``data`` chunk bytes / block align of a little-endian RIFF WAVE file (None if unknown or streamed)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 0
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if cid == b"fmt ":
                fmt = f.read(size)
                block_align = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
                f.seek(size & 1, 1)
            elif cid == b"data":
                # 0 and 0xFFFFFFFF: a streamed/unfinished header that never promised a length
                return size // block_align if block_align and size not in (0, 0xFFFFFFFF) else None
            else:
                f.seek(size + (size & 1), 1)


def to_mono(x: np.ndarray) -> np.ndarray:
    """Average channels of ``[C, N]`` (or pass ``[N]``) into ``[N]``."""
    return x.mean(axis=0) if x.ndim == 2 else x


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr) along the last axis: ``[N]`` or ``[C, N]`` in, float32 of the same rank out."""
    if sr_in == sr_out:
        return x.astype(np.float32, copy=False)
    import soxr

    if x.ndim == 1:
        return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32)
    return np.stack([soxr.resample(c, sr_in, sr_out, quality="HQ") for c in x]).astype(np.float32)


def rms_db(x: np.ndarray) -> float:
    """Root-mean-square level in dBFS (−inf-safe: floor at −200 dB)."""
    if x.size == 0:
        return -200.0
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))


def peak_db(x: np.ndarray) -> float:
    """Peak level in dBFS."""
    if x.size == 0:
        return -200.0
    return float(20 * np.log10(np.max(np.abs(x)) + 1e-10))


def loudness_lufs(x: np.ndarray, sr: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4) of mono ``[N]``; RMS-based for clips under 0.4 s."""
    import pyloudnorm

    if x.shape[-1] < int(0.4 * sr):
        return rms_db(x) - 0.691
    value = pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64))
    return float(value) if np.isfinite(value) else -200.0


def save_audio(path: str | os.PathLike[str], x: np.ndarray, sr: int, subtype: str | None = None) -> Path:
    """Atomically write ``[N]`` or ``[C, N]`` float audio; the format follows the extension."""
    data = x.T if x.ndim == 2 else x
    with atomic_path(path) as tmp:
        sf.write(str(tmp), data, sr, subtype=subtype)
    return Path(path)


def encode_compressed(x: np.ndarray, sr: int, fmt: str = "MP3") -> tuple[bytes, str]:
    """Encode mono/stereo audio to MP3 (or OGG Vorbis) bytes; return bytes and MIME type."""
    data = (x.T if x.ndim == 2 else x).astype(np.float32)
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak > 1.0:
        data = data / peak
    buf = io.BytesIO()
    if fmt.upper() == "MP3":
        # libsndfile's MP3 encoder accepts only its own rates; 32 kHz and 44.1 kHz are among them
        # variable bitrate at a high compression level: ~30 kbit/s, plenty for judging a 32 kHz model
        sf.write(buf, data, sr, format="MP3", subtype="MPEG_LAYER_III", compression_level=0.8,
                 bitrate_mode="VARIABLE")
        return buf.getvalue(), "audio/mpeg"
    sf.write(buf, data, sr, format="OGG", subtype="VORBIS")
    return buf.getvalue(), "audio/ogg"


def player_html(x: np.ndarray, sr: int, label: str | None = None, fmt: str = "MP3",
                style: str = "width: 100%; min-width: 180px") -> str:
    """An ``<audio>`` element with the clip inlined as compressed base64 (tens of kB, not MB)."""
    data, mime = encode_compressed(x, sr, fmt)
    b64 = base64.b64encode(data).decode("ascii")
    title = f' title="{html.escape(label)}"' if label else ""
    return (
        f'<audio controls preload="metadata"{title} style="{style}">'
        f'<source src="data:{mime};base64,{b64}" type="{mime}"></audio>'
    )


def player_table_html(
    rows: list[str], cols: list[str], cells: dict[tuple[str, str], tuple[np.ndarray, int] | None],
    caption: str | None = None,
) -> str:
    """An HTML table of players: one row per ``rows`` entry, one column per ``cols`` entry."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows:
        tds = []
        for c in cols:
            cell = cells.get((r, c))
            tds.append(f"<td>{player_html(cell[0], cell[1], f'{r} / {c}')}</td>" if cell else "<td>—</td>")
        body.append(f"<tr><th>{html.escape(r)}</th>{''.join(tds)}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="silicon-players">{cap}<thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


# --------------------------------------------------------------------------- spectrograms


@functools.lru_cache(maxsize=16)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool = False) -> np.ndarray:
    """Mel filterbank ``[n_mels, n_fft // 2 + 1]`` (librosa, Slaney area normalisation), float32, cached.

    Args:
        sr: sample rate of the spectrogram it multiplies.
        n_fft: FFT size of that spectrogram (``n_fft // 2 + 1`` bins).
        n_mels: number of bands.
        fmin, fmax: edges of the lowest and highest band in Hz.
        htk: HTK mel scale instead of Slaney's (librosa's ``htk``).

    Returns:
        ``[n_mels, n_fft // 2 + 1]`` weights; ``power[frames, bins] @ fb.T`` gives mel power ``[frames, n_mels]``.
    """
    import librosa  # lazy: librosa's import pulls in numba and takes seconds

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk).astype(np.float32)



def log_mel(x: np.ndarray, sr: int, n_mels: int = 64, hop: int = 320, n_fft: int = 1024) -> np.ndarray:
    """Log-mel power spectrogram in dB re full scale (floored at −80 dB) of mono audio, for display.

    Args:
        x: mono audio ``[N]``.
        sr: its sample rate.

    Returns:
        ``[n_mels, frames]`` in dB, frames centred every ``hop`` samples (zero-padded ends, symmetric Hann).
    """
    x = np.pad(x.astype(np.float32), (n_fft // 2, n_fft // 2))
    n_frames = 1 + max(0, (len(x) - n_fft) // hop)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n_frames]
    window = np.hanning(n_fft).astype(np.float32)
    # scaled so that a full-scale sine peaks near 0 dB
    power = (np.abs(np.fft.rfft(frames * window, axis=1)) / (window.sum() / 2)) ** 2
    # librosa's defaults (0 Hz to Nyquist, Slaney), as this display has always used
    mel = mel_filterbank(sr, n_fft, n_mels, 0.0, sr / 2) @ power.T
    return np.maximum(10 * np.log10(mel + 1e-10), -80.0)
