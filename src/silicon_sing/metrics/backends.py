"""Label-distribution and embedding backends behind KL and FAD, with one interface per kind.

- :class:`ProbabilityBackend` — ``window_probs(audio, sr) -> [windows, classes]`` (what KL pairs up)
  and ``probs(audio, sr) -> [classes]`` (their mean, a clip-level distribution).
- :class:`EmbeddingBackend` — ``embed(audio, sr) -> [frames, dim]``; FAD pools the frames of all
  clips of a set, as fadtk and frechet-audio-distance do with VGGish.

``audio`` is float ``[N]`` (mono) or ``[C, N]`` (channels first, as :func:`silicon_sing.audio.load_audio`
returns); every backend averages channels to mono and resamples to its own rate.

Paper profile (real models, weights from their hubs on the user's machine):

- ``"passt"`` — :class:`PasstBackend`: PaSST-S (``passt_s_swa_p16_128_ap476``, AudioSet, 527 classes)
  from hear21passt, 32 kHz mono, 10 s windows, softmax over logits — audiocraft's KL classifier.
- ``"vggish"`` — :class:`VggishBackend`: VGGish from torchvggish, 16 kHz mono, one raw 128-d
  embedding per 0.96 s with PCA/quantisation off and the final ReLU removed — fadtk's FAD setup.

Smoke profile (no model, no download; stand-ins with the same interfaces, *not* the paper's metrics):

- ``"spectral-classes"`` — :class:`SpectralClassesBackend`: a fixed "classifier" whose classes are
  64 mel bands; a window's distribution is its band energies compressed by a power law.
- ``"mel-stats"`` — :class:`MelStatsEmbedding`: per-frame log-mel + deltas through a fixed seeded
  random projection to 128 dims.

Weights are never downloaded unless ``allow_download=True``; a missing file raises
:class:`MissingWeightsError` naming the URL, the file name, where to put it and the env var. A
download is checked against the SHA-256 recorded in its :class:`WeightsSpec` (deleted if it differs).
Weights files are read with ``torch.load(weights_only=True)`` only: a file that needs more than
tensors to unpickle raises :class:`UntrustedCheckpointError` and is never executed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import logging
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import resample
from ..fsutil import UntrustedCheckpointError, load_tensors_only  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

# audiocraft's PasstKLDivergenceMetric: 10 s windows (PaSST was trained on 10 s AudioSet clips),
# windows of 0.15 s or less are dropped because they break the model.
PASST_WINDOW_SECONDS = 10.0
PASST_MIN_SECONDS = 0.15
VGGISH_MIN_SECONDS = 1.0  # fadtk's VGGishModel(min_len=1): shorter audio is zero-padded to 1 s


class MissingWeightsError(FileNotFoundError):
    """Pre-trained weights for a paper-profile backend are not on this machine."""


class WeightsHashError(ValueError):
    """A downloaded weights file does not have the SHA-256 recorded for it."""


@dataclass(frozen=True)
class WeightsSpec:
    """Where a backend's pre-trained weights come from and where we look for them."""

    model: str
    url: str
    filename: str
    env_var: str
    # SHA-256 of the released file; None = unknown, a download is then used unverified (with a warning)
    sha256: str | None = None

    def missing_message(self, looked: list[Path]) -> str:
        """A message naming exactly what to fetch and where to put it."""
        where = "\n".join(f"  - {p}" for p in looked)
        return (
            f"{self.model} weights not found. Looked in:\n{where}\n"
            f"Fetch {self.filename} from\n  {self.url}\n"
            f"and either put it in {hub_checkpoint_dir()} (the torch hub cache; set TORCH_HOME to move it),\n"
            f"or point the environment variable {self.env_var} (or the evaluate.*_weights parameter) at the file.\n"
            f"Or pass allow_download=True (parameter evaluate.allow_download) on a machine that can reach GitHub."
        )


