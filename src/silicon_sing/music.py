"""Pitch and key theory and the f0 trackers: one home for what synthesis, captioning and evaluation share.

- Pitch-class names (:data:`PITCH_CLASSES`, sharp and flat spellings; :data:`NOTE_NAMES` for
  printing), the major and natural-minor :data:`SCALES`, equal-tempered :func:`midi_to_hz` /
  :func:`hz_to_midi` (A4 = MIDI 69 = 440 Hz).
- Key names (``"F# minor"``): :func:`same_key`.
- Two f0 trackers, different on purpose:

  * :func:`estimate_pitch` — Essentia ``PitchYinFFT`` over a whole stem, reduced to one median
    pitch and a voiced fraction. Stage 02 uses it to word a singer's register; it runs on
    Essentia like the stage's other descriptors (cached with them).
  * :func:`estimate_f0` — our own time-domain YIN (librosa) with a stricter trough and an explicit
    periodicity/level voicing rule, returning the per-frame contour. The synthetic voices'
    tests compare it frame by frame with the generator's notes, and stage 04's voicing check
    uses it on generated clips, where no Essentia descriptor cache applies.

- :func:`harmonic_lines` — the horizontal lines (held partials) a spectrogram draws between 1
  and 8 kHz, per frame: the harmonic structure a reader looks for in a spectrogram, counted.
  Stage 04 measures continuations with it; pre-training measures what its codec keeps of them.

Essentia itself is reached through :func:`essentia_standard` (its INFO chatter silenced) and
:func:`as_essentia` (contiguous float32 mono), so every caller talks to it alike.

Notebooks: notebooks/02_caption.ipynb (key and register descriptors),
notebooks/04_evaluate.ipynb (does it still sing; does it draw harmonic lines).
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np

from .audio import log_mel, resample, to_mono

PITCH_CLASSES = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6, "G": 7,
                 "G#": 8, "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11}
NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # pitch class -> printed name
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
F0_SR = 16000  # estimate_f0 analyses at this rate


# --------------------------------------------------------------------------- notes and keys


def midi_to_hz(m: float | np.ndarray) -> float | np.ndarray:
    """Equal-tempered MIDI note number (scalar or array of any shape) to Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((m - 69.0) / 12.0)


def hz_to_midi(f: float) -> float:
    """Hz to fractional MIDI note number."""
    return 69.0 + 12.0 * math.log2(f / 440.0)


def same_key(a: str | None, b: str | None) -> bool:
    """Whether two ``"F# minor"``-style keys name the same pitch class and mode."""
    if not a or not b:
        return False
    (ta, ma), (tb, mb) = a.split(), b.split()
    return PITCH_CLASSES.get(ta) == PITCH_CLASSES.get(tb) and ma == mb


# --------------------------------------------------------------------------- Essentia access


def essentia_standard() -> ModuleType:
    """``essentia.standard`` with Essentia's INFO chatter switched off."""
    import essentia  # lazy: a compiled extension (or its TensorFlow build) only the analysis needs

    essentia.log.infoActive = False
    essentia.log.warningActive = False
    import essentia.standard as es  # lazy: as above

    return es


def as_essentia(x: np.ndarray) -> np.ndarray:
    """Contiguous float32 mono, as Essentia wants it.

    Args:
        x: audio, float ``[N]`` or ``[C, N]`` (channels first).
    Returns:
        float32 ``[N]``.
    """
    return np.ascontiguousarray(to_mono(x), dtype=np.float32)


# --------------------------------------------------------------------------- f0 trackers


def estimate_pitch(x: np.ndarray, sr: int, min_confidence: float = 0.6) -> tuple[float | None, float]:
    """Median confident YIN (FFT) pitch of a monophonic voice and the voiced fraction of frames.

    Args:
        x: audio, float ``[N]`` or ``[C, N]``.
        sr: its sample rate.
        min_confidence: PitchYinFFT confidence from which a frame counts as voiced.
    Returns:
        (median f0 in Hz of the voiced frames, or None under 5 voiced frames; voiced fraction 0–1).
    """
    es = essentia_standard()
    frame, hop = 2048, 512
    x = as_essentia(x)
    if len(x) < frame:
        return None, 0.0
    window, spectrum = es.Windowing(type="hann"), es.Spectrum()
    yin = es.PitchYinFFT(sampleRate=float(sr), frameSize=frame, minFrequency=60.0, maxFrequency=1100.0)
    f0, conf = [], []
    for fr in es.FrameGenerator(x, frameSize=frame, hopSize=hop, startFromZero=True):
        p, c = yin(spectrum(window(fr)))
        f0.append(p)
        conf.append(c)
    f0_a, conf_a = np.asarray(f0), np.asarray(conf)
    voiced = (conf_a >= min_confidence) & (f0_a > 0)
    if voiced.sum() < 5:
        return None, float(voiced.mean()) if len(voiced) else 0.0
    return round(float(np.median(f0_a[voiced])), 1), round(float(voiced.mean()), 3)


