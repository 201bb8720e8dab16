"""The paper's KL classifier: PaSST-S (hear21passt) as audiocraft's ``PasstKLDivergenceMetric`` uses it.

Notebook: notebooks/04_evaluate.ipynb
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

import numpy as np

from .base import ProbabilityBackend, package_version
from .spectral import prepare_audio, split_windows
from .weights import PASST_WEIGHTS, read_state_dict, resolve_weights, torch_device, weights_id

# audiocraft's PasstKLDivergenceMetric: 10 s windows (PaSST was trained on 10 s AudioSet clips),
# windows of 0.15 s or less are dropped because they break the model.
PASST_WINDOW_SECONDS = 10.0
PASST_MIN_SECONDS = 0.15


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence stdout and warnings (hear21passt prints model summaries and debug shapes)."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield



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
        import torch  # lazy: torch loads only for the paper-profile backends

        self.sample_rate, self.num_classes = 32000, 527
        self.window_seconds, self.min_seconds, self.batch_size, self.seed = window_seconds, min_seconds, batch_size, seed
        self.weights_path = resolve_weights(PASST_WEIGHTS, weights, allow_download) if pretrained else None
        self.device = torch_device(device)
        # lazy: hear21passt (and timm) are heavy, optional, and print on import
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
            state = checkpoint_filter_fn(read_state_dict(self.weights_path), net)
            try:
                net.load_state_dict(state)
            except RuntimeError as e:
                raise RuntimeError(f"{self.weights_path} does not fit PaSST {self.arch}: {e}") from e
        self.model = PasstBasicWrapper(mel=mel, net=net, mode="logits").eval().to(self.device)

    @property
    def fingerprint(self) -> str:
        """Model, weights and windowing."""
        return (f"{self.name}:v1:{self.arch}:{weights_id(self.weights_path, self.seed)}:"
                f"hear21passt={package_version('hear21passt')}:win={self.window_seconds}:min={self.min_seconds}:resample=soxr-hq")

    def _logits(self, batch: np.ndarray) -> np.ndarray:
        """Logits ``[B, 527]`` of equal-length 32 kHz windows ``[B, T]``."""
        import torch  # lazy: see __init__

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