PASST_WEIGHTS = WeightsSpec(
    model="PaSST (passt_s_swa_p16_128_ap476, AudioSet mAP .476)",
    url="https://github.com/kkoutini/PaSST/releases/download/v0.0.1-audioset/passt-s-f128-p16-s10-ap.476-swa.pt",
    filename="passt-s-f128-p16-s10-ap.476-swa.pt",
    env_var="SILICON_SING_PASST_WEIGHTS",
    # published by several independent projects that pin this release asset (344,665,734 bytes)
    sha256="302903fa8c4aee817b11dc982da0b29aaf8d11a3e722420476d0a12c9db70c2c",
)
VGGISH_WEIGHTS = WeightsSpec(
    model="VGGish (torchvggish port of the AudioSet VGGish)",
    url="https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth",
    filename="vggish-10086976.pth",
    env_var="SILICON_SING_VGGISH_WEIGHTS",
    # torch hub convention: the 8 hex digits in the file name are this hash's prefix
    sha256="10086976245803799d9194e9a73d9b6c1549c71d1b80106f5cade5608a561f4b",
)


# --------------------------------------------------------------------------------------------
# interfaces


class ProbabilityBackend(ABC):
    """A classifier giving a label distribution per analysis window of a clip."""

    name: str
    sample_rate: int
    num_classes: int

    @abstractmethod
    def window_probs(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Label distributions ``[windows, num_classes]`` of consecutive windows of the clip."""

    def probs(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """The clip's label distribution ``[num_classes]``: the mean over its windows."""
        return self.window_probs(audio, sr).mean(axis=0)

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Everything that changes the output (model, weights, settings); keys the cache."""


class EmbeddingBackend(ABC):
    """An embedding model giving one vector per frame of a clip."""

    name: str
    sample_rate: int
    dim: int

    @abstractmethod
    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Per-frame embeddings ``[frames, dim]`` (float32)."""

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Everything that changes the output (model, weights, settings); keys the cache."""


# --------------------------------------------------------------------------------------------
# shared audio preparation


def as_mono(audio: np.ndarray) -> np.ndarray:
    """``[N]`` or channels-first ``[C, N]`` audio → float32 ``[N]`` (channel mean, as audiocraft/fadtk)."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        return a
    if a.ndim != 2:
        raise ValueError(f"expected audio of shape [N] or [C, N], got {a.shape}")
    if a.shape[0] > 8 and a.shape[1] <= 8:
        # soundfile's default layout is [N, C]; averaging the wrong axis would silently destroy the clip
        raise ValueError(f"audio of shape {a.shape} looks like [N, C]; pass channels first, [C, N]")
    return a.mean(axis=0)


def prepare_audio(audio: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Mono float32 at ``target_sr`` (soxr HQ resampling)."""
    return resample(as_mono(audio), int(sr), int(target_sr))


def pad_to(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad ``x`` at the end to at least ``n`` samples."""
    return x if x.shape[-1] >= n else np.pad(x, (0, n - x.shape[-1]))


def split_windows(x: np.ndarray, window: int, min_len: int) -> list[np.ndarray]:
    """Consecutive non-overlapping windows, dropping those of ``min_len`` samples or fewer (audiocraft).

    audiocraft gives a clip with no usable window no distribution at all; we zero-pad such a clip
    to ``min_len + 1`` samples instead, so every pair gets a KL.
    """
    wins = [x[i:i + window] for i in range(0, x.shape[-1], window)]
    wins = [w for w in wins if w.shape[-1] > min_len]
    return wins or [pad_to(x, min_len + 1)]


@functools.lru_cache(maxsize=16)
def mel_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney mel filterbank ``[n_mels, n_fft // 2 + 1]`` (librosa), cached."""
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)


def power_spectrogram(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred, Hann-windowed power spectrogram ``[frames, n_fft // 2 + 1]`` in numpy."""
    x = pad_to(np.asarray(x, dtype=np.float32), n_fft)  # at least one full frame; reflect padding needs it
    xp = np.pad(x, (n_fft // 2, n_fft // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop]
    spec = np.fft.rfft(frames * np.hanning(n_fft + 1)[:-1].astype(np.float32), axis=-1)  # periodic Hann
    return (spec.real ** 2 + spec.imag ** 2).astype(np.float32)


def _version(dist: str) -> str:
    """Installed version of a distribution, or 'absent'."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


# --------------------------------------------------------------------------------------------
# smoke-profile, model-free backends


class SpectralClassesBackend(ProbabilityBackend):
    """Model-free stand-in for PaSST: a fixed soft "classifier" over mel bands (not AudioSet classes).

    Each of ``n_bands`` mel bands (30 Hz – 8 kHz at 16 kHz) is a class. For a window, the mean
    power E_k in band k is compressed by a power law and normalised:
    p_k = softmax(log(E_k + floor) / temperature) = E_k^(1/T) / Σ_j E_j^(1/T), with T = 3 (cube-root
    compression, roughly how loudness grows with power). The distribution therefore describes the
    spectral envelope, is invariant to overall gain, and gives KL = 0 for spectrally identical
    audio. It knows nothing about instruments or voices. Windows follow PaSST's (10 s, > 0.15 s).
    """

    name = "spectral-classes"

    def __init__(self, n_bands: int = 64, temperature: float = 3.0, sample_rate: int = 16000,
                 n_fft: int = 1024, hop: int = 256, fmin: float = 30.0,
                 window_seconds: float = PASST_WINDOW_SECONDS, min_seconds: float = PASST_MIN_SECONDS) -> None:
        self.n_bands, self.temperature, self.sample_rate = n_bands, temperature, sample_rate
        self.n_fft, self.hop, self.fmin = n_fft, hop, fmin
        self.window_seconds, self.min_seconds = window_seconds, min_seconds
        self.num_classes = n_bands
        self._fb = mel_filterbank(sample_rate, n_fft, n_bands, fmin, sample_rate / 2)

    @property
    def fingerprint(self) -> str:
        """Settings that change the output."""
        return (f"{self.name}:v1:bands={self.n_bands}:T={self.temperature}:sr={self.sample_rate}:"
                f"nfft={self.n_fft}:hop={self.hop}:fmin={self.fmin}:win={self.window_seconds}:"
                f"min={self.min_seconds}:librosa={_version('librosa')}")

    def _window_dist(self, w: np.ndarray) -> np.ndarray:
        """Distribution over bands of one window."""
        band_power = (power_spectrogram(w, self.n_fft, self.hop) @ self._fb.T).mean(axis=0)
        logits = np.log(band_power.astype(np.float64) + 1e-10) / self.temperature
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def window_probs(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Band distributions ``[windows, n_bands]``."""
        x = prepare_audio(audio, sr, self.sample_rate)
        wins = split_windows(x, int(self.window_seconds * self.sample_rate), int(self.min_seconds * self.sample_rate))
        return np.stack([self._window_dist(w) for w in wins]).astype(np.float32)


class MelStatsEmbedding(EmbeddingBackend):
    """Model-free stand-in for VGGish: log-mel + delta frames through a fixed random projection.

    Per 32 ms frame (16 kHz, n_fft 1024, hop 512): ``n_mels`` log-mel energies and their time
    derivative (``np.gradient``), a 2·n_mels vector, multiplied by a fixed Gaussian matrix drawn
    from ``seed`` (scaled by 1/√(2·n_mels)) to give ``dim`` = 128 values, like VGGish's width. It
    measures differences in timbre/spectral dynamics only; it has learned nothing. Clips shorter
    than 0.25 s are zero-padded.
    """

    name = "mel-stats"

    def __init__(self, n_mels: int = 96, dim: int = 128, sample_rate: int = 16000, n_fft: int = 1024,
                 hop: int = 512, fmin: float = 30.0, seed: int = 0, min_seconds: float = 0.25) -> None:
        self.n_mels, self.dim, self.sample_rate = n_mels, dim, sample_rate
        self.n_fft, self.hop, self.fmin, self.seed, self.min_seconds = n_fft, hop, fmin, seed, min_seconds
        self._fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, sample_rate / 2)
        rng = np.random.default_rng(seed)
        self._proj = (rng.standard_normal((2 * n_mels, dim)) / np.sqrt(2 * n_mels)).astype(np.float32)

    @property
    def fingerprint(self) -> str:
        """Settings that change the output."""
        return (f"{self.name}:v1:mels={self.n_mels}:dim={self.dim}:sr={self.sample_rate}:nfft={self.n_fft}:"
                f"hop={self.hop}:fmin={self.fmin}:seed={self.seed}:min={self.min_seconds}:"
                f"librosa={_version('librosa')}")

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Projected log-mel + delta frames ``[frames, dim]``."""
        x = pad_to(prepare_audio(audio, sr, self.sample_rate), int(self.min_seconds * self.sample_rate))
        logmel = np.log(power_spectrogram(x, self.n_fft, self.hop) @ self._fb.T + 1e-6)
        delta = np.gradient(logmel, axis=0) if logmel.shape[0] > 1 else np.zeros_like(logmel)
        return (np.concatenate([logmel, delta], axis=1) @ self._proj).astype(np.float32)


# --------------------------------------------------------------------------------------------
# paper-profile backends (torch models)


def hub_checkpoint_dir() -> Path:
    """``<torch hub dir>/checkpoints``, where torch.hub and timm (hence hear21passt) cache weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weights(spec: WeightsSpec, weights: str | os.PathLike[str] | None, allow_download: bool) -> Path:
    """The local weights file: explicit path, then ``$env_var``, then the hub cache; else download or raise."""
    looked: list[Path] = []
    for candidate, origin in ((weights, "weights argument"), (os.environ.get(spec.env_var), f"${spec.env_var}")):
        if candidate:
            p = Path(candidate).expanduser()
            if p.is_file():
                return p
            # an explicit path that does not exist is a mistake, not a reason to look elsewhere
            raise MissingWeightsError(f"{origin} points at {p}, which is not a file.\n" + spec.missing_message([p]))
    cached = hub_checkpoint_dir() / spec.filename
    looked.append(cached)
    if cached.is_file():
        return cached
    if allow_download:
        import torch

        log.warning("downloading %s weights from %s to %s", spec.model, spec.url, cached)
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(spec.url, str(cached), progress=True)  # writes a temp file, then renames
        verify_download(spec, cached)
        return cached
    raise MissingWeightsError(spec.missing_message(looked))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_download(spec: WeightsSpec, path: Path) -> None:
    """Check a freshly downloaded file against ``spec.sha256``; delete it and raise if it differs."""
    if spec.sha256 is None:
        warnings.warn(f"{spec.model}: no SHA-256 is recorded for {spec.filename}; the download from {spec.url} "
                      f"to {path} is unverified", UserWarning, stacklevel=3)
        return
    got = sha256_file(path)
    if got != spec.sha256:
        path.unlink(missing_ok=True)
        raise WeightsHashError(
            f"{spec.model}: the file downloaded from {spec.url} has sha256 {got}, expected {spec.sha256}; "
            f"it was deleted. Retry, or fetch {spec.filename} by hand and check its hash (sha256sum).")


def _load_state_dict(path: Path) -> dict[str, Any]:
    """Load a checkpoint's state dict on CPU, tensors only: nothing in the file is ever executed."""
    return load_tensors_only(path)


def _device(device: str | None) -> str:
    """The requested torch device, or CUDA when available, else CPU."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence stdout and warnings (hear21passt prints model summaries and debug shapes)."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _weights_id(path: Path | None, seed: int) -> str:
    """Identity of the weights for the fingerprint: file name and size, or the random-init seed."""
    return f"weights={path.name}:{path.stat().st_size}" if path else f"random-init:seed={seed}"


class PasstBackend(ProbabilityBackend):
    """PaSST-S AudioSet classifier (hear21passt), used as audiocraft's ``PasstKLDivergenceMetric`` does.

    32 kHz mono; consecutive 10 s windows, windows ≤ 0.15 s dropped (a clip with none is padded);
    each window's distribution is the softmax over 527 logits. The mel front end is the one of
    ``hear21passt.base.get_basic_model`` (which audiocraft loads), in eval mode (no augmentation).

    ``pretrained=True`` loads ``passt-s-f128-p16-s10-ap.476-swa.pt`` from ``weights``,
    ``$SILICON_SING_PASST_WEIGHTS`` or the torch hub cache, and never downloads unless
    ``allow_download``. ``pretrained=False`` builds the same architecture with seeded random
    weights (tests, benchmarks): its "probabilities" are meaningless.
    """

    name = "passt"
    arch = "passt_s_swa_p16_128_ap476"

    def __init__(self, pretrained: bool = True, weights: str | os.PathLike[str] | None = None,
                 allow_download: bool = False, device: str | None = None, seed: int = 0,
                 window_seconds: float = PASST_WINDOW_SECONDS, min_seconds: float = PASST_MIN_SECONDS,
                 batch_size: int = 4) -> None:
        import torch

        self.sample_rate, self.num_classes = 32000, 527
        self.window_seconds, self.min_seconds, self.batch_size, self.seed = window_seconds, min_seconds, batch_size, seed
        self.weights_path = resolve_weights(PASST_WEIGHTS, weights, allow_download) if pretrained else None
        self.device = _device(device)
        from hear21passt.models.passt import checkpoint_filter_fn, get_model
        from hear21passt.models.preprocess import AugmentMelSTFT
        from hear21passt.wrapper import PasstBasicWrapper

        with quiet(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # pretrained=False always: hear21passt would otherwise download through timm
            net = get_model(arch=self.arch, pretrained=False, n_classes=self.num_classes)
            # the front end of hear21passt.base.get_basic_model, the model audiocraft loads
            mel = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48,
                                 timem=192, htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10,
                                 fmax_aug_range=2000)
        if self.weights_path is not None:
            state = checkpoint_filter_fn(_load_state_dict(self.weights_path), net)
            try:
                net.load_state_dict(state)
            except RuntimeError as e:
                raise RuntimeError(f"{self.weights_path} does not fit PaSST {self.arch}: {e}") from e
        self.model = PasstBasicWrapper(mel=mel, net=net, mode="logits").eval().to(self.device)

    @property
    def fingerprint(self) -> str:
        """Model, weights and windowing."""
        return (f"{self.name}:v1:{self.arch}:{_weights_id(self.weights_path, self.seed)}:"
                f"hear21passt={_version('hear21passt')}:win={self.window_seconds}:min={self.min_seconds}:resample=soxr-hq")

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        """Logits ``[B, 527]`` of equal-length 32 kHz windows ``[B, T]``."""
        import torch

        with quiet(), torch.inference_mode():
            return self.model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()

    def window_probs(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Softmax over the 527 AudioSet logits per window, ``[windows, 527]``."""
        x = prepare_audio(audio, sr, self.sample_rate)
        wins = split_windows(x, int(self.window_seconds * self.sample_rate), int(self.min_seconds * self.sample_rate))
        logits = []
        # full windows share a length, so they batch; the shorter tail runs alone (no padding, as audiocraft)
        full = [w for w in wins if w.shape[-1] == wins[0].shape[-1]]
        for i in range(0, len(full), self.batch_size):
            logits.append(self._logits(np.stack(full[i:i + self.batch_size])))
        for w in wins[len(full):]:
            logits.append(self._logits(w[None]))
        z = np.concatenate(logits).astype(np.float64)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


class VggishBackend(EmbeddingBackend):
    """VGGish (torchvggish) as fadtk uses it for FAD: raw 128-d embeddings, PCA off, no final ReLU.

    16 kHz mono; audio shorter than 1 s is zero-padded to 1 s (fadtk's ``min_len``); one embedding
    per non-overlapping 0.96 s log-mel patch (``torchvggish.vggish_input.waveform_to_examples``).

    ``pretrained=True`` loads ``vggish-10086976.pth`` from ``weights``, ``$SILICON_SING_VGGISH_WEIGHTS``
    or the torch hub cache (where ``torch.hub.load('harritaylor/torchvggish', 'vggish')`` keeps it),
    and never downloads unless ``allow_download``. ``pretrained=False``: same architecture, seeded
    random weights (tests, benchmarks).
    """

    name = "vggish"

    def __init__(self, pretrained: bool = True, weights: str | os.PathLike[str] | None = None,
                 allow_download: bool = False, device: str | None = None, seed: int = 0) -> None:
        import torch
        from torch import nn

        self.sample_rate, self.dim, self.seed = 16000, 128, seed
        self.weights_path = resolve_weights(VGGISH_WEIGHTS, weights, allow_download) if pretrained else None
        self.device = _device(device)
        from torchvggish.torchvggish import VGG, make_layers

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            # postprocess=False: no PCA/whitening/quantisation (and no PCA-parameter download)
            model = VGG(make_layers(), postprocess=False)
        if self.weights_path is not None:
            try:
                model.load_state_dict(_load_state_dict(self.weights_path))
            except RuntimeError as e:
                raise RuntimeError(f"{self.weights_path} does not fit VGGish: {e}") from e
        # drop the final ReLU so embeddings keep their sign (fadtk's use_activation=False)
        model.embeddings = nn.Sequential(*list(model.embeddings.children())[:-1])
        self.model = model.eval().to(self.device)

    @property
    def fingerprint(self) -> str:
        """Model, weights and front end."""
        return (f"{self.name}:v1:{_weights_id(self.weights_path, self.seed)}:torchvggish={_version('torchvggish')}:"
                f"pca=off:relu=off:min={VGGISH_MIN_SECONDS}:resample=soxr-hq")

    def embed(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Raw VGGish embeddings ``[frames, 128]``, one per 0.96 s."""
        import torch
        from torchvggish.vggish_input import waveform_to_examples

        x = pad_to(prepare_audio(audio, sr, self.sample_rate), int(VGGISH_MIN_SECONDS * self.sample_rate))
        examples = waveform_to_examples(x.astype(np.float64), self.sample_rate, return_tensor=True)
        with torch.inference_mode():
            return self.model(examples.detach().to(self.device)).float().cpu().numpy()


# --------------------------------------------------------------------------------------------
# registry, keyed by the names used in params (evaluate.kl_backend / evaluate.fad_backend)

PROBABILITY_BACKENDS: dict[str, type[ProbabilityBackend]] = {
    "spectral-classes": SpectralClassesBackend,
    "passt": PasstBackend,
}
EMBEDDING_BACKENDS: dict[str, type[EmbeddingBackend]] = {
    "mel-stats": MelStatsEmbedding,
    "vggish": VggishBackend,
}


def get_probability_backend(name: str, **kwargs: Any) -> ProbabilityBackend:
    """Build the label-distribution backend registered as ``name`` (e.g. "passt", "spectral-classes")."""
    if name not in PROBABILITY_BACKENDS:
        raise ValueError(f"unknown KL backend {name!r}; known: {sorted(PROBABILITY_BACKENDS)}")
    return PROBABILITY_BACKENDS[name](**kwargs)


def get_embedding_backend(name: str, **kwargs: Any) -> EmbeddingBackend:
    """Build the embedding backend registered as ``name`` (e.g. "vggish", "mel-stats")."""
    if name not in EMBEDDING_BACKENDS:
        raise ValueError(f"unknown FAD backend {name!r}; known: {sorted(EMBEDDING_BACKENDS)}")
    return EMBEDDING_BACKENDS[name](**kwargs)