def estimate_f0(x: np.ndarray, sr: int, fmin: float = 60.0, fmax: float = 1100.0, hop_s: float = 0.01,
                trough_threshold: float = 0.05) -> np.ndarray:
    """Per-frame f0 in Hz (YIN at 16 kHz, 10 ms hop); NaN where a frame is quiet or aperiodic.

    Args:
        x: audio, float ``[N]`` or ``[C, N]`` (channels first), at ``sr``.
        sr: its sample rate.
    Returns:
        float64 ``[T]``, one value per ``hop_s`` frame (centred; ``T`` ≈ duration / ``hop_s``);
        empty when the clip is shorter than one 1024-sample frame at 16 kHz.
    """
    import librosa  # lazy: librosa (numba) costs seconds to import and only this tracker uses it

    y = resample(to_mono(np.asarray(x, dtype=np.float32)), sr, F0_SR).astype(np.float64)
    frame, hop = 1024, int(round(hop_s * F0_SR))
    if y.size < frame:
        return np.full(0, np.nan)
    # a stricter trough than librosa's 0.1 avoids octave-up errors when F1 boosts the 2nd harmonic
    f0 = librosa.yin(y, fmin=fmin, fmax=fmax, sr=F0_SR, frame_length=frame, hop_length=hop, center=True,
                     trough_threshold=trough_threshold)
    frames = librosa.util.frame(np.pad(y, frame // 2), frame_length=frame, hop_length=hop)
    k = min(frames.shape[1], f0.size)
    frames, f0 = frames[:, :k], f0[:k]
    # voicing rule: loud enough and strongly periodic at the YIN period (normalised autocorrelation)
    w = frame // 2
    lag = np.clip(np.round(float(F0_SR) / f0).astype(int), 1, frame - w)
    a = frames[:w]
    b = frames[np.arange(w)[:, None] + lag[None, :], np.arange(k)[None, :]]
    corr = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0) + 1e-20)
    level = 10 * np.log10(np.mean(frames ** 2, axis=0) + 1e-20)
    voiced = (corr > 0.7) & (level > level.max() - 35.0)
    return np.where(voiced, f0, np.nan)


# --------------------------------------------------------------------------- harmonic lines

LINE_BAND_HZ = (1000.0, 8000.0)  # above the bass and its first harmonics, below the cymbals' wash
LINE_PROMINENCE_DB = 6.0  # a line stands this far above the bands two away on each side
LINE_FLOOR_DB = -70.0  # and above this level (dB re full scale; the display floors at -80)
LINE_FRAMES = 3  # and holds for this many 10 ms frames: a partial, not a click's ripple
LINE_BANDS = 128  # mel bands of the analysis, and of the listening room's spectrograms (48 merged the lines)
# a band that is a line in more of the clip's frames than this is a steady whistle, not a part: an untrained
# codec's upsampling layers draw one through the whole clip (random-init nano: 1.0 line per frame, all of
# it in bands held > 80 % of the time), the synthetic originals' parts never hold a band that long in 4 s
LINE_STEADY_SHARE = 0.8


