"""Fake generations shared by the listening-room and results tests: pitched originals, a noisy
baseline and a fine-tune that keeps the voice (:func:`make_generations`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from silicon_sing.generate import Generation

SR = 32000


def tone(f0: float | None, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone (pitched) or noise (f0=None)."""
    t = np.arange(int(seconds * SR)) / SR
    if f0 is None:
        return 0.1 * np.random.default_rng(seed).standard_normal(t.size).astype(np.float32)
    return (0.2 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 5))).astype(np.float32)


def make_generations(tmp_path: Path) -> list[Generation]:
    """Originals are pitched voices; the baseline continues with noise, the fine-tune with a voice."""
    gens = []
    for artist, f0 in (("Ana", 220.0), ("Bo", 150.0)):
        for i in range(3):
            orig = tmp_path / f"{artist}{i}-orig.wav"
            sf.write(str(orig), tone(f0), SR)
            for system, gen in (("baseline", tone(None, seed=i)), ("fine-tuned", tone(f0 * 1.02))):
                path = tmp_path / f"{artist}{i}-{system}.wav"
                sf.write(str(path), np.concatenate([tone(f0)[:SR], gen[SR:]]), SR)
                gens.append(Generation(f"{artist}/t/acapella/{i:03d}", artist, "acapella", system, str(orig), str(path),
                                       1.0, 3.0, "uuid a caption", 7, "nano", "fp", {}, 0.1))
    return gens
