"""Shared test helpers: small hand-made stems and signals (no synthetic corpus generator), glued notebook values."""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import soundfile as sf


def tone_stems(seconds: float, sr: int, f0: float, seed: int, stereo: bool = True) -> dict[str, np.ndarray]:
    """A harmonic 'voice' with syllable gating and a noisy 'accompaniment', as [C, N] arrays."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * 0.15
    voice *= 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2
    inst = 0.05 * rng.standard_normal(t.size) + 0.1 * np.sin(2 * np.pi * 55 * t)
    stems = {"acapella": voice, "instrumental": inst}
    if stereo:
        stems = {k: np.stack([v, 0.9 * v]) for k, v in stems.items()}
    else:
        stems = {k: v[None, :] for k, v in stems.items()}
    stems["full"] = stems["acapella"] + stems["instrumental"]
    return {k: v.astype(np.float32) for k, v in stems.items()}


def write_track(root: Path, artist: str, track: str, stems: dict[str, np.ndarray], sr: int,
                ext: str = "wav", skip: tuple[str, ...] = ()) -> Path:
    """Write ``stems`` in the user layout ``<root>/<artist>/<track>/<stem>.<ext>``."""
    d = root / artist / track
    d.mkdir(parents=True, exist_ok=True)
    for name, x in stems.items():
        if name not in skip:
            sf.write(str(d / f"{name}.{ext}"), x.T, sr)
    return d


def tone(freq: float = 440.0, seconds: float = 1.0, sr: int = 32000, amp: float = 0.3) -> np.ndarray:
    """A sine tone, float32 mono."""
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float = 1.0, sr: int = 32000, seed: int = 0, amp: float = 0.1) -> np.ndarray:
    """White noise, float32 mono."""
    return (amp * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def glued(nb_path: Path) -> dict[str, str]:
    """Names and plain-text values glued by an executed notebook."""
    nb = nbformat.read(nb_path, as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            meta = o.get("metadata", {}).get("scrapbook", {})
            if meta.get("name"):
                data = o.get("data", {})
                out[meta["name"]] = data.get(meta.get("mime_prefix", "") + "text/plain", data.get("text/plain", ""))
    return out