def harmonic_line_mask(y: np.ndarray, sr: int) -> np.ndarray:
    """Where mono ``y`` ``[N]`` draws harmonic lines: bool ``[bands, T - LINE_FRAMES + 1]`` over the 128-band log-mel
    bands whose centres lie in :data:`LINE_BAND_HZ` (rows, low to high) and 10 ms frames (columns); a cell is True
    where a line (see :func:`harmonic_lines`) holds from that frame on. ``[bands, 0]`` for a clip under
    :data:`LINE_FRAMES` frames."""
    import librosa  # lazy: librosa (numba) costs seconds to import

    hop = int(round(sr / 100))
    n_fft = 1 << int(round(np.log2(0.032 * sr)))  # 1024 at 32 kHz
    spec = log_mel(np.asarray(y, dtype=np.float32), sr, n_mels=LINE_BANDS, hop=hop, n_fft=n_fft)  # [bands, T]
    centres = librosa.mel_frequencies(LINE_BANDS + 2, fmin=0.0, fmax=sr / 2)[1:-1]  # log_mel's Slaney bands
    band = (centres[2:-2] >= LINE_BAND_HZ[0]) & (centres[2:-2] < LINE_BAND_HZ[1])
    if spec.shape[1] < LINE_FRAMES:
        return np.zeros((int(band.sum()), 0), dtype=bool)
    mid = spec[2:-2]
    peak = ((mid > spec[:-4] + LINE_PROMINENCE_DB) & (mid > spec[4:] + LINE_PROMINENCE_DB)
            & (mid > spec[1:-3]) & (mid > spec[3:-1]) & (mid > LINE_FLOOR_DB))
    # a peak in this band in every frame of a LINE_FRAMES window
    held = np.asarray(np.lib.stride_tricks.sliding_window_view(peak[band], LINE_FRAMES, axis=1).all(axis=-1))
    held[held.mean(axis=1) > LINE_STEADY_SHARE] = False  # a steady whistle or drone, not a part
    return held


def harmonic_lines(y: np.ndarray, sr: int) -> float:
    """Horizontal spectral lines per frame between 1 and 8 kHz (:data:`LINE_BAND_HZ`) of mono ``y`` ``[N]``.

    In a 128-band log-mel spectrogram (10 ms frames, ~32 ms windows), a line is a band louder by
    :data:`LINE_PROMINENCE_DB` than the bands two away on either side, louder than its direct
    neighbours, above :data:`LINE_FLOOR_DB`, in :data:`LINE_FRAMES` consecutive frames. Noise and
    drum hits spread their energy over many bands and draw none; a note draws one line per partial
    the bands resolve (a 440 Hz sawtooth: 8 of its 16 partials in the band). A band that is a line
    in more than :data:`LINE_STEADY_SHARE` of the frames is a steady whistle (a codec's upsampling
    artefact) or a drone, and does not count. The count per frame is averaged over the clip's frames
    (silence counts as 0 lines); NaN when the clip is shorter than :data:`LINE_FRAMES` frames.
    The count says nothing of *where* the lines are: :func:`lines_in_place` compares them with a reference's.
    """
    held = harmonic_line_mask(y, sr)
    return float(held.sum(axis=0).mean()) if held.shape[1] else float("nan")


LINE_PLACE_BANDS = 1  # a line counts as in place within this many mel bands (~1.5 % in frequency at 2 kHz)


def lines_in_place(reference: np.ndarray, estimate: np.ndarray, sr: int) -> float:
    """The share of ``reference``'s harmonic lines that ``estimate`` draws in the same place, in [0, 1].

    Both mono ``[N]``, time-aligned (a codec's reconstruction of the reference, say). A line cell of the reference
    (:func:`harmonic_line_mask`) is kept when the estimate has a line cell in the same frame within
    :data:`LINE_PLACE_BANDS` bands; frames the estimate lacks (a shorter clip) keep nothing. :func:`harmonic_lines`
    alone cannot tell a codec that keeps the lines from one that draws as many elsewhere. NaN when the reference
    draws no line.
    """
    ref, est = harmonic_line_mask(reference, sr), harmonic_line_mask(estimate, sr)
    total = int(ref.sum())
    if total == 0:
        return float("nan")
    t = min(ref.shape[1], est.shape[1])
    near = est[:, :t].copy()
    for k in range(1, LINE_PLACE_BANDS + 1):  # widen each estimated line by k bands up and down
        near[k:] |= est[:-k, :t]
        near[:-k] |= est[k:, :t]
    return float((ref[:, :t] & near).sum() / total)


__all__ = ["PITCH_CLASSES", "NOTE_NAMES", "SCALES", "F0_SR", "midi_to_hz", "hz_to_midi", "same_key",
           "essentia_standard", "as_essentia", "estimate_pitch", "estimate_f0", "LINE_BAND_HZ", "harmonic_line_mask", "harmonic_lines",
           "LINE_PLACE_BANDS", "lines_in_place"]
